// Local fan-out: which connections of this process subscribe to which topic, and the
// delivery of what the broker hands us to them. A publication arrives serialised once
// (by the topic's schema, on the publishing node) and is framed here once (and
// compressed once where that is on), into a Buffer written as it is to every
// subscriber's socket that can take it (compress-once.ts, ws-frame.ts).
import type { Broker, PresenceEvent, Publication } from '../broker/types.js'
import type { Connection } from '../connection/connection.js'
import { deliver, type Delivery, type GapHandler } from './delivery.js'
import { ephemeralFrame, messageFrame, presenceCountFrame, presenceFrame } from '../wire/frames.js'
import { PresenceCounts } from './presence-counts.js'
import { channels, dropTally } from '../protocol/diagnostics.js'
import { SharedFrame } from '../wire/compress-once.js'
import type { CompressionOptions } from '../wire/compression-options.js'
import { FanOuts, type Subscribers } from './fan-out.js'
import { untag } from './tags.js'
import { FilterIndex } from './filter-index.js'
import { DeltaFrames } from './delta-frames.js'

/** The last stream publication a delta topic delivered on this node: the base of the next one's delta. */
interface Last { offset: number, epoch: string, data: string }

/** What the hub asks of a topic's declaration. */
export interface HubTopics {
  /** For a topic whose presence is counted, the ms between two counts; null otherwise. */
  countInterval?: (topic: string) => number | null
  /** Whether the topic has delta compression. */
  delta?: (topic: string) => boolean
}

export class Hub {
  readonly #subscribers = new Map<string, Set<Connection>>()
  readonly #pending = new Map<string, Promise<void>>()
  readonly #broker: Broker
  readonly #onGap: GapHandler
  readonly #compression: CompressionOptions | undefined
  readonly #fanOuts: FanOuts
  readonly #countInterval: (topic: string) => number | null
  readonly #counts: PresenceCounts
  /** Filtered subscribers grouped by filter, for the topics that have some. */
  readonly #filters = new FilterIndex()
  /** Whether a topic has delta compression (its declaration's `delta`). */
  readonly #deltaTopic: (topic: string) => boolean
  /** Per topic with subscribers here and delta compression: its last publication (null before one). */
  readonly #last = new Map<string, Last | null>()

