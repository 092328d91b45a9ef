// The Redis broker: many server processes share each topic's offsets, epoch, history
// and presence, and every publication reaches every node that has local subscribers.
//
// - Offsets, history and the fan-out PUBLISH are one Lua script (redis-scripts.ts), so
//   two nodes publishing to one topic never assign an offset twice or skip one.
// - A node holds one channel subscription per topic it has local subscribers for, on a
//   connection of its own; a second connection carries the scripts and commands.
// - A node that publishes to a topic it subscribes to resolves publish() only once its
//   own publication came back on the channel, so local delivery keeps Redis's order.
// - When the subscriber connection comes back after a loss, the node subscribes again
//   and fills what it missed from the history; where that is impossible (history
//   trimmed, Redis flushed or restarted empty: another epoch) it calls the resync
//   listener so the plugin can tell the topic's local subscribers. Never a silent gap.
// - Presence members are stored with the node that added them; each node beats every
//   presenceTtl / 3, and live nodes sweep the members of a node that stopped beating,
//   announcing each leave exactly once.
import { randomBytes } from 'node:crypto'
import createError from '@fastify/error'
import { Redis, type RedisOptions } from 'ioredis'
import type { Broker, BrokerCommand, CommandListener, IdempotencyClaim, IdempotencyScope, PresenceListener, PresenceMember, Publication, PublicationListener, PublishOptions, RecoveryResult, ResyncListener, StreamPosition } from './types.js'
import { BEAT, JOIN, LEAVE, MEMBERS, PUBLISH, READ, REAP, type LuaScript } from './redis-scripts.js'

import { CLAIM, SETTLE, idempotencyKey } from './redis-idempotency.js'

const SCRIPTS = [BEAT, JOIN, LEAVE, MEMBERS, PUBLISH, READ, REAP, CLAIM, SETTLE]

export const redisErrorCodes = {
  /** Redis cannot be reached (or the connection dropped mid-command). Temporary: the same call may succeed later. */
  FST_REALTIME_BROKER_UNAVAILABLE: createError('FST_REALTIME_BROKER_UNAVAILABLE', 'Redis is unavailable: %s', 503),
  /** The broker was closed. */
  FST_REALTIME_BROKER_CLOSED: createError('FST_REALTIME_BROKER_CLOSED', 'The Redis broker is closed', 500)
}

/** Any pino-like logger (`app.log`). */
export interface RedisBrokerLog {
  warn: (obj: object, msg?: string) => void
  error: (obj: object, msg?: string) => void
}

export interface RedisBrokerOptions {
  /**
   * A `redis://` URL, ioredis options, or an ioredis client. A client you pass stays
   * yours: close() does not close it. Default `redis://127.0.0.1:6379`.
   */
  redis?: string | RedisOptions | Redis
  /** An ioredis client for subscribing. Default: a duplicate of the command connection, owned by the broker. */
  subscriber?: Redis
  /** Prefix of every key and channel (default `rt:`); nodes sharing topics share it. */
  prefix?: string
  /** Milliseconds a node's presence members outlive its last heartbeat (default 30000); it beats every third of that. */
  presenceTtl?: number
  /** Milliseconds a topic's epoch and offset outlive its last publication (default one day; 0: forever). */
  metaTtl?: number
  /** Most publications one node replays by itself to close a gap after a reconnection (default 1000). */
  resyncLimit?: number
  /** A clock for history and presence expiry, for tests. Default: Redis server time, one clock for every node. */
  now?: () => number
  /**
   * While Redis is away, publications reach this node's own subscribers outside the
   * stream (offset 0) instead of failing with FST_REALTIME_BROKER_UNAVAILABLE. Default true.
   */
  localWhileDown?: boolean
  /** Where connection trouble is reported. Default: nowhere. */
  log?: RedisBrokerLog
}

interface TopicState {
  /** The last stream position this node delivered (or that its subscribers started from). */
  last: StreamPosition | null
  /** Subscribed and in step: a local publish may wait for its own echo. */
  live: boolean
  /** While resyncing after a reconnection: publications held until the gap is filled. */
  syncing: Publication[] | null
}

interface Waiter {
  topic: string
  done: () => void
}

