// The Redis broker: many server processes share each topic's offsets, epoch, history
// and presence, and every publication reaches every node that has local subscribers.
//
// - Offsets, history and the fan-out publish are one Lua script (redis-scripts.ts), so
//   two nodes publishing to one topic never assign an offset twice or skip one.
// - A node holds one channel subscription per topic it has local subscribers for, on a
//   connection of its own; a second connection carries the scripts and commands
//   (redis-connection.ts). What arrives, and keeping it contiguous, is redis-feeds.ts.
// - On one Redis (or Sentinel) channels are classic; on Redis Cluster every topic lives
//   on one shard (redis-keys.ts) and its channel is sharded (SPUBLISH/SSUBSCRIBE), while
//   commands stay on a classic channel that reaches every shard.
// - While Redis is away a publication fails: without an offset it would be in no stream
//   and on no other node. Ephemeral ones (and all, with `localWhileDown`) reach this
//   node's own subscribers instead, outside the stream.
// - Presence is redis-presence.ts.
import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { RedisBrokerLog, RedisBrokerOptions } from './redis-options.js'
import type { Broker, BrokerCommand, CommandListener, IdempotencyClaim, IdempotencyScope, PresenceListener, PresenceMember, Publication, PublicationListener, PublishOptions, RecoveryResult, ResyncListener, StreamPosition } from './types.js'
import { errorCodes } from '../protocol/errors.js'
import { IDEMPOTENCY_CLAIM, IDEMPOTENCY_SETTLE, idempotencyKey } from './redis-idempotency.js'
import { publicationOf } from './redis-messages.js'
import { TopicFeeds } from './redis-feeds.js'
import { PUBLISH, READ, REWIND, type LuaScript } from './redis-scripts.js'
import { commandConnection, connect, end, followSlots, isCluster, loadScripts, loadScriptsOn, redisErrorCodes, runScript, subscriberFor, wrapError, type RedisClient } from './redis-connection.js'
import { RedisKeys } from './redis-keys.js'
import { RedisPresence } from './redis-presence.js'

export { redisErrorCodes }
export type { RedisBrokerLog, RedisBrokerOptions }

const DEFAULT_PREFIX = 'rt:'
const DEFAULT_PRESENCE_TTL = 30_000
const DEFAULT_META_TTL = 24 * 60 * 60_000
const DEFAULT_RESYNC_LIMIT = 1000
const SUBSCRIBE_BATCH = 1000

function count (limit: number): string {
  return Number.isFinite(limit) ? String(Math.max(0, Math.floor(limit))) : '1000000000'
}

export class RedisBroker implements Broker {
  readonly kind = 'Redis'
  /** This node's id: presence members and publications are tagged with it. */
  readonly id = randomBytes(8).toString('hex')
  readonly prefix: string
  /** Where everything is kept (and whether on a cluster). */
  readonly keys: RedisKeys
  readonly #redis: RedisClient
  #sub: RedisClient | null
  readonly #ownRedis: boolean
  readonly #ownSub: boolean
  readonly #presenceTtl: number
  readonly #metaTtl: number
  readonly #now: (() => number) | undefined
  readonly #log: RedisBrokerLog | undefined
  readonly #presence: RedisPresence
  readonly #feeds: TopicFeeds
  readonly #handlers: Array<[RedisClient, string, (...args: any[]) => void]> = []
  readonly #connecting = new Map<RedisClient, Promise<void>>()
  #timer: NodeJS.Timeout | null = null
  #ticking = false
  #stopSlots: () => void = () => {}
  #started = false
  #closed = false
  #everReady = false
  readonly #localWhileDown: boolean

