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
// - Within an epoch a topic's offsets rise by one, so a node that sees one skipped on
//   the live channel has missed something (a shard's subscriber was replaced) and
//   fills the gap from the history before delivering on.
// - On Redis Cluster every topic lives on one shard (redis-keys.ts) and its channel is
//   sharded; when a shard fails over, the node resyncs its topics against the promoted
//   replica, whose stream may lack the last publications: then the topic starts a new
//   epoch and its subscribers are told (redis-scripts.ts, REWIND).
// - Presence is redis-presence.ts.
import { randomBytes } from 'node:crypto'
import type { Cluster, ClusterNode, ClusterOptions, Redis, RedisOptions } from 'ioredis'
import type { Broker, BrokerCommand, CommandListener, PresenceListener, PresenceMember, Publication, PublicationListener, PublishOptions, RecoveryResult, ResyncListener, StreamPosition } from './types.js'
import { decodeMessage, publicationOf } from './redis-messages.js'
import { PUBLISH, READ, REWIND, type LuaScript } from './redis-scripts.js'
import { commandConnection, connect, end, isCluster, loadScripts, loadScriptsOn, redisErrorCodes, runScript, subscriberFor, wrapError, type RedisClient } from './redis-connection.js'
import { RedisKeys } from './redis-keys.js'
import { RedisPresence } from './redis-presence.js'

export { redisErrorCodes }

/** Any pino-like logger (`app.log`). */
export interface RedisBrokerLog {
  warn: (obj: object, msg?: string) => void
  error: (obj: object, msg?: string) => void
}

export interface RedisBrokerOptions {
  /**
   * A `redis://` URL, ioredis options, or an ioredis client (standalone or Sentinel; an
   * ioredis Cluster client works too). A client you pass stays yours: close() does not
   * close it. Default `redis://127.0.0.1:6379`.
   */
  redis?: string | RedisOptions | Redis | Cluster
  /**
   * Redis Cluster (7.0 or newer): its nodes (`"host:port"` or `{ host, port }`, a few
   * suffice: the rest are discovered) or an ioredis Cluster client. Excludes `redis`.
   */
  cluster?: ClusterNode[] | Cluster
  /** ioredis Cluster options for the clients the broker makes from `cluster`'s nodes. */
  clusterOptions?: ClusterOptions
  /**
   * An ioredis client for subscribing. Default: a duplicate of the command connection
   * (on a cluster, with one sharded subscriber per master), owned by the broker.
   */
  subscriber?: RedisClient
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

const DEFAULT_PREFIX = 'rt:'
const DEFAULT_PRESENCE_TTL = 30_000
const DEFAULT_META_TTL = 24 * 60 * 60_000
const DEFAULT_RESYNC_LIMIT = 1000
/** Longest wait for a publication's own echo before publish() resolves anyway. */
const ECHO_TIMEOUT = 2000
const RESYNC_ATTEMPTS = 10
const RESYNC_DELAY = 200
const SUBSCRIBE_BATCH = 1000

function count (limit: number): string {
  return Number.isFinite(limit) ? String(Math.max(0, Math.floor(limit))) : '1000000000'
}

export class RedisBroker implements Broker {
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
  readonly #resyncLimit: number
  readonly #now: (() => number) | undefined
  readonly #log: RedisBrokerLog | undefined
  readonly #presence: RedisPresence

  #listener: PublicationListener | null = null
  #presenceListener: PresenceListener | null = null
  #commandListener: CommandListener | null = null
  #resyncListener: ResyncListener | null = null

  readonly #topics = new Map<string, TopicState>()
  readonly #waiters = new Map<string, Waiter>()
  readonly #handlers: Array<[RedisClient, string, (...args: any[]) => void]> = []
  readonly #connecting = new Map<RedisClient, Promise<void>>()
  #seq = 0
  #generation = 0
  #timer: NodeJS.Timeout | null = null
  #ticking = false
  #started = false
  #closed = false
  #everReady = false
  readonly #localWhileDown: boolean