interface LocalMember {
  topic: string
  member: PresenceMember
}

const DEFAULT_PREFIX = 'rt:'
const DEFAULT_PRESENCE_TTL = 30_000
const DEFAULT_META_TTL = 24 * 60 * 60_000
const DEFAULT_RESYNC_LIMIT = 1000
/** Longest wait for a publication's own echo before publish() resolves anyway. */
const ECHO_TIMEOUT = 2000
const RESYNC_ATTEMPTS = 10
const RESYNC_DELAY = 200
const REAP_BATCH = 500
const SUBSCRIBE_BATCH = 1000

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

/** A client rather than options (duck-typed: the app may load another copy of ioredis). */
function isClient (value: unknown): value is Redis {
  return typeof (value as Redis).evalsha === 'function'
}

function count (limit: number): string {
  return Number.isFinite(limit) ? String(Math.max(0, Math.floor(limit))) : '1000000000'
}

export class RedisBroker implements Broker {
  /** This node's id: presence members and publications are tagged with it. */
  readonly id = randomBytes(8).toString('hex')
  readonly prefix: string
  readonly #redis: Redis
  #sub: Redis | null
  readonly #ownRedis: boolean
  readonly #ownSub: boolean
  readonly #presenceTtl: number
  readonly #metaTtl: number
  readonly #resyncLimit: number
  readonly #now: (() => number) | undefined
  readonly #log: RedisBrokerLog | undefined
  readonly #control: string
  readonly #channels: string
  readonly #nodes: string
  readonly #nodeSet: string

  #listener: PublicationListener | null = null
  #presenceListener: PresenceListener | null = null
  #commandListener: CommandListener | null = null
  #resyncListener: ResyncListener | null = null

  readonly #topics = new Map<string, TopicState>()
  readonly #waiters = new Map<string, Waiter>()
  /** Members this node added, to add again if Redis forgot them (flush, restart, long outage). */
  readonly #members = new Map<string, LocalMember>()
  /** Leaves that could not reach Redis, retried on the next heartbeat. */
  readonly #leaves = new Map<string, { topic: string, connectionId: string }>()
  readonly #handlers: Array<[Redis, string, (...args: any[]) => void]> = []
  readonly #connecting = new Map<Redis, Promise<void>>()
  #seq = 0
  #generation = 0
  #timer: NodeJS.Timeout | null = null
  #ticking = false
  #started = false
  #closed = false
  #everReady = false
  readonly #localWhileDown: boolean

