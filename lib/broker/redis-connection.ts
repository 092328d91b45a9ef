// The Redis broker's connections: a standalone (or Sentinel) client or a Redis Cluster
// client for commands and scripts, a second connection of the same kind for
// subscriptions, and the running of scripts on either.
import { errorCodes } from '../protocol/errors.js'
import { Cluster, Redis, type ClusterNode, type ClusterOptions, type RedisOptions } from 'ioredis'
import { SCRIPTS, type LuaScript } from './redis-scripts.js'

/** The broker's codes, part of the one catalogue (lib/protocol/errors.ts); kept under this name too. */
export const redisErrorCodes = {
  FST_REALTIME_BROKER_UNAVAILABLE: errorCodes.FST_REALTIME_BROKER_UNAVAILABLE,
  FST_REALTIME_BROKER_CLOSED: errorCodes.FST_REALTIME_BROKER_CLOSED,
  FST_REALTIME_INVALID_BROKER_OPTION: errorCodes.FST_REALTIME_INVALID_BROKER_OPTION
}

/** A standalone (or Sentinel) client, or a cluster client. */
export type RedisClient = Redis | Cluster

/**
 * Defaults for the connections the broker creates: fail fast while Redis is away
 * (no offline queue, no silent resend of a script that may have run), and reconnect
 * within about a second of Redis coming back.
 */
const CONNECTION_DEFAULTS: RedisOptions = {
  lazyConnect: true,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  autoResendUnfulfilledCommands: false,
  retryStrategy: (times: number) => Math.min(50 * 2 ** times, 1000) + Math.floor(Math.random() * 100)
}

/**
 * The same for a cluster. Each node connection fails fast as above; the cluster itself
 * retries a command only on the answers that say it did not run (MOVED, ASK, TRYAGAIN,
 * CLUSTERDOWN), never after a connection closed under it (retryDelayOnFailover 0): the
 * script may have run, and running it again would publish twice.
 */
const CLUSTER_DEFAULTS: ClusterOptions = {
  lazyConnect: true,
  // Unlike a single connection, the cluster client needs its queue: a command for a
  // node it has just discovered waits there while that node's connection opens (without
  // it, the first commands after connecting through one node fail). Nothing waits there
  // while the cluster is away: the broker checks the client is ready before each call.
  enableOfflineQueue: true,
  retryDelayOnFailover: 0,
  retryDelayOnClusterDown: 100,
  retryDelayOnTryAgain: 100,
  maxRedirections: 16,
  clusterRetryStrategy: (times: number) => Math.min(50 * 2 ** times, 1000) + Math.floor(Math.random() * 100),
  redisOptions: { maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false }
}

/** A client rather than options (duck-typed: the app may load another copy of ioredis). */
function isClient (value: unknown): value is RedisClient {
  return typeof value === 'object' && value !== null && typeof (value as Redis).evalsha === 'function'
}

export function isCluster (client: RedisClient): client is Cluster {
  return (client as { isCluster?: boolean }).isCluster === true
}

export interface CommandConnection {
  client: RedisClient
  /** Made by the broker, so closed by it. */
  own: boolean
}

/** The command connection from the broker's `redis` / `cluster` options. */
export function commandConnection (
  redis: string | RedisOptions | RedisClient | undefined,
  cluster: ClusterNode[] | Cluster | undefined,
  clusterOptions: ClusterOptions | undefined
): CommandConnection {
  if (cluster !== undefined) {
    if (redis !== undefined) throw new errorCodes.FST_REALTIME_INVALID_BROKER_OPTION('redis', 'the options "redis" and "cluster" exclude each other: give one')
    if (isClient(cluster)) {
      if (!isCluster(cluster)) throw new errorCodes.FST_REALTIME_INVALID_BROKER_OPTION('cluster', 'must be a list of cluster nodes or an ioredis Cluster')
      return { client: cluster, own: false }
    }
    if (!Array.isArray(cluster) || cluster.length === 0) throw new errorCodes.FST_REALTIME_INVALID_BROKER_OPTION('cluster', 'must be a non-empty list of cluster nodes ("host:port" or { host, port })')
    const options = { ...CLUSTER_DEFAULTS, ...clusterOptions }
    options.redisOptions = { ...CLUSTER_DEFAULTS.redisOptions, ...clusterOptions?.redisOptions }
    return { client: new Cluster(cluster, options), own: true }
  }
  if (clusterOptions !== undefined) throw new errorCodes.FST_REALTIME_INVALID_BROKER_OPTION('clusterOptions', 'needs the "cluster" option')
  const url = redis ?? 'redis://127.0.0.1:6379'
  if (isClient(url)) return { client: url, own: false }
  return { client: typeof url === 'string' ? new Redis(url, CONNECTION_DEFAULTS) : new Redis({ ...CONNECTION_DEFAULTS, ...url }), own: true }
}