  constructor (options: RedisBrokerOptions = {}) {
    this.prefix = options.prefix ?? DEFAULT_PREFIX
    this.#presenceTtl = positive('presenceTtl', options.presenceTtl, DEFAULT_PRESENCE_TTL)
    this.#metaTtl = options.metaTtl === 0 ? 0 : positive('metaTtl', options.metaTtl, DEFAULT_META_TTL)
    this.#resyncLimit = options.resyncLimit ?? DEFAULT_RESYNC_LIMIT
    this.#localWhileDown = options.localWhileDown ?? true
    this.#now = options.now
    this.#log = options.log
    const { client, own } = commandConnection(options.redis, options.cluster, options.clusterOptions)
    this.#redis = client
    this.#ownRedis = own
    this.keys = new RedisKeys(this.prefix, isCluster(client))
    this.#sub = options.subscriber ?? null
    this.#ownSub = options.subscriber === undefined
    if (this.#sub !== null && isCluster(this.#sub) !== this.keys.cluster) {
      throw new TypeError('RedisBroker option "subscriber" must be a cluster client exactly when the command connection is one')
    }
    this.#presence = new RedisPresence({
      id: this.id,
      keys: this.keys,
      eval: (script, keys, args, closing) => this.#eval(script, keys, args, closing),
      client: async (closing) => closing === true ? this.#redis : await this.#client(),
      clock: () => this.#clock(),
      warn: (err, msg) => this.#warn(err, msg)
    }, this.#presenceTtl)
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
    this.#listener = listener
    this.#presenceListener = presence ?? null
    this.#commandListener = command ?? null
    this.#resyncListener = resync ?? null
    if (this.#started) return
    this.#started = true
    await this.#connect(this.#redis)
    // A client handed over already connected missed our 'ready': load the scripts now.
    this.#loadScripts()
    const sub = this.#sub ??= subscriberFor(this.#redis)
    this.#on(sub, 'message', (channel: string, message: string) => this.#onMessage(channel, message))
    this.#on(sub, 'smessage', (channel: string, message: string) => this.#onMessage(channel, message))
    this.#on(sub, 'close', () => this.#onSubscriberLost())
    this.#on(sub, 'error', (err: Error) => this.#warn(err, 'redis subscriber connection error'))
    await this.#connect(sub)
    await this.#guard(sub.subscribe(this.keys.control))
    if (this.keys.cluster) {
      // A shard's subscriber went away (its master failed, or slots moved): until the
      // replacement is subscribed, this node's topics may miss publications.
      this.#on(sub, '-node', () => this.#onSubscriberLost())
      this.#on(sub, 'subscribersReady', () => this.#background(this.#resubscribe()))
    } else {
      // From now on every reconnection subscribes again and closes the gaps.
      this.#on(sub, 'ready', () => this.#background(this.#resubscribe()))
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
    this.#releaseWaiters(null)
    this.#listener = this.#presenceListener = this.#commandListener = this.#resyncListener = null
    const redis = this.#redis
    if (this.#started && redis.status === 'ready') {
      try {
        await this.#presence.close()
      } catch (err) {
        this.#warn(err, 'could not remove this node\'s presence members on close')
      }
    }
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
      result = await this.#eval(PUBLISH, [this.keys.meta(topic), this.keys.stream(topic)], [
        newEpoch(), this.#clock(), ephemeral ? '1' : '0', size, ttl, this.#metaTtl, streamExpire,
        this.keys.channel(topic), origin, except, data, this.keys.publish
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
    return await this.#eval(READ, [this.keys.meta(topic), this.keys.stream(topic)], [
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
    await this.#guard(this.#listen(sub, [topic]))
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

  #onMessage (channel: string, message: string): void {
    try {
      if (channel === this.keys.control) {
        this.#commandListener?.(JSON.parse(message) as BrokerCommand)
        return
      }
      const topic = this.keys.topicOf(channel)
      if (topic === null) return
      const state = this.#topics.get(topic)
      if (state === undefined) return
      const decoded = decodeMessage(topic, message)
      if (decoded.kind === 'presence') {
        this.#presenceListener?.(decoded.event)
        return
      }
      const { publication, origin } = decoded
      if (state.syncing !== null) state.syncing.push(publication)
      else this.#accept(topic, state, publication)
      if (origin !== '') {
        const waiter = this.#waiters.get(origin)
        if (waiter !== undefined) {
          this.#waiters.delete(origin)
          waiter.done()
        }
      }
    } catch (err) {
      this.#error(err, 'failed handling a message from redis')
    }
  }

  /** Delivers a live publication, watching the topic's epoch and offsets. */
  #accept (topic: string, state: TopicState, publication: Publication): void {
    if (publication.offset > 0) {
      const last = state.last
      if (last !== null && last.epoch !== publication.epoch) {
        // The stream was reset under us (flush, restart, meta expiry): subscribers
        // holding the old epoch must resubscribe; they cannot recover across epochs.
        state.last = { offset: publication.offset, epoch: publication.epoch }
        this.#lost(topic)
      } else if (last !== null && publication.offset > last.offset + 1) {
        // Offsets skipped: this node missed publications (its shard subscriber was
        // replaced). Fill the gap from the history, then deliver this one.
        state.syncing = [publication]
        state.live = false
        this.#background(this.#resync(topic, state, this.#generation))
        return
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

  /** The subscriber connection is back (a shard's subscriber replaced): subscribe again, then close each topic's gap. */
  async #resubscribe (): Promise<void> {
    const sub = this.#sub as RedisClient
    const generation = ++this.#generation
    const entries = [...this.#topics]
    for (const [, state] of entries) {
      state.live = false
      state.syncing ??= []
    }
    try {
      // On a cluster the client subscribed again already; asking once more returns
      // once that is in force, so nothing published after the resync's read is missed.
      if (!this.keys.cluster) await sub.subscribe(this.keys.control)
      await this.#listen(sub, entries.map(([topic]) => topic))
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
          const last: StreamPosition = state.last
          const r = await this.recover(topic, last, this.#resyncLimit)
          if (!current()) return
          if (r.recovered) {
            state.last = r.position
            for (const publication of r.publications) this.#deliver(publication)
          } else {
            state.last = await this.#rewound(topic, last, r.position)
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

  /**
   * The stream is behind what this node delivered in the same epoch: a promoted replica
   * lacks the last publications. Those offsets must not be handed out again under the
   * same epoch, so the topic gets a new one. Returns the position to go on from.
   */
  async #rewound (topic: string, last: StreamPosition, now: StreamPosition): Promise<StreamPosition> {
    if (now.epoch !== last.epoch || now.offset >= last.offset) return now
    this.#log?.warn({ topic, delivered: last.offset, stored: now.offset }, 'a topic\'s stream lost publications (failover): starting a new epoch')
    const epoch = await this.#eval(REWIND, [this.keys.meta(topic), this.keys.stream(topic)], [last.epoch, last.offset, newEpoch()])
    return { offset: now.offset, epoch: String(epoch) }
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
  if (!Number.isInteger(value) || value < 1) throw new TypeError(`RedisBroker option "${name}" must be a whole number of milliseconds >= 1`)
  return value
}

function newEpoch (): string {
  return randomBytes(9).toString('base64url')
}