  constructor (options: RedisBrokerOptions = {}) {
    const { redis = 'redis://127.0.0.1:6379' } = options
    this.prefix = options.prefix ?? DEFAULT_PREFIX
    this.#presenceTtl = positive('presenceTtl', options.presenceTtl, DEFAULT_PRESENCE_TTL)
    this.#metaTtl = options.metaTtl === 0 ? 0 : positive('metaTtl', options.metaTtl, DEFAULT_META_TTL)
    this.#resyncLimit = options.resyncLimit ?? DEFAULT_RESYNC_LIMIT
    this.#localWhileDown = options.localWhileDown ?? true
    this.#now = options.now
    this.#log = options.log
    this.#control = `${this.prefix}control`
    this.#channels = `${this.prefix}ch:`
    this.#nodes = `${this.prefix}nodes`
    this.#nodeSet = `${this.prefix}node:${this.id}`
    if (isClient(redis)) {
      this.#redis = redis
      this.#ownRedis = false
    } else {
      this.#redis = typeof redis === 'string' ? new Redis(redis, CONNECTION_DEFAULTS) : new Redis({ ...CONNECTION_DEFAULTS, ...redis })
      this.#ownRedis = true
    }
    this.#sub = options.subscriber ?? null
    this.#ownSub = options.subscriber === undefined
    this.#on(this.#redis, 'error', (err: Error) => this.#warn(err, 'redis command connection error'))
    this.#on(this.#redis, 'ready', () => {
      this.#loadScripts()
      this.#everReady = true
      if (this.#started) this.#background(this.#tick())
    })
  }

  /** True while the command connection is up. */
  get connected (): boolean {
    return !this.#closed && this.#redis.status === 'ready'
  }

  // ------------------------------------------------------------------ lifecycle

  async start (listener: PublicationListener, presence?: PresenceListener, command?: CommandListener, resync?: ResyncListener): Promise<void> {
    if (this.#closed) throw new redisErrorCodes.FST_REALTIME_BROKER_CLOSED()
    this.#listener = listener
    this.#presenceListener = presence ?? null
    this.#commandListener = command ?? null
    this.#resyncListener = resync ?? null
    if (this.#started) return
    this.#started = true
    await this.#connect(this.#redis)
    // A client handed over already connected missed our 'ready': load the scripts now.
    this.#loadScripts()
    const sub = this.#sub ??= this.#redis.duplicate({ lazyConnect: true, autoResubscribe: false, enableOfflineQueue: false })
    this.#on(sub, 'message', (channel: string, message: string) => this.#onMessage(channel, message))
    this.#on(sub, 'close', () => this.#onSubscriberLost())
    this.#on(sub, 'error', (err: Error) => this.#warn(err, 'redis subscriber connection error'))
    await this.#connect(sub)
    await this.#guard(sub.subscribe(this.#control))
    // From now on every reconnection subscribes again and closes the gaps.
    this.#on(sub, 'ready', () => this.#background(this.#resubscribe()))
    await this.#beat()
    this.#timer = setInterval(() => this.#background(this.#tick()), Math.max(10, Math.floor(this.#presenceTtl / 3)))
    this.#timer.unref()
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    this.#releaseWaiters(null)
    this.#listener = this.#presenceListener = this.#commandListener = this.#resyncListener = null
    const redis = this.#redis
    if (this.#started && redis.status === 'ready') {
      try {
        await this.#flushLeaves(true)
        // Whatever members this node still has leave now, each announced once.
        for (let i = 0; i < 10_000; i++) {
          if (await this.#eval(REAP, [this.#nodes], [this.prefix, this.#clock(), REAP_BATCH, this.id], true) !== 2) break
        }
      } catch (err) {
        this.#warn(err, 'could not remove this node\'s presence members on close')
      }
    }
    this.#members.clear()
    this.#topics.clear()
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
      // Redis is away and cannot assign an offset. The publication still reaches this
      // node's subscribers, outside the stream (offset 0: not in history, never
      // recovered, so no offset is invented that another node could contradict); the
      // caller sees offset 0. Clients elsewhere are told by the resync after Redis returns.
      const position = this.#localEphemeral(topic, data, options.except)
      return ephemeral ? position : { offset: 0, epoch: position.epoch }
    }
    const state = this.#topics.get(topic)
    const sub = this.#sub
    let origin = ''
    let echo: Promise<void> | undefined
    if (state !== undefined && state.live && sub !== null && sub.status === 'ready') {
      // This node subscribes to the topic: resolve once the publication came back, so
      // local subscribers have it by then and in Redis's order.
      const key = origin = `${this.id}:${++this.#seq}`
      echo = new Promise<void>((resolve) => {
        const timer = setTimeout(() => { this.#waiters.delete(key); resolve() }, ECHO_TIMEOUT)
        timer.unref()
        this.#waiters.set(key, { topic, done: () => { clearTimeout(timer); resolve() } })
      })
    }
    const history = options.history
    const size = ephemeral || history === undefined ? 0 : history.size
    const ttl = history?.ttl ?? 0
    // The stream key outlives its newest entry by the history ttl (or the meta ttl):
    // everything in it has expired by then. With a test clock, only the meta ttl.
    const streamExpire = ttl > 0 && this.#now === undefined ? (this.#metaTtl > 0 ? Math.min(ttl, this.#metaTtl) : ttl) : this.#metaTtl
    let result: [number, string]
    try {
      result = await this.#eval(PUBLISH, [this.#meta(topic), this.#stream(topic)], [
        newEpoch(), this.#clock(), ephemeral ? '1' : '0', size, ttl, this.#metaTtl, streamExpire,
        this.#channels + topic, origin, except, data
      ]) as [number, string]
    } catch (err) {
      if (origin !== '') this.#waiters.get(origin)?.done()
      this.#waiters.delete(origin)
      if (ephemeral) return this.#localEphemeral(topic, data, options.except)
      throw err
    }
    if (echo !== undefined) await echo
    return { offset: Number(result[0]), epoch: String(result[1]) }
  }

  async position (topic: string): Promise<StreamPosition> {
    const r = await this.#read(topic, 'p', 0, '', 0)
    return { offset: Number(r[0]), epoch: String(r[1]) }
  }

  async recover (topic: string, since: StreamPosition, limit: number): Promise<RecoveryResult> {
    const r = await this.#read(topic, 'r', since.offset, since.epoch, limit)
    const position = { offset: Number(r[0]), epoch: String(r[1]) }
    if (Number(r[2]) !== 1) return { position, recovered: false, publications: [] }
    const flat = r[3] as string[]
    const publications: Publication[] = []
    for (let i = 0; i < flat.length; i += 2) {
      publications.push(publicationOf(topic, since.offset + 1 + i / 2, position.epoch, flat[i], flat[i + 1]))
    }
    return { position, recovered: true, publications }
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
    return await this.#eval(READ, [this.#meta(topic), this.#stream(topic)], [
      newEpoch(), this.#clock(), this.#metaTtl, mode, sinceOffset, sinceEpoch, count(limit)
    ]) as unknown[]
  }

  #localEphemeral (topic: string, data: string, except: string[] | undefined): StreamPosition {
    // Redis is away: an ephemeral publication (outside the stream, never recovered)
    // still reaches this node's subscribers; other nodes do not get it.
    const last = this.#topics.get(topic)?.last ?? null
    const publication: Publication = { topic, offset: 0, epoch: last?.epoch ?? '', data }
    if (except !== undefined && except.length > 0) publication.except = except
    this.#deliver(publication)
    return { offset: last?.offset ?? 0, epoch: publication.epoch }
  }

  // ------------------------------------------------------------------ subscriptions

  async subscribe (topic: string): Promise<void> {
    if (this.#closed) throw new redisErrorCodes.FST_REALTIME_BROKER_CLOSED()
    const sub = this.#sub
    if (sub === null) throw new Error('RedisBroker: start() must be called before subscribe()')
    const state: TopicState = { last: null, live: false, syncing: null }
    this.#topics.set(topic, state)
    // Kept even when this fails: the plugin unsubscribes after a failed subscribe, and
    // until then a reconnection subscribes it with the others.
    if (sub.status !== 'ready') throw new redisErrorCodes.FST_REALTIME_BROKER_UNAVAILABLE(`subscriber connection is ${sub.status}`)
    await this.#guard(sub.subscribe(this.#channels + topic))
    if (this.#topics.get(topic) !== state) return
    if (state.syncing === null) state.live = true
    // Every local subscriber reads its own position after this resolves, so none of
    // them needs a publication at or before this one from live delivery.
    const position = await this.position(topic)
    const last = state.last
    if (last === null || last.epoch !== position.epoch || position.offset > last.offset) state.last = position
  }

  async unsubscribe (topic: string): Promise<void> {
    if (!this.#topics.delete(topic)) return
    this.#releaseWaiters(topic)
    const sub = this.#sub
    if (sub === null || sub.status !== 'ready') return
    // Should the connection go away meanwhile, a reconnection only subscribes the topics still held.
    await sub.unsubscribe(this.#channels + topic).catch((err: unknown) => this.#warn(err, 'redis unsubscribe failed'))
  }

  #onMessage (channel: string, message: string): void {
    try {
      if (channel === this.#control) {
        this.#commandListener?.(JSON.parse(message) as BrokerCommand)
        return
      }
      if (!channel.startsWith(this.#channels)) return
      const topic = channel.slice(this.#channels.length)
      const state = this.#topics.get(topic)
      if (state === undefined) return
      const kind = message[0]
      if (kind === 'j' || kind === 'l') {
        const nl = message.indexOf('\n', 2)
        this.#presenceListener?.({
          topic,
          kind: kind === 'j' ? 'join' : 'leave',
          member: { connectionId: message.slice(2, nl), data: message.slice(nl + 1) }
        })
        return
      }
      let at = 2
      let offset = 0
      if (kind === 'm') {
        const nl = message.indexOf('\n', at)
        offset = Number(message.slice(at, nl))
        at = nl + 1
      }
      const a = message.indexOf('\n', at)
      const b = message.indexOf('\n', a + 1)
      const c = message.indexOf('\n', b + 1)
      const publication = publicationOf(topic, offset, message.slice(at, a), message.slice(c + 1), message.slice(b + 1, c))
      if (state.syncing !== null) state.syncing.push(publication)
      else this.#accept(topic, state, publication)
      if (b > a + 1) {
        const waiter = this.#waiters.get(message.slice(a + 1, b))
        if (waiter !== undefined) {
          this.#waiters.delete(message.slice(a + 1, b))
          waiter.done()
        }
      }
    } catch (err) {
      this.#error(err, 'failed handling a message from redis')
    }
  }

  /** Delivers a live publication, watching the topic's epoch. */
  #accept (topic: string, state: TopicState, publication: Publication): void {
    if (publication.offset > 0) {
      const last = state.last
      if (last !== null && last.epoch !== publication.epoch) {
        // The stream was reset under us (flush, restart, meta expiry): subscribers
        // holding the old epoch must resubscribe; they cannot recover across epochs.
        state.last = { offset: publication.offset, epoch: publication.epoch }
        this.#lost(topic)
      } else if (last === null || publication.offset > last.offset) {
        state.last = { offset: publication.offset, epoch: publication.epoch }
      }
    }
    this.#deliver(publication)
  }

  #deliver (publication: Publication): void {
    try {
      this.#listener?.(publication)
    } catch (err) {
      this.#error(err, 'publication listener failed')
    }
  }

  #lost (topic: string): void {
    const listener = this.#resyncListener
    if (listener === null) {
      this.#log?.warn({ topic }, 'continuity lost on a topic and no resync listener to tell its subscribers')
      return
    }
    try {
      listener(topic)
    } catch (err) {
      this.#error(err, 'resync listener failed')
    }
  }

  #onSubscriberLost (): void {
    for (const state of this.#topics.values()) state.live = false
    this.#releaseWaiters(null)
  }

  #releaseWaiters (topic: string | null): void {
    for (const [key, waiter] of this.#waiters) {
      if (topic !== null && waiter.topic !== topic) continue
      this.#waiters.delete(key)
      waiter.done()
    }
  }

  /** The subscriber connection is back: subscribe again, then close each topic's gap. */
  async #resubscribe (): Promise<void> {
    const sub = this.#sub as Redis
    const generation = ++this.#generation
    const entries = [...this.#topics]
    for (const [, state] of entries) {
      state.live = false
      state.syncing ??= []
    }
    try {
      const channels = [this.#control, ...entries.map(([topic]) => this.#channels + topic)]
      for (let i = 0; i < channels.length; i += SUBSCRIBE_BATCH) await sub.subscribe(...channels.slice(i, i + SUBSCRIBE_BATCH))
    } catch (err) {
      this.#warn(err, 'resubscribing failed; trying again on the next reconnection')
      return
    }
    await Promise.all(entries.map(([topic, state]) => this.#resync(topic, state, generation)))
  }

  async #resync (topic: string, state: TopicState, generation: number): Promise<void> {
    const current = () => this.#topics.get(topic) === state && this.#generation === generation
    for (let attempt = 1; current(); attempt++) {
      try {
        if (state.last === null) {
          state.last = await this.position(topic)
        } else {
          const r = await this.recover(topic, state.last, this.#resyncLimit)
          if (!current()) return
          state.last = r.position
          if (r.recovered) {
            for (const publication of r.publications) this.#deliver(publication)
          } else {
            this.#lost(topic)
          }
        }
        break
      } catch (err) {
        if (attempt >= RESYNC_ATTEMPTS) {
          this.#warn(err, 'could not check a topic for missed publications; telling its subscribers')
          this.#lost(topic)
          break
        }
        await new Promise((resolve) => setTimeout(resolve, RESYNC_DELAY).unref())
      }
    }
    if (!current()) return
    const held = state.syncing ?? []
    state.syncing = null
    state.live = true
    for (const publication of held) {
      const last = state.last
      if (publication.offset > 0 && last !== null && publication.epoch === last.epoch && publication.offset <= last.offset) continue
      this.#accept(topic, state, publication)
    }
  }

  // ------------------------------------------------------------------ presence

  async join (topic: string, member: PresenceMember): Promise<void> {
    if (member.connectionId.includes('\n')) throw new TypeError('A presence member\'s connection id cannot contain a line break')
    const key = `${member.connectionId}\n${topic}`
    this.#members.set(key, { topic, member })
    this.#leaves.delete(key)
    let alive: unknown
    try {
      alive = await this.#join(topic, member, false)
    } catch (err) {
      this.#members.delete(key)
      throw err
    }
    if (alive === 0) this.#background(this.#rejoin())
  }

  #join (topic: string, member: PresenceMember, onlyIfAbsent: boolean): Promise<unknown> {
    return this.#eval(JOIN, [this.#nodes, this.#nodeSet, this.#presence(topic)], [
      this.id, this.#clock(), this.#presenceTtl, member.connectionId, member.data, this.#channels + topic, onlyIfAbsent ? '1' : '0', topic
    ])
  }

  async leave (topic: string, connectionId: string): Promise<void> {
    const key = `${connectionId}\n${topic}`
    this.#members.delete(key)
    try {
      await this.#leave(topic, connectionId)
    } catch (err) {
      // Retried with the next heartbeat: a member must not outlive its connection.
      this.#leaves.set(key, { topic, connectionId })
      throw err
    }
  }

  #leave (topic: string, connectionId: string, closing = false): Promise<unknown> {
    return this.#eval(LEAVE, [this.#presence(topic)], [this.prefix, connectionId, topic, this.#channels + topic], closing)
  }

  async members (topic: string): Promise<PresenceMember[]> {
    const flat = await this.#eval(MEMBERS, [this.#presence(topic), this.#nodes], [this.#clock()]) as string[]
    const members: PresenceMember[] = []
    for (let i = 0; i < flat.length; i += 2) members.push({ connectionId: flat[i], data: flat[i + 1] })
    return members
  }

  /** Redis forgot some of this node's members: add back those still missing (each heard as a join). */
  async #rejoin (): Promise<void> {
    const members = [...this.#members.values()]
    const results = await Promise.allSettled(members.map(({ topic, member }) => this.#join(topic, member, true)))
    for (const r of results) if (r.status === 'rejected') this.#warn(r.reason, 'could not add a presence member back')
  }

  async #beat (): Promise<void> {
    const alive = await this.#eval(BEAT, [this.#nodes], [this.id, this.#clock(), this.#presenceTtl])
    if (alive === 0 && this.#members.size > 0) await this.#rejoin()
  }

  async #flushLeaves (closing = false): Promise<void> {
    for (const [key, { topic, connectionId }] of this.#leaves) {
      await this.#leave(topic, connectionId, closing)
      this.#leaves.delete(key)
    }
  }

  /** Heartbeat, pending leaves, then the sweep of members whose node stopped beating. */
  async #tick (): Promise<void> {
    if (this.#ticking || this.#closed || this.#redis.status !== 'ready') return
    this.#ticking = true
    try {
      await this.#beat()
      await this.#flushLeaves()
      for (let i = 0; i < 100; i++) {
        if (await this.#eval(REAP, [this.#nodes], [this.prefix, this.#clock(), REAP_BATCH, '']) === 0) break
      }
    } catch (err) {
      this.#warn(err, 'presence upkeep failed')
    } finally {
      this.#ticking = false
    }
  }

  // ------------------------------------------------------------------ commands

  async command (command: BrokerCommand): Promise<void> {
    const redis = await this.#client()
    await this.#guard(redis.publish(this.#control, JSON.stringify(command)))
  }

  // ------------------------------------------------------------------ idempotency

  async claimIdempotent (scope: IdempotencyScope, token: string, pendingMs: number): Promise<IdempotencyClaim> {
    const [status, answer] = await this.#eval(CLAIM, [idempotencyKey(this.prefix, scope)], [token, Math.max(1, Math.ceil(pendingMs))]) as [string, string?]
    if (status === 'done') return { status, answer: answer ?? '' }
    return status === 'claimed' ? { status } : { status: 'pending' }
  }

  async settleIdempotent (scope: IdempotencyScope, token: string, answer: string | null, ttlMs: number): Promise<void> {
    await this.#eval(SETTLE, [idempotencyKey(this.prefix, scope)], [token, answer === null ? '0' : '1', answer ?? '', Math.max(1, Math.ceil(ttlMs))])
  }

  // ------------------------------------------------------------------ plumbing

  #meta (topic: string): string {
    return `${this.prefix}{${topic}}:meta`
  }

  #stream (topic: string): string {
    return `${this.prefix}{${topic}}:stream`
  }

  #presence (topic: string): string {
    return `${this.prefix}{${topic}}:presence`
  }

  #clock (): number {
    return this.#now === undefined ? -1 : this.#now()
  }

  #on (emitter: Redis, event: string, fn: (...args: any[]) => void): void {
    emitter.on(event, fn)
    this.#handlers.push([emitter, event, fn])
  }

  async #client (): Promise<Redis> {
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

  #connect (connection: Redis): Promise<void> {
    if (connection.status === 'ready') return Promise.resolve()
    if (connection.status === 'end') return Promise.reject(new redisErrorCodes.FST_REALTIME_BROKER_UNAVAILABLE('connection ended'))
    let pending = this.#connecting.get(connection)
    if (pending !== undefined) return pending
    pending = new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        connection.off('ready', onReady)
        connection.off('error', onError)
        connection.off('end', onEnd)
        this.#connecting.delete(connection)
        if (err === undefined) resolve()
        else reject(new redisErrorCodes.FST_REALTIME_BROKER_UNAVAILABLE(err.message, { cause: err }))
      }
      const onReady = (): void => done()
      const onError = (err: Error): void => done(err)
      const onEnd = (): void => done(new Error('connection ended'))
      connection.on('ready', onReady)
      connection.on('error', onError)
      connection.on('end', onEnd)
      // A failed first attempt is reported through 'error' as well.
      if (connection.status === 'wait') connection.connect().catch(() => {})
    })
    this.#connecting.set(connection, pending)
    return pending
  }

  /**
   * Loads every script as soon as the connection is ready, ahead of any command on it.
   * Without this the first EVALSHA of each script fails with NOSCRIPT and is sent again
   * as EVAL, and concurrent publications overtake the ones being resent: their order
   * (and so one node's publication order) would be lost.
   */
  #loadScripts (): void {
    for (const script of SCRIPTS) {
      this.#redis.script('LOAD', script.lua).catch((err: unknown) => this.#warn(err as Error, 'redis script load failed'))
    }
  }

  /** Runs a script; `closing` lets close() still use the connection for its last cleanup. */
  async #eval (script: LuaScript, keys: string[], args: Array<string | number>, closing = false): Promise<unknown> {
    const redis = closing ? this.#redis : await this.#client()
    try {
      return await redis.evalsha(script.sha, script.keys, ...keys, ...args)
    } catch (err) {
      if (!String((err as Error).message).startsWith('NOSCRIPT')) throw this.#wrap(err)
    }
    // Redis restarted or its script cache was flushed: EVAL loads it again.
    return await this.#guard(redis.eval(script.lua, script.keys, ...keys, ...args))
  }

  async #guard<T> (work: Promise<T>): Promise<T> {
    try {
      return await work
    } catch (err) {
      throw this.#wrap(err)
    }
  }

  /** Connection failures become FST_REALTIME_BROKER_UNAVAILABLE; errors from Redis itself stay as they are. */
  #wrap (err: unknown): Error {
    const e = err as Error
    if (e.name === 'ReplyError') return e
    return new redisErrorCodes.FST_REALTIME_BROKER_UNAVAILABLE(e.message, { cause: e })
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
  if (!Number.isInteger(value) || value < 1) throw new TypeError(`RedisBroker option "${name}" must be a whole number of milliseconds >= 1`)
  return value
}

function newEpoch (): string {
  return randomBytes(9).toString('base64url')
}

function publicationOf (topic: string, offset: number, epoch: string, data: string, except: string): Publication {
  const publication: Publication = { topic, offset, epoch, data }
  if (except !== '') publication.except = JSON.parse(except) as string[]
  return publication
}

async function end (connection: Redis): Promise<void> {
  if (connection.status === 'ready') {
    try {
      await connection.quit()
      return
    } catch {}
  }
  connection.disconnect()
}
