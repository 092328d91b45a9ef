// What a node receives from Redis on its topics, and how it keeps each topic's live
// delivery contiguous: every publication in offset order, once, or the resync listener
// told. The broker (redis.ts) owns the connections and scripts; this keeps the state.
//
// - A node that publishes to a topic it subscribes to resolves publish() only once its
//   own publication came back on the channel (its echo), so local delivery keeps
//   Redis's order.
// - Within an epoch a topic's offsets rise by one, so a skipped offset on the live
//   channel means missed publications (a shard's subscriber was replaced): the node
//   fills the gap from the history before delivering on.
// - After the subscriber connection (or a shard's subscriber) comes back, every topic
//   is resynced: missed publications replayed from the history; where that is
//   impossible (trimmed, another epoch, or the stream is behind what was delivered
//   after a failover) the resync listener is told.
import type { BrokerCommand, CommandListener, PresenceListener, Publication, PublicationListener, RecoveryResult, ResyncListener, StreamPosition } from './types.js'
import type { RedisKeys } from './redis-keys.js'
import { decodeMessage } from './redis-messages.js'

/** What the feeds need from the broker (the Redis one, or the PostgreSQL one, which frames its notifications the same way). */
export interface FeedHost {
  readonly keys: Pick<RedisKeys, 'control' | 'topicOf'>
  position: (topic: string) => Promise<StreamPosition>
  recover: (topic: string, since: StreamPosition, limit: number) => Promise<RecoveryResult>
  /** Starts a new epoch when the stream is behind `last` in its epoch; returns the epoch in force. */
  rewind: (topic: string, last: StreamPosition) => Promise<string>
  /** Subscribes the topics' channels again (and the control channel where needed). */
  listen: (topics: string[]) => Promise<void>
  warn: (obj: object, msg: string) => void
  error: (err: unknown, msg: string) => void
  background: (work: Promise<unknown>) => void
}

export interface FeedListeners {
  publication: PublicationListener | null
  presence: PresenceListener | null
  command: CommandListener | null
  resync: ResyncListener | null
}

interface TopicState {
  /** The last stream position this node delivered (or that its subscribers started from). */
  last: StreamPosition | null
  /** Subscribed and in step: a local publish may wait for its own echo. */
  live: boolean
  /** While resyncing: publications held until the gap is filled. */
  syncing: Publication[] | null
  /** Held from add() until subscribed() read the position (a channel that may carry what came before, PostgreSQL's). */
  holding: boolean
}

interface Waiter {
  topic: string
  done: () => void
}

/** Longest wait for a publication's own echo before publish() resolves anyway. */
const ECHO_TIMEOUT = 2000
const RESYNC_ATTEMPTS = 10
const RESYNC_DELAY = 200

export class TopicFeeds {
  readonly listeners: FeedListeners = { publication: null, presence: null, command: null, resync: null }
  readonly #host: FeedHost
  readonly #node: string
  readonly #resyncLimit: number
  readonly #topics = new Map<string, TopicState>()
  readonly #waiters = new Map<string, Waiter>()
  #seq = 0
  #generation = 0

  constructor (host: FeedHost, node: string, resyncLimit: number) {
    this.#host = host
    this.#node = node
    this.#resyncLimit = resyncLimit
  }

  /**
   * Starts holding a topic (before its channel is subscribed); returns a check that it
   * is still this subscription. With `hold`, what arrives before subscribed() read the
   * topic's position waits, and what that position covers is dropped: on a channel that
   * carries every topic (PostgreSQL's), a publication older than the subscription may
   * still be on its way.
   */
  add (topic: string, hold = false): () => boolean {
    const state: TopicState = { last: null, live: false, syncing: hold ? [] : null, holding: hold }
    this.#topics.set(topic, state)
    return () => this.#topics.get(topic) === state
  }

  /** The channel is subscribed: live, and in step from the topic's position on. */
  async subscribed (topic: string): Promise<void> {
    const state = this.#topics.get(topic)
    if (state === undefined) return
    if (state.syncing === null) state.live = true
    // Every local subscriber reads its own position after this resolves, so none of
    // them needs a publication at or before this one from live delivery.
    const position = await this.#host.position(topic)
    const last = state.last
    if (last === null || last.epoch !== position.epoch || position.offset > last.offset) state.last = position
    if (state.holding && this.#topics.get(topic) === state) {
      state.holding = false
      this.#release(topic, state)
    }
  }