  /**
   * `slice`: subscribers written to per event-loop turn by one fan-out (the `fanOutSlice`
   * option). `topic.countInterval`: for a topic whose presence is counted, the ms between
   * two counts, null otherwise; `topic.delta`: whether it has delta compression.
   */
  constructor (broker: Broker, onGap: GapHandler, slice: number, compression?: CompressionOptions, topic: HubTopics = {}) {
    this.#broker = broker
    this.#onGap = onGap
    this.#fanOuts = new FanOuts(slice)
    this.#compression = compression
    const countInterval = topic.countInterval ?? (() => null)
    this.#countInterval = countInterval
    this.#counts = new PresenceCounts(broker, (topic, count) => {
      const subscribers = this.#subscribers.get(topic)
      if (subscribers === undefined) return
      this.#fanOut(topic, subscribers, { offset: 0, epoch: '', frame: this.shared(presenceCountFrame(topic, count)), volatile: true }, 'presence')
    })
    this.#deltaTopic = topic.delta ?? (() => false)
  }

  /** A frame for many connections, compressed once where that is on. */
  shared (text: string): SharedFrame {
    return new SharedFrame(text, this.#compression)
  }

  /** Called by the broker for every publication on a topic this node subscribes to. */
  deliver (publication: Publication): void {
    const subscribers = this.#subscribers.get(publication.topic)
    if (subscribers === undefined) return
    const offset = publication.offset
    // Tags ride ahead of the data (tags.ts): split off once per publication, never sent.
    const { data, tags } = untag(publication.data)
    const delivery: Delivery = {
      offset,
      epoch: publication.epoch,
      // Offset 0 (ephemeral, or local-only while the broker was away) is outside the
      // stream: the delivery rule neither counts it nor moves a subscriber's offset.
      frame: this.shared(offset === 0
        ? ephemeralFrame(publication.topic, data, publication.local === true)
        : messageFrame(publication.topic, offset, publication.epoch, data)),
      // Ephemeral publications (typing) are dropped for a slow subscriber, never closed over.
      volatile: true
    }
    if (publication.except !== undefined) delivery.except = publication.except
    if (tags !== undefined) delivery.tags = tags
    if (offset > 0 && this.#last.has(publication.topic)) this.#deltaForms(publication, data, delivery)
    // Tagged, on a topic with filtered subscribers here: only those it is for are visited.
    const recipients = tags === undefined ? undefined : this.#filters.recipients(publication.topic, delivery)
    this.#fanOut(publication.topic, recipients ?? subscribers, delivery, 'message')
  }

  /** The delta forms of a stream publication on a delta topic; it becomes the base of the next. */
  #deltaForms (publication: Publication, data: string, delivery: Delivery): void {
    const { topic, offset, epoch } = publication
    const last = this.#last.get(topic)
    const previous = last != null && last.epoch === epoch && last.offset === offset - 1 ? last.data : undefined
    delivery.delta = new DeltaFrames(topic, offset, epoch, data, previous, (text) => this.shared(text))
    this.#last.set(topic, { offset, epoch, data })
  }

  /** Called by the broker for a presence change: every local subscriber but the member itself hears it. */
  deliverPresence (event: PresenceEvent): void {
    const subscribers = this.#subscribers.get(event.topic)
    if (subscribers === undefined) return
    const interval = this.#countInterval(event.topic)
    // A big topic hears how many members it has, at most once per interval, not each change.
    if (interval !== null) return this.#counts.changed(event.topic, interval)
    const delivery: Delivery = { offset: 0, epoch: '', frame: this.shared(presenceFrame(event.kind, event.topic, event.member.data)), volatile: false, except: [event.member.connectionId] }
    this.#fanOut(event.topic, subscribers, delivery, event.kind)
  }

  #fanOut (topic: string, subscribers: Subscribers, delivery: Delivery, kind: FanOutKind): void {
    const except = delivery.except
    let reached = 0
    let dropped = 0
    // Every subscriber goes through the delivery rule, the excluded ones too (see Delivery.except).
    // A large topic is walked over several event-loop turns (fan-out.ts).
    this.#fanOuts.walk(topic, subscribers, (connection) => {
      // Undefined only for one that left the topic while a sliced walk was under way.
      const subscription = connection.subscriptions.get(topic)
      if (subscription === undefined) return
      if (except === undefined || !except.includes(connection.id)) reached++
      const drops = dropTally.count
      deliver(connection, subscription, delivery, this.#onGap)
      dropped += dropTally.count - drops
    }, () => {
      // Counted once per publication, never per subscriber (see diagnostics.ts).
      if (channels.delivery.hasSubscribers || channels.dropped.hasSubscribers) publishFanOut(this.#broker, topic, this.#subscribers.get(topic), reached, dropped, kind)
    })
  }

  /** Resolves once no sliced fan-out is under way. */
  idle (): Promise<void> {
    return this.#fanOuts.idle()
  }

  /** The broker cannot vouch for continuity on this topic: every local subscriber is told. */
  resync (topic: string): void {
    const subscribers = this.#subscribers.get(topic)
    if (subscribers === undefined) return
    // A copy: a gap takes each subscriber out of the set.
    for (const connection of [...subscribers]) {
      const subscription = connection.subscriptions.get(topic)
      if (subscription !== undefined) this.#onGap(connection, subscription)
    }
  }

  async add (connection: Connection, topic: string): Promise<void> {
    let set = this.#subscribers.get(topic)
    if (set === undefined) {
      this.#subscribers.set(topic, set = new Set())
      if (this.#deltaTopic(topic)) this.#last.set(topic, null)
      set.add(connection)
      this.#filters.add(connection, topic, set)
      // A second subscriber arriving while the broker subscribes waits for the same
      // promise, so no one is told "subscribed" before this node receives the topic.
      const ready = Promise.resolve(this.#broker.subscribe(topic)).finally(() => this.#pending.delete(topic))
      this.#pending.set(topic, ready)
      await ready
    } else {
      set.add(connection)
      this.#filters.add(connection, topic, set)
      await this.#pending.get(topic)
    }
  }

  async remove (connection: Connection, topic: string): Promise<void> {
    const set = this.#subscribers.get(topic)
    if (set === undefined || !set.delete(connection)) return
    this.#filters.remove(connection, topic)
    if (set.size === 0) {
      this.#subscribers.delete(topic)
      this.#last.delete(topic)
      await this.#broker.unsubscribe(topic)
    }
  }

  /** Subscribers per topic on this node. */
  counts (): Record<string, number> {
    // fromEntries defines own properties, so a topic named `__proto__` is counted too.
    return Object.fromEntries([...this.#subscribers].map(([topic, set]) => [topic, set.size]))
  }
}

/** What a fan-out carried: a publication (`message` frames), a presence change (`join`, `leave`) or a member count. */
type FanOutKind = 'message' | 'join' | 'leave' | 'presence'

/**
 * After one fan-out: one event for every subscriber reached, one for the drops, never
 * one per subscriber. `pattern` is the declared pattern of the topic's subscriptions.
 */
function publishFanOut (broker: Broker, topic: string, subscribers: Set<Connection<any>> | undefined, reached: number, dropped: number, kind: FanOutKind): void {
  const first = subscribers?.values().next().value
  const pattern = first?.subscriptions.get(topic)?.pattern ?? 'unknown'
  if (channels.delivery.hasSubscribers) channels.delivery.publish({ broker, topic, pattern, kind, subscribers: reached, dropped })
  if (dropped > 0 && channels.dropped.hasSubscribers) channels.dropped.publish({ broker, topic, pattern, count: dropped })
}
