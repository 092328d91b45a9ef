// Local fan-out: which connections of this process subscribe to which topic, and the
// delivery of publications to them. A publication is serialised once (by the topic's
// schema, on the publishing node) and framed once into a Buffer that every
// subscriber's socket sends as it is.
import type { Broker, PresenceEvent, Publication, PublishOptions as BrokerPublishOptions, StreamPosition } from './broker/types.js'
import type { Connection, Subscription } from './connection.js'
import { errorCodes } from './errors.js'
import { ephemeralFrame, messageFrame } from './frames.js'
import type { Topics, TopicMatch } from './topics.js'

export interface PublishOptions {
  /** Connection ids that must not receive this publication (the sender, typically). */
  except?: string | string[]
  /** Not part of the topic's stream: no offset, no history, never recovered (typing indicators). */
  ephemeral?: boolean
}

export interface PublishResult extends StreamPosition {
  topic: string
}

export class Hub {
  readonly #subscribers = new Map<string, Set<Connection>>()
  readonly #pending = new Map<string, Promise<void>>()
  readonly #topics: Topics
  readonly broker: Broker

  constructor (topics: Topics, broker: Broker) {
    this.#topics = topics
    this.broker = broker
  }

  /** Resolves a topic name for a server-side publish; an undeclared one is a programming error. */
  resolve (topic: string): TopicMatch {
    const match = typeof topic === 'string' ? this.#topics.match(topic) : null
    if (match === null) throw new errorCodes.FST_REALTIME_UNKNOWN_TOPIC(String(topic))
    return match
  }

  async publish (topic: string, data: unknown, options: PublishOptions = {}): Promise<PublishResult> {
    return this.publishMatched(this.resolve(topic), topic, data, options)
  }

  async publishMatched (match: TopicMatch, topic: string, data: unknown, options: PublishOptions = {}): Promise<PublishResult> {
    let payload: string
    try {
      payload = match.topic.serialize(data)
    } catch (err) {
      throw new errorCodes.FST_REALTIME_INVALID_DATA(`topic "${topic}"`, (err as Error).message)
    }
    const brokerOptions: BrokerPublishOptions = { history: match.topic.history }
    if (options.except !== undefined) brokerOptions.except = ([] as string[]).concat(options.except)
    if (options.ephemeral === true) brokerOptions.ephemeral = true
    const position = await this.broker.publish(topic, payload, brokerOptions)
    return { topic, offset: options.ephemeral === true ? 0 : position.offset, epoch: position.epoch }
  }

  /**
   * Called by the broker for every publication on a topic this node subscribes to.
   * The frame is built once; each subscriber only gets an offset check.
   */
  deliver (publication: Publication): void {
    const subscribers = this.#subscribers.get(publication.topic)
    if (subscribers === undefined) return
    const offset = publication.offset
    const frame = Buffer.from(offset === 0
      ? ephemeralFrame(publication.topic, publication.data)
      : messageFrame(publication.topic, offset, publication.epoch, publication.data))
    const except = publication.except
    for (const connection of subscribers) {
      if (except !== undefined && except.includes(connection.id)) continue
      const subscription = connection.subscriptions.get(publication.topic) as Subscription
      if (subscription.held !== null) {
        subscription.held.push({ offset, frame })
      } else if (offset === 0) {
        connection.send(frame, true)
      } else if (publication.epoch !== subscription.epoch) {
        // The stream was reset (store flushed, meta expired): offsets restart, so
        // comparing them would hide a gap.
        this.onGap(connection, subscription)
      } else if (offset === subscription.offset + 1 || subscription.volatile) {
        if (offset > subscription.offset) {
          subscription.offset = offset
          connection.send(frame, subscription.volatile)
        }
      } else if (offset > subscription.offset) {
        this.onGap(connection, subscription)
      }
      // offset <= subscription.offset: already sent (recovery and live overlap); skip.
    }
  }

  /** Called by the broker for a presence change: every local subscriber but the member itself hears it. */
  deliverPresence (event: PresenceEvent): void {
    const subscribers = this.#subscribers.get(event.topic)
    if (subscribers === undefined) return
    const frame = Buffer.from(`{"type":"${event.kind}","topic":${JSON.stringify(event.topic)},"member":${event.member.data}}`)
    for (const connection of subscribers) {
      if (connection.id === event.member.connectionId) continue
      const subscription = connection.subscriptions.get(event.topic) as Subscription
      if (subscription.held !== null) subscription.held.push({ offset: 0, frame })
      else connection.send(frame)
    }
  }

  /** The broker cannot vouch for continuity on this topic: every local subscriber is told. */
  resync (topic: string): void {
    const subscribers = this.#subscribers.get(topic)
    if (subscribers === undefined) return
    // A copy: onGap takes each subscriber out of the set.
    for (const connection of [...subscribers]) {
      const subscription = connection.subscriptions.get(topic)
      if (subscription !== undefined) this.onGap(connection, subscription)
    }
  }

  /** Set by the plugin: what to do when a live subscriber would miss publications. */
  onGap: (connection: Connection, subscription: Subscription) => void = () => {}

  async add (connection: Connection, subscription: Subscription): Promise<void> {
    const topic = subscription.topic
    let set = this.#subscribers.get(topic)
    if (set === undefined) {
      this.#subscribers.set(topic, set = new Set())
      set.add(connection)
      // A second subscriber arriving while the broker subscribes waits for the same
      // promise, so no one is told "subscribed" before this node receives the topic.
      const ready = Promise.resolve(this.broker.subscribe(topic)).finally(() => this.#pending.delete(topic))
      this.#pending.set(topic, ready)
      await ready
    } else {
      set.add(connection)
      await this.#pending.get(topic)
    }
  }

  async remove (connection: Connection, topic: string): Promise<void> {
    const set = this.#subscribers.get(topic)
    if (set === undefined || !set.delete(connection)) return
    if (set.size === 0) {
      this.#subscribers.delete(topic)
      await this.broker.unsubscribe(topic)
    }
  }

  /** Subscribers per topic on this node. */
  counts (): Record<string, number> {
    // fromEntries defines own properties, so a topic named `__proto__` is counted too.
    return Object.fromEntries([...this.#subscribers].map(([topic, set]) => [topic, set.size]))
  }
}