  remove (topic: string): boolean {
    if (!this.#topics.delete(topic)) return false
    this.#releaseWaiters(topic)
    return true
  }

  clear (): void {
    this.#releaseWaiters(null)
    this.#topics.clear()
    this.listeners.publication = this.listeners.presence = this.listeners.command = this.listeners.resync = null
  }

  /**
   * When the node subscribes to the topic and is in step: an origin tag for the
   * publication and a promise that resolves once it came back (or after a timeout).
   */
  expectEcho (topic: string): { origin: string, echo: Promise<void> } | null {
    if (this.#topics.get(topic)?.live !== true) return null
    const origin = `${this.#node}:${++this.#seq}`
    const echo = new Promise<void>((resolve) => {
      const timer = setTimeout(() => { this.#waiters.delete(origin); resolve() }, ECHO_TIMEOUT)
      timer.unref()
      this.#waiters.set(origin, { topic, done: () => { clearTimeout(timer); resolve() } })
    })
    return { origin, echo }
  }

  /** The publication failed: nobody waits for its echo. */
  cancelEcho (origin: string): void {
    this.#waiters.get(origin)?.done()
    this.#waiters.delete(origin)
  }

  /** The last position delivered on a topic, if held. */
  last (topic: string): StreamPosition | null {
    return this.#topics.get(topic)?.last ?? null
  }

  onMessage (channel: string, message: string): void {
    try {
      if (channel === this.#host.keys.control) {
        this.listeners.command?.(JSON.parse(message) as BrokerCommand)
        return
      }
      const topic = this.#host.keys.topicOf(channel)
      if (topic === null) return
      const state = this.#topics.get(topic)
      if (state === undefined) return
      const decoded = decodeMessage(topic, message)
      if (decoded.kind === 'presence') {
        this.listeners.presence?.(decoded.event)
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
      this.#host.error(err, 'failed handling a message from redis')
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
        // Offsets skipped: this node missed publications. Fill the gap from the
        // history, then deliver this one.
        state.syncing = [publication]
        state.live = false
        this.#host.background(this.#resync(topic, state, this.#generation))
        return
      } else if (last !== null && publication.offset <= last.offset) {
        // Delivered already: replayed from the history by a resync whose read overtook
        // the channel, or at or before the position the topic's subscribers started from.
        return
      } else {
        state.last = { offset: publication.offset, epoch: publication.epoch }
      }
    }
    this.deliver(publication)
  }

  deliver (publication: Publication): void {
    try {
      this.listeners.publication?.(publication)
    } catch (err) {
      this.#host.error(err, 'publication listener failed')
    }
  }

  #lost (topic: string): void {
    const listener = this.listeners.resync
    if (listener === null) {
      this.#host.warn({ topic }, 'continuity lost on a topic and no resync listener to tell its subscribers')
      return
    }
    try {
      listener(topic)
    } catch (err) {
      this.#host.error(err, 'resync listener failed')
    }
  }

  /** The subscriber connection (or a shard's) went away: nobody waits for echoes that may never come. */
  subscriberLost (): void {
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

  /** The subscriber connection is back (or a shard's subscriber replaced): subscribe again, then close each topic's gap. */
  async resubscribe (): Promise<void> {
    const generation = ++this.#generation
    const entries = [...this.#topics]
    for (const [, state] of entries) {
      state.live = false
      state.syncing ??= []
    }
    try {
      await this.#host.listen(entries.map(([topic]) => topic))
    } catch (err) {
      this.#host.warn({ err }, 'resubscribing failed; trying again on the next reconnection')
      return
    }
    await Promise.all(entries.map(([topic, state]) => this.#resync(topic, state, generation)))
  }

  async #resync (topic: string, state: TopicState, generation: number): Promise<void> {
    const current = () => this.#topics.get(topic) === state && this.#generation === generation
    for (let attempt = 1; current(); attempt++) {
      try {
        if (state.last === null) {
          state.last = await this.#host.position(topic)
        } else {
          const last: StreamPosition = state.last
          const r = await this.#host.recover(topic, last, this.#resyncLimit)
          if (!current()) return
          if (r.recovered) {
            state.last = r.position
            for (const publication of r.publications) this.deliver(publication)
          } else {
            state.last = await this.#rewound(topic, last, r.position)
            this.#lost(topic)
          }
        }
        break
      } catch (err) {
        if (attempt >= RESYNC_ATTEMPTS) {
          this.#host.warn({ err }, 'could not check a topic for missed publications; telling its subscribers')
          this.#lost(topic)
          break
        }
        await new Promise((resolve) => setTimeout(resolve, RESYNC_DELAY).unref())
      }
    }
    if (!current()) return
    state.holding = false
    this.#release(topic, state)
  }

  /** Live again: what was held is delivered, but nothing the position already covers. */
  #release (topic: string, state: TopicState): void {
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
    this.#host.warn({ topic, delivered: last.offset, stored: now.offset }, 'a topic\'s stream lost publications (failover): starting a new epoch')
    return { offset: now.offset, epoch: await this.#host.rewind(topic, last) }
  }
}
