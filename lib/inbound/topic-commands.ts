// The built-in topic commands a client sends: subscribe (with recovery), unsubscribe,
// publish and presence; and the ends of a subscription the server decides (a gap, an
// unsubscribe by the server, the connection closing). Each command resolves to the
// data of its reply, or rejects with the wire error to answer.
import type { Static } from '../protocol/schema.js'
import { Type } from '../wire/json-schema.js'
import type { Broker, RecoveryResult, StreamPosition } from '../broker/types.js'
import type { Connection, Subscription } from '../connection/connection.js'
import { recoveredDelivery, release } from '../pubsub/delivery.js'
import { isRealtimeError, wireErrors } from '../protocol/errors.js'
import { membersData, memberData, replyFrame, subscribedFrame, unsubscribedFrame, type MessageId } from '../wire/frames.js'
import { runHooks, runObservers, type Hooks, type SubscribeInfo, type UnsubscribeReason } from '../messages/hooks.js'
import { compileFilter, FilterRegistry } from '../pubsub/filters.js'
import { confirmed, recoverInPlace, startOf, type InPlaceHost } from './server-subscriptions.js'
import { Hub } from '../pubsub/hub.js'
import { publishTo } from '../pubsub/publish.js'
import { compressionOf, type ResolvedOptions } from '../config/options.js'
import { UnsubscribeCode } from '../protocol/constants.js'
import { channels, dropTally } from '../protocol/diagnostics.js'
import { onFirstUse, type SchemaCompiler, type Serializer, type Validator } from '../wire/schema-compiler.js'
import type { AuthorizeContext, TopicAction, TopicMatch, Topics } from '../pubsub/topics.js'

const SubscribeData = Type.Object({
  topic: Type.String({ minLength: 1 }),
  since: Type.Optional(Type.Object({
    offset: Type.Integer({ minimum: 0 }),
    epoch: Type.String({ maxLength: 128 })
  })),
  meta: Type.Optional(Type.Unknown()),
  filter: Type.Optional(Type.Unknown()),
  delta: Type.Optional(Type.Literal('fossil'))
})
const TopicData = Type.Object({ topic: Type.String({ minLength: 1 }) })
const PublishData = Type.Object({ topic: Type.String({ minLength: 1 }), data: Type.Unknown() })
const SubscribeReply = Type.Object({
  topic: Type.String(),
  offset: Type.Integer(),
  epoch: Type.String(),
  recovered: Type.Optional(Type.Boolean())
})
const PublishReply = Type.Object({ offset: Type.Integer() })

/** Marks a command whose reply was already sent (in order with held publications). */
export const SENT: unique symbol = Symbol('sent')

export class TopicCommands<U> {
  readonly #options: Readonly<ResolvedOptions>
  readonly #topics: Topics
  readonly #broker: Broker
  readonly #hooks: Hooks<U>
  readonly #serializeUser: (user: unknown) => string
  readonly #validate: { subscribe: Validator, topic: Validator, publish: Validator }
  readonly #serialize: { subscribe: Serializer, publish: Serializer }
  /**
   * The local subscribers of every topic. Made here because its gap handler is ours
   * (`gap`, a field, so it exists before the constructor runs) and our subscribe and
   * unsubscribe are its only writers.
   */
  readonly hub: Hub
  /** The distinct filters of this node's subscriptions, per topic. */
  readonly filters: FilterRegistry