  constructor (options: RedisBrokerOptions = {}) {
    this.prefix = options.prefix ?? DEFAULT_PREFIX
    this.#presenceTtl = positive('presenceTtl', options.presenceTtl, DEFAULT_PRESENCE_TTL)
    this.#metaTtl = options.metaTtl === 0 ? 0 : positive('metaTtl', options.metaTtl, DEFAULT_META_TTL)
    this.#localWhileDown = options.localWhileDown ?? false
    this.#now = options.now
    this.#log = options.log
    const { client, own } = commandConnection(options.redis, options.cluster, options.clusterOptions)
    this.#redis = client
    this.#ownRedis = own
    this.keys = new RedisKeys(this.prefix, isCluster(client))
    this.#sub = options.subscriber ?? null
    this.#ownSub = options.subscriber === undefined
    if (this.#sub !== null && isCluster(this.#sub) !== this.keys.cluster) {
      throw new redisErrorCodes.FST_REALTIME_INVALID_BROKER_OPTION('subscriber', 'must be a cluster client exactly when the command connection is one')
    }
    this.#presence = new RedisPresence({
      id: this.id,
      keys: this.keys,
      eval: (script, keys, args, closing) => this.#eval(script, keys, args, closing),
      client: async (closing) => closing === true ? this.#redis : await this.#client(),
      clock: () => this.#clock(),
      warn: (err, msg) => this.#warn(err, msg)
    }, this.#presenceTtl)
    this.#feeds = new TopicFeeds({
      keys: this.keys,
      position: (topic) => this.position(topic),
      recover: (topic, since, limit) => this.recover(topic, since, limit),
      rewind: async (topic, last) => String(await this.#eval(REWIND, [this.keys.meta(topic), this.keys.stream(topic)], [last.epoch, last.offset, newEpoch()])),
      listen: async (topics) => {
        const sub = this.#sub as RedisClient
        // On a cluster the client subscribed again already; asking once more returns
        // once that is in force, so nothing published after the resync's read is missed.
        if (!this.keys.cluster) await sub.subscribe(this.keys.control)
        await this.#listen(sub, topics)
      },
      warn: (obj, msg) => this.#log?.warn(obj, msg),
      error: (err, msg) => this.#error(err, msg),
      background: (work) => this.#background(work)
    }, this.id, options.resyncLimit ?? DEFAULT_RESYNC_LIMIT)
    this.#on(this.#redis, 'error', (err: Error) => this.#warn(err, 'redis command connection error'))
    this.#on(this.#redis, 'ready', () => {
      this.#loadScripts()
      this.#everReady = true
      if (this.#started) this.#background(this.#tick())
    })
    // A master that joins (a promoted replica, a new shard) gets the scripts before use.
    if (this.keys.cluster) this.#on(this.#redis, '+node', (node: Redis) => loadScriptsOn(node, (err) => this.#warn(err, 'redis script load failed')))
  }

  /** True while the command connection is up. */
  get connected (): boolean {
    return !this.#closed && this.#redis.status === 'ready'
  }

  // ------------------------------------------------------------------ lifecycle

  async start (listener: PublicationListener, presence?: PresenceListener, command?: CommandListener, resync?: ResyncListener): Promise<void> {
    if (this.#closed) throw new redisErrorCodes.FST_REALTIME_BROKER_CLOSED()
    const listeners = this.#feeds.listeners
    listeners.publication = listener
    listeners.presence = presence ?? null
    listeners.command = command ?? null
    listeners.resync = resync ?? null
    if (this.#started) return
    this.#started = true
    await this.#connect(this.#redis)
    // A client handed over already connected missed our 'ready': load the scripts now.
    this.#loadScripts()
    const sub = this.#sub ??= subscriberFor(this.#redis)
    this.#on(sub, 'message', (channel: string, message: string) => this.#feeds.onMessage(channel, message))
    this.#on(sub, 'smessage', (channel: string, message: string) => this.#feeds.onMessage(channel, message))
    this.#on(sub, 'close', () => this.#feeds.subscriberLost())
    this.#on(sub, 'error', (err: Error) => this.#warn(err, 'redis subscriber connection error'))
    await this.#connect(sub)
    await this.#guard(sub.subscribe(this.keys.control))
    if (this.keys.cluster) {
      // A shard's subscriber went away (its master failed, or slots moved): until the
      // replacement is subscribed, this node's topics may miss publications.
      this.#on(sub, '-node', () => this.#feeds.subscriberLost())
      this.#on(sub, 'subscribersReady', () => this.#background(this.#feeds.resubscribe()))
      this.#stopSlots = followSlots(sub)
    } else {
      // From now on every reconnection subscribes again and closes the gaps.
      this.#on(sub, 'ready', () => this.#background(this.#feeds.resubscribe()))
    }
    await this.#presence.beat()
    this.#timer = setInterval(() => this.#background(this.#tick()), Math.max(10, Math.floor(this.#presenceTtl / 3)))
    this.#timer.unref()
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    this.#stopSlots()
    this.#feeds.clear()
    const redis = this.#redis
    if (this.#started && redis.status === 'ready') {
      try {
        await this.#presence.close()
      } catch (err) {
        this.#warn(err, 'could not remove this node\'s presence members on close')
      }
    }
    for (const [emitter, event, fn] of this.#handlers) {
      // Connections we own keep an error listener: a late socket error must not be "unhandled".
      if (event === 'error' && ((emitter === redis && this.#ownRedis) || (emitter === this.#sub && this.#ownSub))) continue
      emitter.off(event, fn)
    }
    const ends: Array<Promise<void>> = []
    if (this.#sub !== null && this.#ownSub) ends.push(end(this.#sub))
    if (this.#ownRedis) ends.push(end(redis))
    await Promise.all(ends)
  }

  // ------------------------------------------------------------------ publications

  async publish (topic: string, data: string, options: PublishOptions = {}): Promise<StreamPosition> {
    const ephemeral = options.ephemeral === true
    const except = options.except !== undefined && options.except.length > 0 ? JSON.stringify(options.except) : ''
    if (this.#everReady && this.#redis.status !== 'ready' && (ephemeral || this.#localWhileDown)) {
      // Redis cannot assign an offset. Opted in (or ephemeral: never in a stream), this
      // node's subscribers get it outside the stream (offset 0, no history, no offset
      // invented that another node could contradict), a stream publication marked local.
      // Otherwise #eval rejects with FST_REALTIME_BROKER_UNAVAILABLE: not taken, not sent.
      if (ephemeral) return this.#localOnly(topic, data, options.except, false)
      return { offset: 0, epoch: this.#localOnly(topic, data, options.except, true).epoch }
    }
    // This node subscribes to the topic: resolve once the publication came back, so
    // local subscribers have it by then and in Redis's order.
    const expected = this.#sub !== null && this.#sub.status === 'ready' ? this.#feeds.expectEcho(topic) : null
    const origin = expected?.origin ?? ''
    const history = options.history
    const size = ephemeral || history === undefined ? 0 : history.size
    const ttl = history?.ttl ?? 0
    // The stream key outlives its newest entry by the history ttl (or the meta ttl):
    // everything in it has expired by then. With a test clock, only the meta ttl.
    const streamExpire = ttl > 0 && this.#now === undefined ? (this.#metaTtl > 0 ? Math.min(ttl, this.#metaTtl) : ttl) : this.#metaTtl
    let result: [number, string]
    try {
      result = await this.#eval(PUBLISH, [this.keys.meta(topic), this.keys.stream(topic)], [
        newEpoch(), this.#clock(), ephemeral ? '1' : '0', size, ttl, this.#metaTtl, streamExpire,
        this.keys.channel(topic), origin, except, data, this.keys.publish
      ]) as [number, string]
    } catch (err) {
      if (origin !== '') this.#feeds.cancelEcho(origin)
      if (ephemeral) return this.#localOnly(topic, data, options.except, false)
      throw err
    }
    if (expected !== null) await expected.echo
    return { offset: Number(result[0]), epoch: String(result[1]) }
  }

  async position (topic: string): Promise<StreamPosition> {
    const r = await this.#read(topic, 'p', 0, '', 0)
    return { offset: Number(r[0]), epoch: String(r[1]) }
  }

  async recover (topic: string, since: StreamPosition, limit: number): Promise<RecoveryResult> {
    const r = await this.#read(topic, 'r', since.offset, since.epoch, limit)
    const position = { offset: Number(r[0]), epoch: String(r[1]) }
    // Without entries: nothing to replay. Not recovered with entries: the current epoch
    // replayed from where `since`'s holder cannot have followed it (READ).
    const flat = r[3] as string[] | undefined
    const publications: Publication[] = []
    if (flat === undefined) return { position, recovered: false, publications }
    const from = Number(r[4])
    for (let i = 0; i < flat.length; i += 2) {
      publications.push(publicationOf(topic, from + 1 + i / 2, position.epoch, flat[i], flat[i + 1]))
    }
    return { position, recovered: Number(r[2]) === 1, publications }
  }

  async history (topic: string, limit: number): Promise<{ position: StreamPosition, publications: Publication[] }> {
    const r = await this.#read(topic, 'h', 0, '', limit)
    const position = { offset: Number(r[0]), epoch: String(r[1]) }
    const flat = r[3] as string[]
    const publications: Publication[] = []
    for (let i = 0; i < flat.length; i += 3) {
      publications.push(publicationOf(topic, Number(flat[i]), position.epoch, flat[i + 1], flat[i + 2]))
    }
    return { position, publications }
  }

  async #read (topic: string, mode: 'p' | 'r' | 'h', sinceOffset: number, sinceEpoch: string, limit: number): Promise<unknown[]> {
    return await this.#eval(READ, [this.keys.meta(topic), this.keys.stream(topic)], [
      newEpoch(), this.#clock(), this.#metaTtl, mode, sinceOffset, sinceEpoch, count(limit)
    ]) as unknown[]
  }

  /** Redis is away: delivered to this node's subscribers only, outside the stream; other nodes never get it. */
  #localOnly (topic: string, data: string, except: string[] | undefined, local: boolean): StreamPosition {
    const last = this.#feeds.last(topic)
    const publication: Publication = { topic, offset: 0, epoch: last?.epoch ?? '', data }
    if (except !== undefined && except.length > 0) publication.except = except
    if (local) publication.local = true
    this.#feeds.deliver(publication)
    return { offset: last?.offset ?? 0, epoch: publication.epoch }
  }

  // ------------------------------------------------------------------ subscriptions

  async subscribe (topic: string): Promise<void> {
    if (this.#closed) throw new redisErrorCodes.FST_REALTIME_BROKER_CLOSED()
    const sub = this.#sub
    if (sub === null) throw new errorCodes.FST_REALTIME_BROKER_NOT_STARTED('subscribe')
    // Kept even when this fails: the plugin unsubscribes after a failed subscribe, and
    // until then a reconnection subscribes it with the others.
    const current = this.#feeds.add(topic)
    if (sub.status !== 'ready') throw new redisErrorCodes.FST_REALTIME_BROKER_UNAVAILABLE(`subscriber connection is ${sub.status}`)
    await this.#guard(this.#listen(sub, [topic]))
    if (current()) await this.#feeds.subscribed(topic)
  }

  async unsubscribe (topic: string): Promise<void> {
    if (!this.#feeds.remove(topic)) return
    const sub = this.#sub
    if (sub === null || sub.status !== 'ready') return
    // Should the connection go away meanwhile, a reconnection only subscribes the topics still held.
    const channel = this.keys.channel(topic)
    const done = this.keys.cluster ? sub.sunsubscribe(channel) : sub.unsubscribe(channel)
    await done.catch((err: unknown) => this.#warn(err, 'redis unsubscribe failed'))
  }

  /** Subscribes topics' channels: sharded on a cluster (one call per topic: each has its own slot). */
  async #listen (sub: RedisClient, topics: string[]): Promise<void> {
    if (this.keys.cluster) {
      await Promise.all(topics.map((topic) => sub.ssubscribe(this.keys.channel(topic))))
      return
    }
    const channels = topics.map((topic) => this.keys.channel(topic))
    for (let i = 0; i < channels.length; i += SUBSCRIBE_BATCH) await sub.subscribe(...channels.slice(i, i + SUBSCRIBE_BATCH))
  }

  // ------------------------------------------------------------------ presence

  async join (topic: string, member: PresenceMember): Promise<void> {
    await this.#presence.join(topic, member)
  }

  async leave (topic: string, connectionId: string): Promise<void> {
    await this.#presence.leave(topic, connectionId)
  }

  async members (topic: string): Promise<PresenceMember[]> {
    return await this.#presence.members(topic)
  }

  /** Heartbeat, pending leaves, then the sweep of members whose node stopped beating. */
  async #tick (): Promise<void> {
    if (this.#ticking || this.#closed || this.#redis.status !== 'ready') return
    this.#ticking = true
    try {
      await this.#presence.upkeep()
    } catch (err) {
      this.#warn(err, 'presence upkeep failed')
    } finally {
      this.#ticking = false
    }
  }

  // ------------------------------------------------------------------ commands

  // ------------------------------------------------------------------ idempotency

  async claimIdempotent (scope: IdempotencyScope, token: string, pendingMs: number): Promise<IdempotencyClaim> {
    const [status, answer] = await this.#eval(IDEMPOTENCY_CLAIM, [idempotencyKey(this.prefix, scope)], [token, Math.max(1, Math.ceil(pendingMs))]) as [string, string?]
    if (status === 'done') return { status, answer: answer as string }
    return { status: status as 'claimed' | 'pending' }
  }

  async settleIdempotent (scope: IdempotencyScope, token: string, answer: string | null, ttlMs: number): Promise<void> {
    await this.#eval(IDEMPOTENCY_SETTLE, [idempotencyKey(this.prefix, scope)], [token, answer === null ? '0' : '1', answer ?? '', Math.max(1, Math.ceil(ttlMs))])
  }

  async command (command: BrokerCommand): Promise<void> {
    const redis = await this.#client()
    await this.#guard(redis.publish(this.keys.control, JSON.stringify(command)))
  }

  // ------------------------------------------------------------------ plumbing

  #clock (): number {
    return this.#now === undefined ? -1 : this.#now()
  }

  #on (emitter: RedisClient, event: string, fn: (...args: any[]) => void): void {
    emitter.on(event, fn)
    this.#handlers.push([emitter, event, fn])
  }

  async #client (): Promise<RedisClient> {
    const redis = this.#redis
    if (this.#closed) throw new redisErrorCodes.FST_REALTIME_BROKER_CLOSED()
    if (redis.status === 'ready') return redis
    // Before the first connection (a publisher that never called start), wait for it;
    // after it, Redis being away is an error the caller sees at once.
    if (!this.#everReady) {
      await this.#connect(redis)
      return redis
    }
    throw new redisErrorCodes.FST_REALTIME_BROKER_UNAVAILABLE(`connection is ${redis.status}`)
  }

  #connect (connection: RedisClient): Promise<void> {
    return connect(connection, this.#connecting)
  }

  #loadScripts (): void {
    loadScripts(this.#redis, (err) => this.#warn(err, 'redis script load failed'))
  }

  /** Runs a script; `closing` lets close() still use the connection for its last cleanup. */
  async #eval (script: LuaScript, keys: string[], args: Array<string | number>, closing = false): Promise<unknown> {
    const redis = closing ? this.#redis : await this.#client()
    return await runScript(redis, script, keys, args)
  }

  async #guard<T> (work: Promise<T>): Promise<T> {
    try {
      return await work
    } catch (err) {
      throw wrapError(err)
    }
  }

  /** Runs upkeep nobody awaits; it handles its own errors, this is the last guard. */
  #background (work: Promise<unknown>): void {
    work.catch((err: unknown) => this.#error(err, 'redis broker upkeep failed'))
  }

  #warn (err: unknown, msg: string): void {
    this.#log?.warn({ err }, msg)
  }

  #error (err: unknown, msg: string): void {
    this.#log?.error({ err }, msg)
  }
}

function positive (name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || value < 1) throw new redisErrorCodes.FST_REALTIME_INVALID_BROKER_OPTION(name, 'must be a whole number of milliseconds >= 1')
  return value
}

function newEpoch (): string {
  return randomBytes(9).toString('base64url')
}
