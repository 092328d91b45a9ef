// The `app.realtime` facade: declarations (routes, topics, events, hooks) and the
// server-side API (publish, send, broadcast, connections, stats). It composes the
// modules that do the work and holds no logic of its own beyond checking arguments.
import type { Static, TSchema } from '../protocol/schema.js'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import { Answers } from '../connection/answer.js'
import { MessageAuth } from '../inbound/auth.js'
import type { Connection, ConnectionLimits } from '../connection/connection.js'
import { WriteBatch } from '../connection/write-batch.js'
import { Dispatcher } from '../inbound/dispatch.js'
import { errorCodes, isRealtimeError } from '../protocol/errors.js'
import { eventFrame } from '../wire/frames.js'
import { Heartbeat } from '../connection/heartbeat.js'
import { Hooks, type HookName, type RealtimeHooks } from '../messages/hooks.js'
import type { Hub } from '../pubsub/hub.js'
import { idempotencyStore } from '../messages/idempotency.js'
import { Lifecycle, type Refusal } from '../inbound/lifecycle.js'
import type { ResolvedOptions } from '../config/options.js'
import { CloseCode, SHUTDOWN_CODES, type ShutdownCode } from '../protocol/constants.js'
import { publishTo, resolveTopic, type PublishOptions, type PublishResult } from '../pubsub/publish.js'
import { Registry } from '../connection/registry.js'
import { checkTypeName, Router, type ErrorSchemas, type RouteDefinition } from '../messages/router.js'
import { SchemaCompiler, type Checker, type Serializer } from '../wire/schema-compiler.js'
import { TopicCommands } from '../inbound/topic-commands.js'
import { Topics, formatTopic } from '../pubsub/topics.js'
import { untag } from '../pubsub/tags.js'
import { users } from '../config/users.js'
import type { TopicParams } from '../protocol/contract.js'
import type { DeclaredEventName, DeclaredTopicName, EventPayload, TopicData } from '../pubsub/typed.js'
import type { Broker, BrokerCommand, StreamPosition } from '../broker/types.js'
import type { ApiDescription, AsyncApiOptions } from '../asyncapi/description.js'
import { asyncApiOf } from '../asyncapi/serve.js'
import type { AsyncApiDocument } from '../asyncapi/document.js'
import { channels } from '../protocol/diagnostics.js'
import type { MetricsRegistry } from './metrics-registry.js'
import type { BroadcastOptions, EventHandle, Realtime, RealtimeStats, ServerSubscribeOptions, TopicHandle, TopicOptions } from './public.js'

/** The reason a shutdown's close gives when `close()` is given none. */
const SHUTDOWN_REASONS: Record<ShutdownCode, string> = {
  [CloseCode.NORMAL]: 'server stopped',
  [CloseCode.GOING_AWAY]: 'server going away',
  [CloseCode.RESTARTING]: 'server restarting'
}

/**
 * `app.realtime`. The application is given it as the `Realtime` of public.ts, which this
 * implements; the plugin's own wiring below (start, shutdown, admission, accept) is not
 * part of that, and only register.ts holds this class.
 */
export class RealtimeFacade<U = unknown> implements Realtime<U> {
  readonly options: Readonly<ResolvedOptions>
  readonly connections = new Registry<U>()
  /** The prom-client Registry of the `metrics` option (a new one unless given), to serve; undefined when metrics are off. */
  readonly metrics: MetricsRegistry | undefined
  readonly #broker: Broker
  readonly #compiler: SchemaCompiler
  readonly #router: Router
  readonly #topics: Topics
  readonly #hooks = new Hooks<U>()
  readonly #hub: Hub
  readonly #commands: TopicCommands<U>
  readonly #dispatcher: Dispatcher<U>
  readonly #lifecycle: Lifecycle<U>
  readonly #heartbeat: Heartbeat
  readonly #events = new Map<string, { check: Checker, serialize: Serializer }>()
  readonly #limits: ConnectionLimits