/**
 * The subscriber connection for a command connection: a standalone duplicate that the
 * broker resubscribes itself after a reconnection, or a cluster client with one sharded
 * subscriber per master (it follows failovers and slot moves).
 */
export function subscriberFor (client: RedisClient): RedisClient {
  if (isCluster(client)) return client.duplicate([], { lazyConnect: true, shardedSubscribers: true })
  return client.duplicate({ lazyConnect: true, autoResubscribe: false, enableOfflineQueue: false })
}

/**
 * Has a cluster subscriber read the slot map every second; returns the stop. After a slot
 * moves, ioredis reads the map once, from any node: a replica of the old owner a few ms
 * behind still shows the old one, and the sharded subscriber would never follow the topic
 * to its new master (its node's subscribers hearing nothing, and told nothing). Our own
 * unref'd timer rather than ioredis' slotsRefreshInterval, whose next round can be set by
 * a refresh that ends after quit(), keeping the process alive.
 */
export function followSlots (subscriber: RedisClient): () => void {
  if (!isCluster(subscriber)) return () => {}
  const timer = setInterval(() => { if (subscriber.status === 'ready') subscriber.refreshSlotsCache() }, 1000)
  timer.unref()
  return () => clearInterval(timer)
}

/** Resolves once the connection is ready (connecting it when it waits for that). */
export function connect (connection: RedisClient, pending: Map<RedisClient, Promise<void>>): Promise<void> {
  if (connection.status === 'ready') return Promise.resolve()
  if (connection.status === 'end') return Promise.reject(new redisErrorCodes.FST_REALTIME_BROKER_UNAVAILABLE('connection ended'))
  let waiting = pending.get(connection)
  if (waiting !== undefined) return waiting
  waiting = new Promise<void>((resolve, reject) => {
    const done = (err?: Error): void => {
      connection.off('ready', onReady)
      connection.off('error', onError)
      connection.off('end', onEnd)
      pending.delete(connection)
      if (err === undefined) resolve()
      else reject(new redisErrorCodes.FST_REALTIME_BROKER_UNAVAILABLE(err.message, { cause: err }))
    }
    const onReady = (): void => done()
    const onError = (err: Error): void => done(err)
    const onEnd = (): void => done(new errorCodes.FST_REALTIME_BROKER_UNAVAILABLE('connection ended'))
    connection.on('ready', onReady)
    connection.on('error', onError)
    connection.on('end', onEnd)
    // A failed first attempt is reported through 'error' as well.
    if (connection.status === 'wait') connection.connect().catch(() => {})
  })
  pending.set(connection, waiting)
  return waiting
}

export async function end (connection: RedisClient): Promise<void> {
  if (connection.status === 'ready') {
    try {
      await connection.quit()
      return
    } catch {}
  }
  connection.disconnect()
}

/**
 * Loads every script ahead of any command on a connection (on a cluster, on every
 * master). Without this the first EVALSHA of each script fails with NOSCRIPT and is
 * sent again as EVAL, and concurrent publications overtake the ones being resent:
 * their order (and so one node's publication order) would be lost.
 */
export function loadScripts (client: RedisClient, onError: (err: Error) => void): void {
  const targets: Redis[] = isCluster(client) ? client.nodes('master') : [client]
  for (const target of targets) loadScriptsOn(target, onError)
}

export function loadScriptsOn (target: Redis, onError: (err: Error) => void): void {
  for (const script of SCRIPTS) target.script('LOAD', script.lua).catch(onError)
}

/** Answers from a cluster that mean "not now" rather than "wrong": the call did not run. */
const TEMPORARY = /^(CLUSTERDOWN|TRYAGAIN|MASTERDOWN|LOADING|MOVED|ASK)\b/

/** Connection failures become FST_REALTIME_BROKER_UNAVAILABLE; errors from Redis itself stay as they are. */
export function wrapError (err: unknown): Error {
  const e = err as Error
  if (e.name === 'ReplyError' && !TEMPORARY.test(e.message)) return e
  return new redisErrorCodes.FST_REALTIME_BROKER_UNAVAILABLE(e.message, { cause: e })
}

/** Runs a script by its sha, loading it again (EVAL) where the server forgot it (restart, failover). */
export async function runScript (client: RedisClient, script: LuaScript, keys: string[], args: Array<string | number>): Promise<unknown> {
  try {
    return await client.evalsha(script.sha, script.keys, ...keys, ...args)
  } catch (err) {
    if (!String((err as Error).message).startsWith('NOSCRIPT')) throw wrapError(err)
  }
  try {
    return await client.eval(script.lua, script.keys, ...keys, ...args)
  } catch (err) {
    throw wrapError(err)
  }
}
