// The subscriptions of one connection, keyed by topic (`connection.subscriptions`).
// Most connections hold one or two: a Map made for every connection would cost about
// 270 bytes each (its hash table) at ten thousand idle connections. The first
// subscription is kept in a field; a Map is made only when a second one comes.
import type { SharedFrame } from '../wire/compress-once.js'

/** A publication's frames for subscribers that asked for deltas (pubsub/delta-frames.ts). */
export interface DeltaForms {
  full: () => SharedFrame
  patch: () => SharedFrame | null
}

/** One framed publication (or presence change) on its way to the subscribers of a topic. */
export interface Delivery {
  /** The publication's offset; 0 for a frame outside the stream (ephemeral, presence). */
  offset: number
  epoch: string
  /** Framed once (and compressed once where negotiated) for every subscriber. */
  frame: SharedFrame
  /** For a frame outside the stream: drop it for a slow subscriber instead of closing (typing, not presence). */
  volatile: boolean
  /**
   * Connections that must not be sent this one (the sender, the presence member). They
   * still take it through the rule, so their position moves past it: skipping them
   * before the rule would leave a hole that the next publication calls a gap.
   */
  except?: readonly string[]
  /** On a topic with delta compression: the forms for subscribers that asked for deltas. */
  delta?: DeltaForms
  /** The publication's tags, when its topic declares tags: what filtered subscriptions match. */
  tags?: Readonly<Record<string, string | number>>
}

/** A subscription's filter over tags, shared by the subscriptions that carry the same one (pubsub/filters.ts). */
export interface SubscriptionFilter {
  /** Whether the delivery is for this filter's subscribers; judged once per delivery. */
  matches: (delivery: Delivery) => boolean
  /** `matches` for a live publication, which the filter also counts as judged (see `skips`). */
  judge: (delivery: Delivery) => boolean
  /**
   * Whether every publication of the delivery's epoch after `offset` and before it was
   * judged live and left out: a subscriber of this filter at `offset` missed nothing.
   */
  skips: (delivery: Delivery, offset: number) => boolean
}

/** A subscription of one connection to one topic. */
export interface Subscription {
  topic: string
  /** The declared pattern the topic matched (a bounded label for observers). */
  pattern: string
  /** Publications held back while the subscribe reply is not yet sent, so none overtakes it. */
  held: Delivery[] | null
  /** Offset of the last publication sent (or skipped on a volatile topic): guards against duplicates and gaps. */
  offset: number
  /** Epoch of the stream that offset belongs to: a publication of another epoch is a gap too. */
  epoch: string
  volatile: boolean
  /**
   * -1: whole publications (the subscriber did not ask for deltas, or the topic has none).
   * Otherwise the offset, in `epoch`, of the last publication this subscriber was sent in
   * delta form (0: none yet): the base its next delta must follow.
   */
  delta: number
  /** Serialised presence meta sent with `subscribe`, when the topic has presence. */
  meta?: string
  /** Whether this subscription is a member of the topic's presence (and so must leave it). */
  joined: boolean
  /** Made by the server (`app.realtime.subscribe`), not asked for by the client. */
  server?: true
  /** Publications that do not match it still move its position on, unsent. */
  filter?: SubscriptionFilter
  /** A confirmed server subscription holding publications while the client recovers it in place (`since`). */
  recovering?: true
}

/** Read like a Map: `get`, `has`, `size`, `keys()`, `values()`, `entries()`, iteration, `forEach`. */
export class Subscriptions {
  #one: Subscription | undefined = undefined
  #many: Map<string, Subscription> | undefined = undefined

  get size (): number {
    return this.#many !== undefined ? this.#many.size : this.#one !== undefined ? 1 : 0
  }

  get (topic: string): Subscription | undefined {
    if (this.#many !== undefined) return this.#many.get(topic)
    const one = this.#one
    return one !== undefined && one.topic === topic ? one : undefined
  }

  has (topic: string): boolean {
    return this.get(topic) !== undefined
  }

  /** Adds or replaces the subscription to `subscription.topic`. */
  set (subscription: Subscription): void {
    if (this.#many !== undefined) {
      this.#many.set(subscription.topic, subscription)
    } else if (this.#one === undefined || this.#one.topic === subscription.topic) {
      this.#one = subscription
    } else {
      this.#many = new Map([[this.#one.topic, this.#one], [subscription.topic, subscription]])
      this.#one = undefined
    }
  }

  delete (topic: string): boolean {
    if (this.#many !== undefined) return this.#many.delete(topic)
    if (this.#one === undefined || this.#one.topic !== topic) return false
    this.#one = undefined
    return true
  }

  * entries (): IterableIterator<[string, Subscription]> {
    if (this.#many !== undefined) yield * this.#many.entries()
    else if (this.#one !== undefined) yield [this.#one.topic, this.#one]
  }

  * keys (): IterableIterator<string> {
    for (const [topic] of this.entries()) yield topic
  }

  * values (): IterableIterator<Subscription> {
    for (const [, subscription] of this.entries()) yield subscription
  }

  [Symbol.iterator] (): IterableIterator<[string, Subscription]> {
    return this.entries()
  }

  forEach (callback: (subscription: Subscription, topic: string, subscriptions: Subscriptions) => void, thisArg?: unknown): void {
    for (const [topic, subscription] of this.entries()) callback.call(thisArg, subscription, topic, this)
  }
}