  constructor (options: Readonly<ResolvedOptions>, broker: Broker, log: FastifyBaseLogger, metrics?: MetricsRegistry) {
    this.options = options
    this.metrics = metrics
    this.#broker = broker
    const compiler = this.#compiler = new SchemaCompiler(options.ajv)
    this.#router = new Router(compiler, options.validateReplies)
    this.#topics = new Topics(compiler, options.history, options.maxTopicLength)
    const answers = new Answers(options.errorBudget)
    this.#limits = {
      maxQueue: options.maxQueue,
      closeGrace: options.closeGrace,
      unanswered: (connection, requests) => answers.unanswered(connection, requests),
      rateLimit: options.rateLimit,
      dropped: 0,
      sent: 0,
      batch: new WriteBatch(options.writeDelay)
    }
    const who = users(options, compiler, log)
    this.#commands = new TopicCommands<U>(options, compiler, this.#topics, broker, this.#hooks, who.serialize)
    this.#hub = this.#commands.hub
    // Authentication by message admits through the lifecycle and resumes the dispatcher,
    // both made after it: it reaches them through these fields, read only when a frame comes.
    const auth = options.authenticate === undefined
      ? null
      : new MessageAuth<U>(options.authenticate, compiler, answers, who, {
        admit: (connection, user, id) => this.#lifecycle.admit(connection, user, { id }),
        drain: (connection) => this.#dispatcher.drain(connection)
      })
    this.#dispatcher = new Dispatcher<U>(options, this.#router, this.#commands, this.#hooks, answers, broker, auth, (topic, data, opts) => this.publish(topic, data, opts))
    this.#heartbeat = new Heartbeat(options.heartbeat)
    this.#lifecycle = new Lifecycle<U>(options, this.connections, this.#hooks, who, this.#dispatcher, this.#commands, answers, this.#limits, this.#heartbeat)
  }

  get broker (): Broker {
    return this.#broker
  }

  /** Milliseconds per slot of the heartbeat's wheel (a dead peer goes within interval + timeout + two of them). */
  get heartbeatTick (): number {
    return this.#heartbeat.tick
  }

  // ---------------------------------------------------------------- declarations

  /** Declares a message route. Its data is validated before the handler; its reply is serialised by its schema. */
  route<D extends TSchema | undefined = undefined, R extends TSchema | undefined = undefined, E extends ErrorSchemas = Record<never, TSchema>>(
    definition: RouteDefinition<D, R, E, U>
  ): this {
    this.#declaring(`route "${String(definition?.type)}"`)
    const compiled = this.#router.add(definition)
    // A broker that keeps no idempotency records fails here, naming the route.
    if (compiled.idempotent) idempotencyStore(this.#broker, compiled.type)
    return this
  }

  /** Declares a topic pattern such as `room/:name`. Subscribing to a name that matches no pattern is FORBIDDEN. */
  topic<M extends TSchema, P extends TSchema | undefined = undefined, const N extends string = string>(
    pattern: N,
    options: TopicOptions<P, M, U, N>
  ): TopicHandle<P extends TSchema ? Static<P> : TopicParams<N>, Static<M>> {
    this.#declaring(`topic "${String(pattern)}"`)
    const compiled = this.#topics.add(pattern, options as never)
    return {
      pattern,
      name: (params) => formatTopic(compiled, params as Record<string, unknown>),
      publish: (params, data, opts) => this.publish(formatTopic(compiled, params as Record<string, unknown>), data, opts)
    }
  }

  /** Declares a server-to-client event and its schema. */
  event<S extends TSchema>(name: string, schema: S): EventHandle<Static<S>> {
    this.#declaring(`event "${String(name)}"`)
    checkTypeName('event', name)
    if (this.#events.has(name)) throw new errorCodes.FST_REALTIME_DUPLICATE_EVENT(name)
    if (schema === undefined) throw new errorCodes.FST_REALTIME_SCHEMA('data', `event "${name}"`, 'a schema is required')
    const owner = `event "${name}"`
    this.#events.set(name, { check: this.#compiler.checker(schema, 'data', owner), serialize: this.#compiler.serializer(schema, 'data', owner) })
    this.#eventSchemas.set(name, schema) // AsyncAPI (issue 15): kept for describe()
    return {
      name,
      send: (connectionId, data) => this.send(connectionId, name, data),
      broadcast: (data, opts) => this.broadcast(name, data, opts)
    }
  }

  /** Adds a lifecycle hook (see README, Hooks). Hooks run in the order added, each awaited before the next. */
  addHook<K extends HookName>(name: K, hook: RealtimeHooks<U>[K]): this {
    this.#declaring(`hook "${String(name)}"`)
    this.#hooks.add(name, hook)
    return this
  }

  // ---------------------------------------------------------------- server-side API

  /** Publishes to a topic from anywhere in the process. The data is serialised by the topic's message schema. */
  publish<T extends string>(topic: DeclaredTopicName<T>, data: NoInfer<TopicData<T>>, options?: PublishOptions): Promise<PublishResult> {
    // Handlers still finishing during a shutdown may publish; after it nothing may.
    if (this.#lifecycle.closed) return Promise.reject(new errorCodes.FST_REALTIME_CLOSED())
    try {
      return publishTo(this.#broker, resolveTopic(this.#topics, topic), topic, data, options)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /**
   * The latest publications of a topic still in its history (oldest first), for
   * showing recent messages on join. `data` is as the topic's schema serialised it,
   * typed by the declared topics (`unknown` for a name of no declared pattern).
   */
  async history<T extends string> (topic: DeclaredTopicName<T>, options: { limit?: number } = {}): Promise<{ offset: number, epoch: string, publications: Array<{ offset: number, data: TopicData<T> }> }> {
    resolveTopic(this.#topics, topic)
    const { position, publications } = await this.#broker.history(topic, options.limit ?? 50)
    return {
      offset: position.offset,
      epoch: position.epoch,
      publications: publications.map((p) => ({ offset: p.offset, data: JSON.parse(untag(p.data).data) as TopicData<T> }))
    }
  }

  /** Sends a declared event to one connection. False when that connection is not open here. */
  send<E extends string>(connectionId: string, event: DeclaredEventName<E>, data: NoInfer<EventPayload<E>>): boolean {
    const frame = this.#eventFrame(event, data)
    const connection = this.connections.get(connectionId)
    if (connection === undefined) return false
    return connection.send(frame)
  }

  /** Sends a declared event to every accepted connection. Returns how many it was sent to. */
  broadcast<E extends string>(event: DeclaredEventName<E>, data: NoInfer<EventPayload<E>>, options: BroadcastOptions = {}): number {
    const frame = this.#hub.shared(this.#eventFrame(event, data))
    const except = options.except === undefined ? undefined : ([] as string[]).concat(options.except)
    let sent = 0
    for (const connection of this.connections) {
      if (except !== undefined && except.includes(connection.id)) continue
      if (connection.sendShared(frame)) sent++
    }
    // Observed once per broadcast, as fan-out is (diagnostics.ts).
    if (channels.broadcast.hasSubscribers) channels.broadcast.publish({ broker: this.broker, type: event, connections: sent })
    return sent
  }

  /**
   * Ends a connection's subscription from the server: the client gets `unsubscribed`
   * 2000 (stay unsubscribed) and onUnsubscribe hears reason 'server'. False when that
   * connection is not here or has no confirmed subscription to the topic.
   */
  unsubscribe (connectionId: string, topic: string, reason = 'unsubscribed by the server'): boolean {
    const connection = this.connections.get(connectionId)
    return connection !== undefined && this.#commands.unsubscribeByServer(connection, topic, reason)
  }

  /**
   * Subscribes a connection to a topic, on whichever node holds it: `authorize` is not
   * asked, onSubscribe runs, the client is told `subscribed`. Resolves with the position
   * delivery goes on from when the connection is here (rejecting with the wire error
   * that refused it: LIMIT_EXCEEDED, ALREADY_SUBSCRIBED…), or null once the order went
   * to the other nodes through the broker (a refusal there is logged there).
   */
  async subscribe<T extends string> (connectionId: string, topic: DeclaredTopicName<T>, options: ServerSubscribeOptions = {}): Promise<StreamPosition | null> {
    if (this.#lifecycle.closed) throw new errorCodes.FST_REALTIME_CLOSED()
    resolveTopic(this.#topics, topic)
    const connection = this.connections.get(connectionId) ?? this.#lifecycle.admitting.get(connectionId)
    if (connection !== undefined) return await this.#commands.subscribeByServer(connection, topic, options)
    await this.#broker.command({ kind: 'subscribe', connectionId, topic, meta: options.meta, filter: options.filter })
    return null
  }

  /** Closes one connection with a close code and reason. False when it is not open here. */
  disconnect (connectionId: string, code: number = CloseCode.DISCONNECTED, reason = 'disconnected by the server'): boolean {
    const connection = this.connections.get(connectionId)
    if (connection === undefined) return false
    connection.close(code, reason)
    return true
  }

  /**
   * Closes every connection of a user, on every node (4503 by default: kicked, logged
   * out). Resolves once the order is out.
   */
  async disconnectUser (userId: string, code: number = CloseCode.DISCONNECTED, reason = 'disconnected by the server'): Promise<void> {
    await this.#broker.command({ kind: 'disconnect-user', userId, code, reason })
  }

  stats (): RealtimeStats {
    return {
      connections: {
        active: this.connections.size,
        total: this.connections.total,
        authenticating: this.#lifecycle.live.size - this.connections.size
      },
      messages: { in: this.#dispatcher.messagesIn, out: this.#limits.sent, dropped: this.#limits.dropped },
      topics: this.#hub.counts()
    }
  }

  /** The event's frame, built once however many it goes to; its data checked first, never coerced. */
  #eventFrame (event: string, data: unknown): string {
    const compiled = this.#events.get(event)
    if (compiled === undefined) throw new errorCodes.FST_REALTIME_UNKNOWN_EVENT(String(event))
    const problem = compiled.check(data)
    if (problem !== null) throw new errorCodes.FST_REALTIME_INVALID_DATA(`event "${event}"`, problem)
    return eventFrame(event, compiled.serialize(data))
  }

  // ---------------------------------------------------------------- plugin wiring (index.ts)

  /** Starts the heartbeat and connects the broker to local delivery. */
  async start (): Promise<void> {
    await this.#broker.start(
      (publication) => this.#hub.deliver(publication),
      (event) => this.#hub.deliverPresence(event),
      (command) => this.#command(command),
      (topic) => this.#hub.resync(topic)
    )
    this.#heartbeat.start()
  }

  /**
   * Closes the real-time side ahead of `app.close()` (which does it anyway): handlers in
   * flight finish, then every client is closed with `code` (the `closeCode` option by
   * default: 1012, restarting; 1001, going away; or 1000, stopped for good: clients do not
   * reconnect) and `reason`. Once; later calls wait for the first. A code outside these
   * (from JavaScript) throws FST_REALTIME_INVALID_OPTION naming the allowed ones.
   */
  async close (options: { code?: ShutdownCode, reason?: string } = {}): Promise<void> {
    const code = options.code ?? this.options.closeCode
    if (!(SHUTDOWN_CODES as readonly number[]).includes(code)) {
      throw new errorCodes.FST_REALTIME_INVALID_OPTION('close({ code })', `must be one of ${SHUTDOWN_CODES.join(', ')} (got ${String(code)})`)
    }
    const reason = options.reason ?? SHUTDOWN_REASONS[code]
    // No more pings: a client must not be cut off for silence while the shutdown waits on it.
    this.#heartbeat.stop()
    await this.#lifecycle.shutdown(code, reason)
  }

  /** Used by the plugin's onClose: the same as close() with the options' defaults. */
  async shutdown (): Promise<void> {
    await this.close()
  }

  #declaring (what: string): void {
    if (this.#lifecycle.closed) throw new errorCodes.FST_REALTIME_DECLARED_AFTER_CLOSE(what)
  }

  /** Before the upgrade: null, or the HTTP status to refuse it with. */
  admission (request: FastifyRequest): Refusal | null {
    return this.#lifecycle.admission(request)
  }

  /** Takes over an upgraded socket. */
  accept (socket: WebSocket, request: FastifyRequest): Connection<U> {
    return this.#lifecycle.accept(socket, request)
  }

  #command (command: BrokerCommand): void {
    if (command.kind === 'disconnect-user') {
      for (const connection of this.connections.byUser(command.userId)) connection.close(command.code, command.reason)
    } else if (command.kind === 'subscribe') {
      const connection = this.connections.get(command.connectionId) ?? this.#lifecycle.admitting.get(command.connectionId)
      if (connection === undefined || resolveTopic(this.#topics, command.topic) === undefined) return
      this.#commands.subscribeByServer(connection, command.topic, command).catch((err: unknown) => {
        connection.log[isRealtimeError(err) ? 'info' : 'error']({ err, topic: command.topic }, 'server subscription refused')
      })
    }
  }

  // ---------------------------------------------------------------- AsyncAPI (issue 15)

  readonly #eventSchemas = new Map<string, TSchema>()

  /** The declarations as a plain description, which the AsyncAPI generator reads. */
  describe (): ApiDescription {
    return {
      routes: Array.from(this.#router.list(), (r) => ({ type: r.type, data: r.schema.data, reply: r.schema.reply, errors: r.schema.errors, idempotent: r.idempotent })),
      topics: this.#topics.list().map(({ pattern, definition: d, clientPublish, volatile, latest, presence }) => ({
        pattern,
        params: d.params,
        message: d.message,
        presence: presence === null ? null : { meta: d.presence === true ? undefined : (d.presence as { meta?: TSchema }).meta, ...(presence.countInterval === null ? {} : { count: true }) },
        clientPublish,
        volatile,
        ...(latest ? { latest } : {}),
        ...(d.tags === undefined ? {} : { tags: d.tags.schema })
      })),
      events: Array.from(this.#eventSchemas, ([name, schema]) => ({ name, schema })),
      auth: this.options.authenticate === undefined ? 'none' : 'message',
      userSchema: this.options.userSchema,
      path: this.options.path,
      heartbeat: this.options.heartbeat
    }
  }

  /** The AsyncAPI 3.0 document of this server's declarations (options: `info`, `server.url`). */
  asyncapi (options?: AsyncApiOptions): AsyncApiDocument {
    return asyncApiOf(this, options)
  }
}