  constructor (options: Readonly<ResolvedOptions>, compiler: SchemaCompiler, topics: Topics, broker: Broker, hooks: Hooks<U>, serializeUser: (user: unknown) => string) {
    this.hub = new Hub(broker, this.gap, options.fanOutSlice, compressionOf(options), {
      countInterval: (topic) => topics.match(topic)?.topic.presence?.countInterval ?? null,
      delta: (topic) => topics.match(topic)?.topic.delta === true
    })
    this.filters = new FilterRegistry(options.filters.maxPerTopic)
    this.#options = options
    this.#topics = topics
    this.#broker = broker
    this.#hooks = hooks
    this.#serializeUser = serializeUser
    // Compiled when first used: an app whose clients never subscribe or publish loads no schema engine for them.
    this.#validate = {
      subscribe: onFirstUse(() => compiler.validator(SubscribeData, 'data', 'built-in "subscribe"')),
      topic: onFirstUse(() => compiler.validator(TopicData, 'data', 'built-in "unsubscribe"')),
      publish: onFirstUse(() => compiler.validator(PublishData, 'data', 'built-in "publish"'))
    }
    this.#serialize = {
      subscribe: onFirstUse(() => compiler.serializer(SubscribeReply, 'reply', 'built-in "subscribe"')),
      publish: onFirstUse(() => compiler.serializer(PublishReply, 'reply', 'built-in "publish"'))
    }
  }

  async subscribe (connection: Connection<U>, id: MessageId, data: unknown): Promise<typeof SENT> {
    const request = this.#check<Static<typeof SubscribeData>>(this.#validate.subscribe, data)
    const held = connection.subscriptions.get(request.topic)
    if (held?.server === true && request.since !== undefined && held.held === null) {
      // The server subscribed this connection (its onConnect, again after a reconnection):
      // the client asks for what it missed, and gets it in place (server-subscriptions.ts).
      await recoverInPlace(this.#inPlace, connection, held, request.since, id)
    } else {
      await this.#open(connection, request, id)
    }
    return SENT
  }

  /**
   * A subscription the server decides (`app.realtime.subscribe`): `authorize` is not
   * asked, onSubscribe runs, and the client is told with `subscribed` instead of a reply.
   */
  async subscribeByServer (connection: Connection<U>, topic: string, options: { meta?: unknown, filter?: unknown } = {}): Promise<StreamPosition> {
    return await this.#open(connection, { topic, meta: options.meta, filter: options.filter }, undefined, true)
  }

  async #open (connection: Connection<U>, request: Static<typeof SubscribeData>, id: MessageId, server = false): Promise<StreamPosition> {
    const { topic, since, meta, filter, delta } = request
    const match = this.#match(topic)
    const metaJson = meta === undefined ? undefined : this.#meta(match, meta)
    const compiled = filter === undefined ? undefined : compileFilter(filter, match.topic.tags, this.#options.filters)
    if (connection.subscriptions.has(topic)) throw wireErrors.alreadySubscribed(topic)
    if (connection.subscriptions.size >= this.#options.maxSubscriptions) {
      throw wireErrors.limit(`At most ${this.#options.maxSubscriptions} subscriptions per connection`)
    }
    // Claim the slot before the first await: a second subscribe to the same topic is
    // ALREADY_SUBSCRIBED, and publications arriving meanwhile are held, not lost.
    const subscription: Subscription = { topic, pattern: match.topic.pattern, held: [], offset: 0, epoch: '', volatile: match.topic.volatile, joined: false, delta: delta !== undefined && match.topic.delta ? 0 : -1 }
    if (metaJson !== undefined) subscription.meta = metaJson
    if (compiled !== undefined) subscription.filter = this.filters.acquire(topic, compiled)
    if (server) subscription.server = true
    connection.subscriptions.set(subscription)
    const current = (): boolean => connection.subscriptions.get(topic) === subscription
    try {
      // Every subscribe, recovery included, is authorized afresh: access lost while
      // away means nothing is replayed. The server's own subscriptions are its decision.
      if (!server) await this.#authorize(connection, match, topic, 'subscribe')
      if (!current() || !connection.isOpen) throw wireErrors.notSubscribed(topic)
      // Joined to live delivery before history is read, so a publication racing the
      // read is either in the history or held, and the offset check drops the overlap.
      await this.hub.add(connection as Connection, topic)
      const recovery = since === undefined
        ? await this.#start(topic, match.topic.latest)
        // Since a position in another epoch (a restart), the broker replays the current
        // epoch from its start when history holds it: told as not recovered, then sent.
        : await this.#broker.recover(topic, since, this.#options.recoveryLimit)
      if (!current()) throw wireErrors.notSubscribed(topic)
      if (this.#hooks.onSubscribe.length > 0) {
        const info: SubscribeInfo = { topic, params: match.params }
        if (since !== undefined) info.recovered = recovery.recovered
        if (server) info.server = true
        await runHooks(this.#hooks.onSubscribe, connection, info).catch((err: unknown) => {
          if (isRealtimeError(err)) throw err
          connection.log.error({ err, topic }, 'onSubscribe hook failed; the subscribe is refused')
          throw wireErrors.forbidden()
        })
        if (!current() || !connection.isOpen) throw wireErrors.notSubscribed(topic)
      }
      if (match.topic.presence !== null) {
        // Joined before the reply: a `presence` request sent right after it lists this
        // member (on a Redis Cluster a join is two scripts the reply must not overtake).
        await this.#join(connection, subscription)
        if (!current() || !connection.isOpen) throw wireErrors.notSubscribed(topic)
      }
      const from = startOf(recovery)
      if (server) {
        connection.send(subscribedFrame(topic, from.offset, from.epoch))
      } else if (id !== undefined) {
        const reply: Static<typeof SubscribeReply> = { topic, offset: from.offset, epoch: from.epoch }
        if (since !== undefined) reply.recovered = recovery.recovered
        connection.send(replyFrame(id, this.#serialize.subscribe(reply)))
      }
      if (channels.subscribe.hasSubscribers) channels.subscribe.publish({ connection, topic, pattern: subscription.pattern, recovered: recovery.recovered })
      this.#release(connection, subscription, recovery)
      return from
    } catch (err) {
      if (current()) {
        connection.subscriptions.delete(topic)
        if (subscription.joined) {
          // Joined, then refused (the connection closed meanwhile): out of presence again.
          subscription.joined = false
          this.#broker.leave(topic, connection.id).catch((leaveErr) => connection.log.error({ err: leaveErr, topic }, 'presence leave failed'))
        }
        await this.hub.remove(connection as Connection, topic)
      }
      if (subscription.filter !== undefined) this.filters.release(topic, subscription.filter)
      throw err
    }
  }

  /**
   * Where a subscribe without `since` starts: the stream's position, or on a latest-value
   * topic just before its latest publication (still in history), which is sent first.
   */
  async #start (topic: string, latest: boolean): Promise<RecoveryResult> {
    if (!latest) return { position: await this.#broker.position(topic), recovered: false, publications: [] }
    const { position, publications } = await this.#broker.history(topic, 1)
    const last = publications.at(-1)
    return { position, recovered: false, publications: last !== undefined && last.offset === position.offset && last.epoch === position.epoch ? [last] : [] }
  }

  /** What recovering a server subscription in place uses of ours (server-subscriptions.ts). */
  readonly #inPlace: InPlaceHost = {
    recover: (topic, since) => this.#broker.recover(topic, since, this.#options.recoveryLimit),
    reply: (connection, id, data) => { if (id !== undefined) connection.send(replyFrame(id, this.#serialize.subscribe(data))) },
    release: (connection, subscription, recovery) => this.#release(connection, subscription, recovery)
  }

  /** Sends what the subscribe recovered and what was held meanwhile, through the delivery rule. */
  #release (connection: Connection<U>, subscription: Subscription, recovery: RecoveryResult): void {
    const recovered = recovery.publications.map((p) => recoveredDelivery(p, (text) => this.hub.shared(text), subscription.delta >= 0))
    const dropsBefore = dropTally.count
    const sent = release(connection, subscription, recovery.position, recovered, this.gap)
    // Recovered frames are this connection's alone: observed one by one, as replies are
    // (live fan-out is counted once per publication in hub.ts).
    if (channels.messageOut.hasSubscribers) {
      for (let i = 0; i < sent; i++) channels.messageOut.publish({ connection, type: 'message' })
    }
    const dropped = dropTally.count - dropsBefore
    if (dropped > 0 && channels.dropped.hasSubscribers) channels.dropped.publish({ broker: this.#broker, topic: subscription.topic, pattern: subscription.pattern, count: dropped })
  }

  async unsubscribe (connection: Connection<U>, data: unknown): Promise<string> {
    const { topic } = this.#check<Static<typeof TopicData>>(this.#validate.topic, data)
    const subscription = connection.subscriptions.get(topic)
    if (subscription === undefined) throw wireErrors.notSubscribed(topic)
    this.end(connection, subscription, 'client')
    return '{}'
  }

  async publish (connection: Connection<U>, data: unknown): Promise<string> {
    const { topic, data: message } = this.#check<Static<typeof PublishData>>(this.#validate.publish, data)
    const match = this.#match(topic)
    if (!match.topic.clientPublish) throw wireErrors.forbidden()
    await this.#authorize(connection, match, topic, 'publish')
    const invalid = match.topic.validateMessage(message)
    if (invalid !== null) throw wireErrors.validation(invalid.map((d) => ({ path: '/data' + d.path, message: d.message })))
    const result = await publishTo(this.#broker, match.topic, topic, message)
    return this.#serialize.publish({ offset: result.offset })
  }

  async presence (connection: Connection<U>, data: unknown): Promise<string> {
    const { topic } = this.#check<Static<typeof TopicData>>(this.#validate.topic, data)
    const match = this.#match(topic)
    if (match.topic.presence === null) throw wireErrors.forbidden()
    await this.#authorize(connection, match, topic, 'presence')
    return membersData(await this.#broker.members(topic))
  }

  /**
   * A live subscriber would miss publications (the broker lost some): it is told with
   * `unsubscribed` 2500 and resubscribes with `since`, never left with a silent gap.
   */
  readonly gap = (connection: Connection<any>, subscription: Subscription): void => {
    if (connection.subscriptions.get(subscription.topic) !== subscription) return
    this.end(connection, subscription, 'gap')
    connection.send(unsubscribedFrame(subscription.topic, UnsubscribeCode.INSUFFICIENT_STATE, 'insufficient state: resubscribe with since'))
  }

  /** The server ends a subscription (`unsubscribed` 2000: the client stays unsubscribed). False when there is none. */
  unsubscribeByServer (connection: Connection<U>, topic: string, reason: string): boolean {
    const subscription = connection.subscriptions.get(topic)
    if (subscription === undefined || !confirmed(subscription)) return false
    this.end(connection, subscription, 'server')
    connection.send(unsubscribedFrame(topic, UnsubscribeCode.SERVER, reason))
    return true
  }

  /**
   * Ends one subscription: off live delivery, out of presence, and onUnsubscribe told
   * once, when it was confirmed. The one way a subscription ends, whatever ends it.
   * Returns the onUnsubscribe hooks' run, when there is one (they never reject).
   */
  end (connection: Connection<U>, subscription: Subscription, reason: UnsubscribeReason): Promise<void> | undefined {
    const topic = subscription.topic
    connection.subscriptions.delete(topic)
    this.hub.remove(connection as Connection, topic).catch((err) => connection.log.error({ err, topic }, 'broker unsubscribe failed'))
    if (subscription.joined) {
      subscription.joined = false
      this.#broker.leave(topic, connection.id).catch((err) => connection.log.error({ err, topic }, 'presence leave failed'))
    }
    if (subscription.filter !== undefined) this.filters.release(topic, subscription.filter)
    const told = confirmed(subscription)
    if (told && channels.unsubscribe.hasSubscribers) channels.unsubscribe.publish({ connection, topic, pattern: subscription.pattern, reason })
    // A subscription still waiting for its reply was never confirmed: no onUnsubscribe.
    if (told && this.#hooks.onUnsubscribe.length > 0) {
      const params = (this.#topics.match(topic) as TopicMatch).params
      return runObservers(this.#hooks.onUnsubscribe, connection.log, 'onUnsubscribe', connection, { topic, params, reason })
    }
    return undefined
  }

  /** Adds a confirmed subscriber to the topic's presence; the others hear `join`. */
  async #join (connection: Connection<U>, subscription: Subscription): Promise<void> {
    const user = connection.user === undefined ? undefined : this.#serializeUser(connection.user)
    subscription.joined = true
    try {
      await this.#broker.join(subscription.topic, { connectionId: connection.id, data: memberData(connection.id, user, subscription.meta) })
    } catch (err) {
      // Presence is not worth refusing the subscription for: it goes on without it, and
      // the broker's leave (or its TTL) undoes a join that half happened.
      connection.log.error({ err, topic: subscription.topic }, 'presence join failed')
      subscription.joined = false
      this.#broker.leave(subscription.topic, connection.id).catch(() => {})
    }
  }

  #check<T>(validate: Validator, data: unknown): T {
    const details = validate(data)
    if (details !== null) throw wireErrors.validation(details)
    return data as T
  }

  async #authorize (connection: Connection<U>, match: TopicMatch, topic: string, action: TopicAction): Promise<void> {
    const authorize = match.topic.authorize
    if (authorize === undefined) return
    const allowed = await authorize({ action, topic, params: match.params, user: connection.user, connection } as AuthorizeContext<any, any>)
    if (allowed !== true) throw wireErrors.forbidden()
  }

  #match (topic: string): TopicMatch {
    if (topic.length > this.#options.maxTopicLength) throw wireErrors.limit(`Topic names are at most ${this.#options.maxTopicLength} characters`)
    const match = this.#topics.match(topic)
    if (match === null) throw wireErrors.forbidden()
    return match
  }

  /** Checks and serialises presence meta: its schema, then its size. */
  #meta (match: TopicMatch, meta: unknown): string {
    const presence = match.topic.presence
    if (presence === null || presence.validateMeta === null) {
      throw wireErrors.validation([{ path: '/meta', message: 'this topic takes no presence meta' }])
    }
    const invalid = presence.validateMeta(meta)
    if (invalid !== null) throw wireErrors.validation(invalid.map((d) => ({ path: '/meta' + d.path, message: d.message })))
    const json = (presence.serializeMeta as Serializer)(meta)
    if (Buffer.byteLength(json) > presence.maxMetaBytes) throw wireErrors.limit(`Presence meta is at most ${presence.maxMetaBytes} bytes`)
    return json
  }
}
