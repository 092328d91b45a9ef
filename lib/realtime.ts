// The `app.realtime` namespace: declarations (routes, topics, events), the server-side
// API (publish, send, broadcast, connections, stats) and the life of each connection,
// from the upgrade to its one and only cleanup.
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import sjson from 'secure-json-parse'
import type { RawData, WebSocket } from 'ws'
import { Connection, type ConnectionLimits, type Subscription } from './connection.js'
import { Contracts, type Serializer, type Validator } from './contracts.js'
import { errorCodes, isRealtimeError, RealtimeError, wireErrors } from './errors.js'
import { errorFrame, eventFrame, messageFrame, pongFrame, replyFrame, unsubscribedFrame, type MessageId } from './frames.js'
import { Heartbeat } from './heartbeat.js'
import { ErrorBudget } from './limits.js'
import { Hub, type PublishOptions, type PublishResult } from './hub.js'
import type { ResolvedOptions } from './options.js'
import { CloseCode, ErrorCode, UnsubscribeCode } from './protocol.js'
import { checkTypeName } from './router.js'
import { Registry } from './registry.js'
import { Router, type CompiledRoute, type ErrorSchemas, type MessageContext, type RouteDefinition } from './router.js'
import { Topics, formatTopic, type AuthorizeContext, type CompiledTopic, type PresenceOptions, type TopicAction, type TopicMatch } from './topics.js'
import type { Broker, BrokerCommand, HistoryOptions, Publication, StreamPosition } from './broker/types.js'
import type { ApiDescription, AsyncApiOptions } from './asyncapi/description.js'
import { asyncApiOf } from './asyncapi/serve.js'
import type { AsyncApiDocument } from './asyncapi/document.js'

/**
 * Frames a connection may send while one of its `auth`, `subscribe` or `unsubscribe`
 * is in flight; they wait and run in order after it. Past this many they are refused.
 */
const MAX_BACKLOG = 256
const MAX_ID_LENGTH = 128

const SubscribeData = Type.Object({
  topic: Type.String({ minLength: 1 }),
  since: Type.Optional(Type.Object({
    offset: Type.Integer({ minimum: 0 }),
    epoch: Type.String({ maxLength: 128 })
  })),
  meta: Type.Optional(Type.Unknown())
})
const TopicData = Type.Object({ topic: Type.String({ minLength: 1 }) })
const PublishData = Type.Object({ topic: Type.String({ minLength: 1 }), data: Type.Unknown() })
const AuthData = Type.Object({ token: Type.String() })
const DefaultUser = Type.Object({ id: Type.Optional(Type.Union([Type.String(), Type.Number()])) })

const SubscribeReply = Type.Object({
  topic: Type.String(),
  offset: Type.Integer(),
  epoch: Type.String(),
  recovered: Type.Optional(Type.Boolean())
})
const PublishReply = Type.Object({ offset: Type.Integer() })

interface Envelope {
  type: string
  id: MessageId
  data: unknown
}

/** A typed handle on a declared topic pattern. */
export interface TopicHandle<P, M> {
  readonly pattern: string
  /** The topic name for these params: `room/:name` with `{ name: 'a' }` is `room/a`. */
  name: (params: P) => string
  publish: (params: P, data: M, options?: PublishOptions) => Promise<PublishResult>
}

/** A typed handle on a declared server event. */
export interface EventHandle<T> {
  readonly name: string
  send: (connectionId: string, data: T) => boolean
  broadcast: (data: T, options?: BroadcastOptions) => number
}

export interface BroadcastOptions {
  /** Connection ids that must not receive it. */
  except?: string | string[]
}

export interface TopicOptions<P extends TSchema | undefined, M extends TSchema, U = unknown> {
  /** Schema of the pattern's params; they arrive as strings and are coerced to it. */
  params?: P
  /** Schema of a publication; it validates client publications and serialises all of them. */
  message: M
  /** Decides subscribe, publish and presence. A topic without it is open to every accepted connection. */
  authorize?: (context: AuthorizeContext<P extends TSchema ? Static<P> : Record<string, string>, U>) => boolean | Promise<boolean>
  /** Whether clients may publish with the `publish` message (after authorize). Default false. */
  clientPublish?: boolean
  /** Presence: subscribers hear `join`/`leave`, and `presence` lists members. `{ meta, maxMetaBytes }` accepts member meta. */
  presence?: boolean | PresenceOptions
  /** History kept for recovery; defaults to the plugin's `history` option. */
  history?: Partial<HistoryOptions>
  /** A slow subscriber's messages are dropped and counted instead of closing it with 4008 (tickers, metrics). */
  volatile?: boolean
}

export interface RealtimeStats {
  connections: { active: number, total: number, authenticating: number }
  messages: { in: number, out: number, dropped: number }
  topics: Record<string, number>
}

export class Realtime<U = unknown> {
  readonly options: Readonly<ResolvedOptions>
  readonly connections = new Registry<U>()
  readonly log: FastifyBaseLogger
  readonly #contracts: Contracts
  readonly #router: Router
  readonly #topics: Topics
  readonly #hub: Hub
  readonly #heartbeat: Heartbeat
  readonly #events = new Map<string, Serializer>()
  readonly #limits: ConnectionLimits
  /** Every socket we accepted, authenticated or not: what app.close() must wait for. */
  readonly #live = new Set<Connection<U>>()
  readonly #perIp = new Map<string, number>()
  readonly #builtin: {
    subscribe: Validator
    topic: Validator
    publish: Validator
    auth: Validator
    subscribeReply: Serializer
    publishReply: Serializer
    user: Serializer
  }

  readonly #replyFn: ReplyFn = (connection, route, context, value) => this.#reply(connection, route, context, value)
  readonly #publishFn = (topic: string, data: unknown, options?: PublishOptions): Promise<PublishResult> => this.publish(topic, data, options)
  /** Socket listeners shared by every connection of this instance (see accept()). */
  readonly #onMessage: (this: SocketWithConnection, raw: RawData, isBinary: boolean) => void
  readonly #onClose: (this: SocketWithConnection, code: number) => void

  #messagesIn = 0
  #closing = false

  constructor (options: Readonly<ResolvedOptions>, broker: Broker, log: FastifyBaseLogger) {
    this.options = options
    this.log = log
    this.#contracts = new Contracts(options.ajv)
    this.#router = new Router(this.#contracts)
    this.#topics = new Topics(this.#contracts, options.history)
    this.#limits = { maxQueue: options.maxQueue, rateLimit: options.rateLimit, dropped: 0, sent: 0 }
    this.#hub = new Hub(this.#topics, broker)
    this.#hub.onGap = (connection, subscription) => this.#gap(connection as Connection<U>, subscription)
    this.#heartbeat = new Heartbeat(options.heartbeat, () => this.connections)
    const self = this
    this.#onMessage = function (raw, isBinary) { self.#onFrame(this[kConnection] as Connection<U>, raw, isBinary) }
    this.#onClose = function (code) { self.#cleanup(this[kConnection] as Connection<U>, code) }
    const c = this.#contracts
    this.#builtin = {
      subscribe: c.validator(SubscribeData, 'data', 'built-in "subscribe"'),
      topic: c.validator(TopicData, 'data', 'built-in "unsubscribe"'),
      publish: c.validator(PublishData, 'data', 'built-in "publish"'),
      auth: c.validator(AuthData, 'data', 'built-in "auth"'),
      subscribeReply: c.serializer(SubscribeReply, 'reply', 'built-in "subscribe"'),
      publishReply: c.serializer(PublishReply, 'reply', 'built-in "publish"'),
      user: c.serializer(options.userSchema ?? DefaultUser, 'user', 'option "userSchema"')
    }
  }

  get broker (): Broker {
    return this.#hub.broker
  }

  /** Milliseconds between heartbeat sweeps (a dead peer goes within interval + timeout + tick). */
  get heartbeatTick (): number {
    return this.#heartbeat.tick
  }

  // ---------------------------------------------------------------- declarations

  /** Declares a message route. Its data is validated before the handler; its reply is serialised by its schema. */
  route<D extends TSchema, R extends TSchema | undefined = undefined, E extends ErrorSchemas = Record<never, TSchema>>(
    definition: RouteDefinition<D, R, E, U>
  ): this {
    this.#router.add(definition)
    return this
  }

  /** Declares a topic pattern such as `room/:name`. Subscribing to a name that matches no pattern is FORBIDDEN. */
  topic<M extends TSchema, P extends TSchema | undefined = undefined>(
    pattern: string,
    options: TopicOptions<P, M, U>
  ): TopicHandle<P extends TSchema ? Static<P> : Record<string, string | number>, Static<M>> {
    const compiled = this.#topics.add(pattern, options as never)
    return {
      pattern,
      name: (params) => formatTopic(compiled, params as Record<string, unknown>),
      publish: (params, data, opts) => this.publish(formatTopic(compiled, params as Record<string, unknown>), data, opts)
    }
  }

  /** Declares a server-to-client event and its schema. */
  event<S extends TSchema>(name: string, schema: S): EventHandle<Static<S>> {
    checkTypeName('event', name)
    if (this.#events.has(name)) throw new errorCodes.FST_REALTIME_DUPLICATE_EVENT(name)
    if (schema === undefined) throw new errorCodes.FST_REALTIME_SCHEMA('data', `event "${name}"`, 'a schema is required')
    this.#events.set(name, this.#contracts.serializer(schema, 'data', `event "${name}"`))
    this.#eventSchemas.set(name, schema) // AsyncAPI (issue 15): kept for describe()
    return {
      name,
      send: (connectionId, data) => this.send(connectionId, name, data),
      broadcast: (data, opts) => this.broadcast(name, data, opts)
    }
  }

  // ---------------------------------------------------------------- server-side API

  /** Publishes to a topic from anywhere in the process. The data is serialised by the topic's message schema. */
  publish (topic: string, data: unknown, options?: PublishOptions): Promise<PublishResult> {
    if (this.#closing) return Promise.reject(new errorCodes.FST_REALTIME_CLOSED())
    return this.#hub.publish(topic, data, options)
  }

  /**
   * The latest publications of a topic still in its history (oldest first), for
   * showing recent messages on join. `data` is as the topic's schema serialised it.
   */
  async history (topic: string, options: { limit?: number } = {}): Promise<{ offset: number, epoch: string, publications: Array<{ offset: number, data: unknown }> }> {
    this.#hub.resolve(topic)
    const { position, publications } = await this.#hub.broker.history(topic, options.limit ?? 50)
    return {
      offset: position.offset,
      epoch: position.epoch,
      publications: publications.map((p) => ({ offset: p.offset, data: JSON.parse(p.data) }))
    }
  }

  /** Sends a declared event to one connection. False when that connection is not open here. */
  send (connectionId: string, event: string, data: unknown): boolean {
    const frame = this.#eventFrame(event, data)
    const connection = this.connections.get(connectionId)
    if (connection === undefined) return false
    return connection.send(frame)
  }

  /** Sends a declared event to every accepted connection. Returns how many it was sent to. */
  broadcast (event: string, data: unknown, options: BroadcastOptions = {}): number {
    const frame = Buffer.from(this.#eventFrame(event, data))
    const except = options.except === undefined ? undefined : ([] as string[]).concat(options.except)
    let sent = 0
    for (const connection of this.connections) {
      if (except !== undefined && except.includes(connection.id)) continue
      if (connection.send(frame)) sent++
    }
    return sent
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
    await this.#hub.broker.command({ kind: 'disconnect-user', userId, code, reason })
  }

  #command (command: BrokerCommand): void {
    if (command.kind === 'disconnect-user') {
      for (const connection of this.connections.byUser(command.userId)) connection.close(command.code, command.reason)
    }
  }

  stats (): RealtimeStats {
    return {
      connections: {
        active: this.connections.size,
        total: this.connections.total,
        authenticating: this.#live.size - this.connections.size
      },
      messages: { in: this.#messagesIn, out: this.#limits.sent, dropped: this.#limits.dropped },
      topics: this.#hub.counts()
    }
  }

  #eventFrame (event: string, data: unknown): string {
    const serialize = this.#events.get(event)
    if (serialize === undefined) throw new errorCodes.FST_REALTIME_UNKNOWN_EVENT(String(event))
    let payload: string
    try {
      payload = serialize(data)
    } catch (err) {
      throw new errorCodes.FST_REALTIME_INVALID_DATA(`event "${event}"`, (err as Error).message)
    }
    return eventFrame(event, payload)
  }

  // ---------------------------------------------------------------- lifecycle

  /** Starts the heartbeat and connects the broker to local delivery. */
  async start (): Promise<void> {
    await this.#hub.broker.start(
      (publication) => this.#hub.deliver(publication),
      (event) => this.#hub.deliverPresence(event),
      (command) => this.#command(command),
      (topic) => this.#hub.resync(topic)
    )
    this.#heartbeat.start()
  }

  /**
   * Graceful shutdown: every client gets 1012 (server restarting), we wait up to
   * `closeTimeout` for the close handshakes, then terminate whoever is left.
   */
  async shutdown (): Promise<void> {
    this.#closing = true
    this.#heartbeat.stop()
    if (this.#live.size === 0) return
    const pending = [...this.#live].map((connection) => new Promise<void>((resolve) => {
      if (connection.socket.readyState === 3) return resolve()
      connection.socket.once('close', () => resolve())
      connection.close(CloseCode.RESTARTING, 'server restarting')
    }))
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<void>((resolve) => { timer = setTimeout(resolve, this.options.closeTimeout).unref() })
    await Promise.race([Promise.all(pending), timeout])
    clearTimeout(timer)
    for (const connection of this.#live) connection.terminate()
  }

  /**
   * Decides, before the upgrade, whether a connection may open: an HTTP status and
   * message to refuse it with, or null. Runs as the endpoint's onRequest hook, after
   * the app's own hooks (so `request.user` is known when hooks authenticate).
   */
  admission (request: FastifyRequest): { status: number, message: string } | null {
    const allowed = this.options.allowedOrigins
    const origin = request.headers.origin
    if (allowed !== undefined && origin !== undefined && !allowed.includes(origin)) {
      return { status: 403, message: 'Origin not allowed' }
    }
    if (this.#live.size >= this.options.maxConnections) return { status: 503, message: 'Too many connections; try again later' }
    if ((this.#perIp.get(request.ip) ?? 0) >= this.options.maxConnectionsPerIp) return { status: 429, message: 'Too many connections from this address' }
    const user = (this.options.getUser ?? defaultGetUser)(request)
    const userId = user === undefined ? undefined : (this.options.userId ?? defaultUserId)(user)
    if (userId !== undefined && this.connections.byUser(userId).length >= this.options.maxConnectionsPerUser) {
      return { status: 429, message: 'Too many connections for this user' }
    }
    return null
  }

  /**
   * Takes over an upgraded socket. Listeners are attached in this same tick, before
   * any await, so no frame that arrives while authentication runs is lost.
   */
  accept (socket: WebSocket, request: FastifyRequest): Connection<U> {
    const authenticating = this.options.authenticate !== undefined
    const connection = new Connection<U>(socket, request, authenticating ? 'authenticating' : 'open', this.#limits)
    this.#live.add(connection)
    const ip = connection.ip = request.ip
    const fromIp = (this.#perIp.get(ip) ?? 0) + 1
    this.#perIp.set(ip, fromIp)

    // Shared listeners find their connection on the socket: three closures less per
    // connection, which at ten thousand idle connections is memory worth keeping.
    ;(socket as SocketWithConnection)[kConnection] = connection as Connection
    socket.on('message', this.#onMessage)
    socket.on('pong', onPong)
    socket.once('close', this.#onClose)

    if (this.#closing) {
      connection.close(CloseCode.RESTARTING, 'server restarting')
      return connection
    }
    // Connections that raced past admission() together are refused here instead.
    if (this.#live.size > this.options.maxConnections) {
      connection.close(CloseCode.TRY_AGAIN_LATER, 'too many connections')
      return connection
    }
    if (fromIp > this.options.maxConnectionsPerIp) {
      connection.close(CloseCode.CONNECTION_LIMIT, 'too many connections from this address')
      return connection
    }
    if (authenticating) {
      connection.authTimer = setTimeout(() => {
        if (connection.state === 'authenticating') connection.close(CloseCode.AUTH_TIMEOUT, 'authentication timeout')
      }, this.options.authTimeout).unref()
    } else {
      const getUser = this.options.getUser ?? defaultGetUser
      this.#admit(connection, getUser(request) as U | undefined)
    }
    return connection
  }

  #admit (connection: Connection<U>, user: U | undefined): void {
    connection.user = user
    connection.userId = user === undefined ? undefined : (this.options.userId ?? defaultUserId)(user)
    if (connection.userId !== undefined && this.connections.byUser(connection.userId).length >= this.options.maxConnectionsPerUser) {
      connection.close(CloseCode.CONNECTION_LIMIT, 'too many connections for this user')
      return
    }
    connection.state = 'open'
    this.connections.add(connection)
    const welcome = `{"type":"welcome","data":{"connectionId":"${connection.id}","heartbeat":{"interval":${this.options.heartbeat.interval},"timeout":${this.options.heartbeat.timeout}}}}`
    connection.send(welcome)
    // The request's logger, not connection.log: that child is made only when needed.
    connection.request.log.debug({ connectionId: connection.id, userId: connection.userId }, 'realtime connection accepted')
  }

  /** The one cleanup of a connection, whatever ended it (close, error, heartbeat, shutdown). */
  #cleanup (connection: Connection<U>, code: number): void {
    clearTimeout(connection.authTimer)
    clearTimeout(connection.expiryTimer)
    const ip = connection.ip
    const fromIp = (this.#perIp.get(ip) as number) - 1
    if (fromIp === 0) this.#perIp.delete(ip)
    else this.#perIp.set(ip, fromIp)
    connection.backlog = null
    connection.state = 'closed'
    this.#live.delete(connection)
    if (!this.connections.delete(connection)) return
    // Every topic is left exactly once: the registry guard above makes this run once.
    for (const subscription of connection.subscriptions.values()) this.#leave(connection, subscription)
    connection.subscriptions.clear()
    connection.request.log.debug({ connectionId: connection.id, code }, 'realtime connection closed')
  }

  // ---------------------------------------------------------------- inbound frames

  #onFrame (connection: Connection<U>, raw: RawData, isBinary: boolean): void {
    connection.lastSeen = Date.now()
    connection.messagesIn++
    this.#messagesIn++
    if ((raw as Buffer).length > this.options.maxPayload) {
      // Reached only when the app's own ws server allows larger frames than we do.
      connection.close(CloseCode.TOO_BIG, 'frame too big')
      return
    }
    const envelope = this.#parse(connection, raw, isBinary)
    if (envelope === null) return
    const wait = connection.bucket.take(this.options.rateLimit, connection.lastSeen)
    if (wait > 0) {
      if (connection.bucket.refused > this.options.rateLimit.closeAfter) {
        connection.close(CloseCode.TOO_MANY_REQUESTS, 'too many requests')
      } else {
        this.#answerError(connection, envelope.id, new RealtimeError(ErrorCode.RATE_LIMITED, 'Too many messages; slow down', { temporary: true, retryAfterMs: wait }))
      }
      return
    }
    const backlog = connection.backlog as Envelope[] | null
    if (backlog !== null) {
      // An auth, subscribe or unsubscribe is in flight: what follows it waits for it,
      // so `subscribe` then `chat.send` behaves as sent, not as raced.
      if (backlog.length < MAX_BACKLOG) backlog.push(envelope)
      else this.#answerError(connection, envelope.id, wireErrors.limit(`At most ${MAX_BACKLOG} frames may wait behind a pending subscribe or auth`))
      return
    }
    this.#process(connection, envelope)
  }

  #process (connection: Connection<U>, envelope: Envelope): void {
    if (connection.state === 'authenticating') {
      if (envelope.type === 'auth') this.#authenticate(connection, envelope, false)
      else this.#answerError(connection, envelope.id, wireErrors.unauthorized('Send `auth` first'))
      return
    }
    this.#dispatch(connection, envelope)
  }

  /** Runs the frames that waited behind a barrier, until the next barrier among them. */
  #drain (connection: Connection<U>): void {
    const backlog = connection.backlog as Envelope[] | null
    connection.backlog = null
    if (backlog === null) return
    for (let i = 0; i < backlog.length; i++) {
      if (!connection.isOpen) return
      this.#process(connection, backlog[i])
      if (connection.backlog !== null) {
        // That frame was itself a barrier: the rest wait for it, ahead of newer frames.
        (connection.backlog as Envelope[]).push(...backlog.slice(i + 1))
        return
      }
    }
  }

  /** Parses and checks the envelope; answers BAD_REQUEST and returns null when it is not one. */
  #parse (connection: Connection<U>, raw: RawData, isBinary: boolean): Envelope | null {
    if (isBinary) {
      this.#answerError(connection, undefined, wireErrors.badRequest('Binary frames are not accepted; send JSON text'))
      return null
    }
    let value: unknown
    try {
      value = sjson.parse(raw as Buffer, null, { protoAction: 'error', constructorAction: 'error' })
    } catch (err) {
      const poisoned = (err as Error).name === 'SyntaxError' && /prototype/i.test((err as Error).message)
      this.#answerError(connection, undefined, wireErrors.badRequest(poisoned ? 'Forbidden prototype property in frame' : 'Frame is not valid JSON'))
      return null
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      this.#answerError(connection, undefined, wireErrors.badRequest('Frame must be a JSON object'))
      return null
    }
    const frame = value as Record<string, unknown>
    const id = frame.id
    if (id !== undefined && !(
      (typeof id === 'string' && id.length <= MAX_ID_LENGTH) ||
      (typeof id === 'number' && Number.isSafeInteger(id))
    )) {
      this.#answerError(connection, undefined, wireErrors.badRequest(`"id" must be a string of at most ${MAX_ID_LENGTH} characters or an integer`))
      return null
    }
    if (typeof frame.type !== 'string') {
      this.#answerError(connection, id as MessageId, wireErrors.badRequest('"type" must be a string'))
      return null
    }
    // The envelope is the first level; data starts at the second.
    const problem = checkValue(frame.data, this.options.maxDepth, 2)
    if (problem !== null) {
      this.#answerError(connection, id as MessageId, wireErrors.badRequest(problem))
      return null
    }
    return { type: frame.type, id: id as MessageId, data: frame.data }
  }

  #dispatch (connection: Connection<U>, envelope: Envelope): void {
    switch (envelope.type) {
      case 'ping':
        connection.send(pongFrame(envelope.id))
        return
      case 'subscribe':
        connection.backlog = []
        this.#run(connection, envelope, this.#subscribe(connection, envelope), true)
        return
      case 'unsubscribe':
        connection.backlog = []
        this.#run(connection, envelope, this.#unsubscribe(connection, envelope), true)
        return
      case 'publish':
        this.#run(connection, envelope, this.#clientPublish(connection, envelope))
        return
      case 'presence':
        this.#run(connection, envelope, this.#presence(connection, envelope))
        return
      case 'auth':
        if (this.options.authenticate === undefined) {
          this.#answerError(connection, envelope.id, wireErrors.badRequest('This server does not authenticate by message'))
        } else {
          this.#authenticate(connection, envelope, true)
        }
        return
    }
    const route = this.#router.get(envelope.type)
    if (route === undefined) {
      this.#answerError(connection, envelope.id, wireErrors.unknownType(envelope.type))
      return
    }
    this.#handle(connection, route, envelope)
  }

  /** Runs a built-in whose promise resolves to the reply frame's data (or rejects with a wire error). */
  #run (connection: Connection<U>, envelope: Envelope, work: Promise<string | typeof SENT>, barrier = false): void {
    work.then(
      (data) => { if (data !== SENT && envelope.id !== undefined) connection.send(replyFrame(envelope.id, data)) },
      (err) => this.#fail(connection, envelope, err, null)
    ).finally(() => { if (barrier) this.#drain(connection) })
  }

  #handle (connection: Connection<U>, route: CompiledRoute, envelope: Envelope): void {
    const details = route.validate(envelope.data)
    if (details !== null) {
      this.#answerError(connection, envelope.id, wireErrors.validation(details))
      return
    }
    const context = new Context<U>(this.#replyFn, this.#publishFn, connection, envelope.id, route)
    let result: unknown
    try {
      result = route.handler(envelope.data, context)
    } catch (err) {
      this.#fail(connection, envelope, err, route)
      return
    }
    if (result !== null && typeof result === 'object' && typeof (result as Promise<unknown>).then === 'function') {
      (result as Promise<unknown>).then(
        (value) => this.#reply(connection, route, context, value),
        (err) => this.#fail(connection, envelope, err, route)
      )
    } else {
      this.#reply(connection, route, context, result)
    }
  }

  /** Sends a route's reply (once, and only when the client gave an id). */
  #reply (connection: Connection<U>, route: CompiledRoute, context: Context<U>, value: unknown): void {
    if (context.replied) return
    context.replied = true
    if (context.id === undefined) return
    let data: string | undefined
    if (route.serializeReply !== null) {
      try {
        data = route.serializeReply(value)
      } catch (err) {
        connection.log.error({ err, type: route.type }, 'reply does not match its schema')
        this.#answerError(connection, context.id, wireErrors.internal())
        return
      }
    }
    connection.send(replyFrame(context.id, data))
  }

  /** Answers a failed message: a wire error as it is, anything else as INTERNAL (logged, revealing nothing). */
  #fail (connection: Connection<U>, envelope: Envelope, err: unknown, route: CompiledRoute | null): void {
    if (isRealtimeError(err)) {
      const serializer = route?.errorSerializers.get(err.code)
      if (serializer !== undefined) {
        let details: string | undefined
        try {
          details = err.details === undefined ? undefined : serializer(err.details)
        } catch (serr) {
          connection.log.error({ err: serr, type: envelope.type, code: err.code }, 'error details do not match their schema')
          this.#answerError(connection, envelope.id, wireErrors.internal())
          return
        }
        this.#sendError(connection, envelope.id, err, details)
        return
      }
      if (ErrorCode[err.code as keyof typeof ErrorCode] === err.code) {
        this.#answerError(connection, envelope.id, err)
        return
      }
      connection.log.error({ err, type: envelope.type }, `handler threw undeclared error code ${err.code}`)
    } else {
      connection.log.error({ err, type: envelope.type }, 'message handler failed')
    }
    this.#answerError(connection, envelope.id, wireErrors.internal())
  }

  #answerError (connection: Connection<U>, id: MessageId, error: RealtimeError): void {
    this.#sendError(connection, id, error, error.details === undefined ? undefined : JSON.stringify(error.details))
  }

  #sendError (connection: Connection<U>, id: MessageId, error: RealtimeError, details: string | undefined): void {
    connection.send(errorFrame(id, error, details))
    if (error.closeCode !== undefined) {
      connection.close(error.closeCode, error.message)
    } else if (CLIENT_FAULTS.has(error.code) && (connection.budget ??= new ErrorBudget()).spend(this.options.errorBudget, Date.now())) {
      // A client that keeps sending garbage is a broken or hostile one: stop listening.
      connection.close(CloseCode.BAD_REQUEST, 'too many protocol errors')
    }
  }

  // ---------------------------------------------------------------- authentication by message

  #authenticate (connection: Connection<U>, envelope: Envelope, refresh: boolean): void {
    const details = this.#builtin.auth(envelope.data)
    if (details !== null) {
      this.#answerError(connection, envelope.id, wireErrors.validation(details))
      return
    }
    // A barrier: frames sent while authenticate() runs are handled after it, as that user.
    connection.backlog = []
    const token = (envelope.data as { token: string }).token
    const authenticate = this.options.authenticate as NonNullable<ResolvedOptions['authenticate']>
    Promise.resolve()
      .then(() => authenticate(token, connection.request))
      .catch((err) => {
        // Never log the token: only that it failed, and why.
        connection.log.warn({ err: { message: (err as Error)?.message } }, 'authenticate threw; treating as bad credentials')
        return null
      })
      .then((result) => {
        if (!connection.isOpen) return
        if (!result || typeof result !== 'object') {
          // The auth message still gets its one answer before the close.
          this.#answerError(connection, envelope.id, wireErrors.unauthorized('Bad credentials'))
          connection.close(CloseCode.UNAUTHORIZED, 'bad credentials')
          return
        }
        const user = (result as { user: U }).user
        if (refresh && (this.options.userId ?? defaultUserId)(user) !== connection.userId) {
          // A refresh may renew credentials, not swap the user of a live connection.
          this.#answerError(connection, envelope.id, wireErrors.unauthorized('Credentials of another user'))
          connection.close(CloseCode.UNAUTHORIZED, 'credentials of another user')
          return
        }
        if (envelope.id !== undefined) connection.send(replyFrame(envelope.id, `{"user":${this.#serializeUser(user)}}`))
        this.#expireAt(connection, (result as { expiresAt?: number }).expiresAt)
        if (refresh) {
          connection.user = user
        } else {
          clearTimeout(connection.authTimer)
          this.#admit(connection, user)
        }
        this.#drain(connection)
      })
      .catch((err) => connection.log.error({ err }, 'failed completing authentication'))
  }

  /** Arms (or re-arms, on refresh) the close with 4005 when the credentials expire. */
  #expireAt (connection: Connection<U>, expiresAt: number | undefined): void {
    clearTimeout(connection.expiryTimer)
    connection.expiryTimer = undefined
    if (typeof expiresAt !== 'number') return
    // setTimeout holds at most ~24.8 days; a later expiry re-arms when that passes.
    const delay = Math.min(Math.max(0, expiresAt - Date.now()), 2_147_483_647)
    connection.expiryTimer = setTimeout(() => {
      if (Date.now() < expiresAt) this.#expireAt(connection, expiresAt)
      else connection.close(CloseCode.CREDENTIALS_EXPIRED, 'credentials expired')
    }, delay).unref()
  }

  #serializeUser (user: unknown): string {
    try {
      return this.#builtin.user(typeof user === 'object' && user !== null ? user : { id: user })
    } catch (err) {
      this.log.error({ err }, 'user does not match option userSchema')
      return '{}'
    }
  }

  // ---------------------------------------------------------------- topics

  async #authorize (connection: Connection<U>, match: TopicMatch, topic: string, action: TopicAction): Promise<void> {
    const authorize = match.topic.authorize
    if (authorize === undefined) return
    const allowed = await authorize({ action, topic, params: match.params, user: connection.user, connection } as AuthorizeContext<any, any>)
    if (allowed !== true) throw wireErrors.forbidden()
  }

  #match (topic: string): TopicMatch {
    if (topic.length > this.options.maxTopicLength) throw wireErrors.limit(`Topic names are at most ${this.options.maxTopicLength} characters`)
    const match = this.#topics.match(topic)
    if (match === null) throw wireErrors.forbidden()
    return match
  }

  async #subscribe (connection: Connection<U>, envelope: Envelope): Promise<typeof SENT> {
    const details = this.#builtin.subscribe(envelope.data)
    if (details !== null) throw wireErrors.validation(details)
    const { topic, since, meta } = envelope.data as Static<typeof SubscribeData>
    const match = this.#match(topic)
    const metaJson = meta === undefined ? undefined : this.#meta(match, meta)
    if (connection.subscriptions.has(topic)) throw wireErrors.alreadySubscribed(topic)
    if (connection.subscriptions.size >= this.options.maxSubscriptions) {
      throw wireErrors.limit(`At most ${this.options.maxSubscriptions} subscriptions per connection`)
    }
    // Claim the slot before the first await: a second subscribe to the same topic is
    // ALREADY_SUBSCRIBED, and publications arriving meanwhile are held, not lost.
    const subscription: Subscription = { topic, held: [], offset: 0, epoch: '', volatile: match.topic.volatile, joined: false }
    if (metaJson !== undefined) subscription.meta = metaJson
    connection.subscriptions.set(topic, subscription)
    try {
      // Every subscribe, recovery included, is authorized afresh: access lost while
      // away means nothing is replayed.
      await this.#authorize(connection, match, topic, 'subscribe')
      if (connection.subscriptions.get(topic) !== subscription || !connection.isOpen) throw wireErrors.notSubscribed(topic)
      // Joined to live delivery before history is read, so a publication racing the
      // read is either in the history or held, and the offset check drops the overlap.
      await this.#hub.add(connection as Connection, subscription)
      const broker = this.#hub.broker
      const recovery = since === undefined
        ? { position: await broker.position(topic), recovered: false, publications: [] }
        : await broker.recover(topic, since, this.options.recoveryLimit)
      if (connection.subscriptions.get(topic) !== subscription) throw wireErrors.notSubscribed(topic)
      const { position } = recovery
      const reply: Static<typeof SubscribeReply> = { topic, offset: position.offset, epoch: position.epoch }
      if (since !== undefined) reply.recovered = recovery.recovered
      this.#releaseHeld(connection, subscription, envelope.id, this.#builtin.subscribeReply(reply), position, recovery.publications)
      if (match.topic.presence !== null && connection.subscriptions.get(topic) === subscription) {
        try {
          await this.#join(connection, subscription)
        } catch (err) {
          // The reply is out already: the subscription stays, without presence; the
          // broker's leave (or its TTL) undoes a join that half happened.
          connection.log.error({ err, topic }, 'presence join failed')
          subscription.joined = false
          this.#hub.broker.leave(topic, connection.id).catch(() => {})
        }
      }
      return SENT
    } catch (err) {
      if (connection.subscriptions.get(topic) === subscription) {
        connection.subscriptions.delete(topic)
        await this.#hub.remove(connection as Connection, topic)
      }
      throw err
    }
  }

  /** Adds a confirmed subscriber to the topic's presence; the others hear `join`. */
  async #join (connection: Connection<U>, subscription: Subscription): Promise<void> {
    let member = `{"connectionId":"${connection.id}"`
    if (connection.user !== undefined) member += `,"user":${this.#serializeUser(connection.user)}`
    if (subscription.meta !== undefined) member += `,"meta":${subscription.meta}`
    member += '}'
    subscription.joined = true
    await this.#hub.broker.join(subscription.topic, { connectionId: connection.id, data: member })
  }

  /** Takes a subscription off live delivery and out of presence. */
  #leave (connection: Connection<U>, subscription: Subscription): void {
    const topic = subscription.topic
    this.#hub.remove(connection as Connection, topic).catch((err) => connection.log.error({ err, topic }, 'broker unsubscribe failed'))
    if (subscription.joined) {
      subscription.joined = false
      this.#hub.broker.leave(topic, connection.id).catch((err) => connection.log.error({ err, topic }, 'presence leave failed'))
    }
  }

  /**
   * Sends the subscribe reply, then the recovered publications, then those held
   * meanwhile that come after them: in order, none twice, none missing.
   */
  #releaseHeld (connection: Connection<U>, subscription: Subscription, id: MessageId, reply: string, { offset, epoch }: StreamPosition, recovered: Publication[]): void {
    if (id !== undefined) connection.send(replyFrame(id, reply))
    for (const p of recovered) connection.send(messageFrame(p.topic, p.offset, p.epoch, p.data))
    const held = subscription.held as NonNullable<Subscription['held']>
    subscription.held = null
    subscription.offset = offset
    subscription.epoch = epoch
    for (const item of held) {
      if (item.offset === 0) {
        connection.send(item.frame)
      } else if (item.offset === subscription.offset + 1 || (subscription.volatile && item.offset > subscription.offset)) {
        subscription.offset = item.offset
        connection.send(item.frame)
      } else if (item.offset > subscription.offset) {
        this.#gap(connection, subscription)
        return
      }
    }
  }

  /**
   * A live subscriber would miss publications (the broker lost some): it is told with
   * `unsubscribed` 2500 and resubscribes with `since`, never left with a silent gap.
   */
  #gap (connection: Connection<U>, subscription: Subscription): void {
    const topic = subscription.topic
    if (connection.subscriptions.get(topic) !== subscription) return
    connection.subscriptions.delete(topic)
    this.#leave(connection, subscription)
    connection.send(unsubscribedFrame(topic, UnsubscribeCode.INSUFFICIENT_STATE, 'insufficient state: resubscribe with since'))
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

  async #unsubscribe (connection: Connection<U>, envelope: Envelope): Promise<string> {
    const details = this.#builtin.topic(envelope.data)
    if (details !== null) throw wireErrors.validation(details)
    const { topic } = envelope.data as Static<typeof TopicData>
    const subscription = connection.subscriptions.get(topic)
    if (subscription === undefined) throw wireErrors.notSubscribed(topic)
    connection.subscriptions.delete(topic)
    this.#leave(connection, subscription)
    return '{}'
  }

  async #clientPublish (connection: Connection<U>, envelope: Envelope): Promise<string> {
    const details = this.#builtin.publish(envelope.data)
    if (details !== null) throw wireErrors.validation(details)
    const { topic, data } = envelope.data as Static<typeof PublishData>
    const match = this.#match(topic)
    if (!match.topic.clientPublish) throw wireErrors.forbidden()
    await this.#authorize(connection, match, topic, 'publish')
    const invalid = match.topic.validateMessage(data)
    if (invalid !== null) throw wireErrors.validation(invalid.map((d) => ({ path: '/data' + d.path, message: d.message })))
    const result = await this.#hub.publishMatched(match, topic, data)
    return this.#builtin.publishReply({ offset: result.offset })
  }

  async #presence (connection: Connection<U>, envelope: Envelope): Promise<string> {
    const details = this.#builtin.topic(envelope.data)
    if (details !== null) throw wireErrors.validation(details)
    const { topic } = envelope.data as Static<typeof TopicData>
    const match = this.#match(topic)
    if (match.topic.presence === null) throw wireErrors.forbidden()
    await this.#authorize(connection, match, topic, 'presence')
    const members = await this.#hub.broker.members(topic)
    return `{"members":[${members.map((m) => m.data).join(',')}]}`
  }

  // ---------------------------------------------------------------- AsyncAPI (issue 15)

  readonly #eventSchemas = new Map<string, TSchema>()

  /** The declarations as a plain description, which the AsyncAPI generator reads. */
  describe (): ApiDescription {
    return {
      routes: Array.from(this.#router.list(), (r) => ({ type: r.type, data: r.schema.data, reply: r.schema.reply, errors: r.schema.errors })),
      topics: this.#topics.list().map(({ pattern, definition: d, clientPublish, volatile }) => ({
        pattern,
        params: d.params,
        message: d.message,
        presence: d.presence === undefined || d.presence === false ? null : { meta: d.presence === true ? undefined : d.presence.meta },
        clientPublish,
        volatile
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

const kConnection = Symbol('fastify-realtime.connection')
type SocketWithConnection = WebSocket & { [kConnection]?: Connection }

function onPong (this: SocketWithConnection): void {
  (this[kConnection] as Connection).lastSeen = Date.now()
}

/** Errors that are the client's fault, counted against its error budget. */
const CLIENT_FAULTS: ReadonlySet<string> = new Set([ErrorCode.BAD_REQUEST, ErrorCode.UNKNOWN_TYPE, ErrorCode.VALIDATION_FAILED])

/** Marks a built-in whose reply was already sent (in order with held publications). */
const SENT: unique symbol = Symbol('sent')

type ReplyFn = (connection: Connection<any>, route: CompiledRoute, context: Context<any>, value: unknown) => void
type PublishFn = (topic: string, data: unknown, options?: PublishOptions) => Promise<PublishResult>

class Context<U> implements MessageContext<any, any, U> {
  readonly connection: Connection<U>
  readonly id: MessageId
  readonly #route: CompiledRoute
  readonly #replyFn: ReplyFn
  readonly publish: PublishFn
  replied = false

  constructor (replyFn: ReplyFn, publishFn: PublishFn, connection: Connection<U>, id: MessageId, route: CompiledRoute) {
    this.#replyFn = replyFn
    this.publish = publishFn
    this.connection = connection
    this.id = id
    this.#route = route
  }

  get user (): U | undefined {
    return this.connection.user
  }

  get request (): FastifyRequest {
    return this.connection.request
  }

  get log (): FastifyBaseLogger {
    return this.connection.log
  }

  reply = (data: unknown): void => {
    this.#replyFn(this.connection, this.#route, this, data)
  }

  error<K extends string>(code: K, details: unknown, message?: string): RealtimeError<K, any> {
    return new RealtimeError(code, message ?? code, { details })
  }
}

/**
 * JSON may spell numbers no double holds (`1e999` parses as Infinity, which schemas
 * accept as a number and serializers turn into null), and may nest deep enough to
 * exhaust the stack of whatever walks it later. Both are refused at the door.
 */
function checkValue (value: unknown, maxDepth: number, depth: number): string | null {
  if (typeof value === 'number') return Number.isFinite(value) ? null : 'Numbers must be finite'
  if (value === null || typeof value !== 'object') return null
  // Recursion is bounded: it stops at maxDepth (at most 1000, an option's maximum).
  if (depth > maxDepth) return `Frames nest at most ${maxDepth} levels deep`
  if (Array.isArray(value)) {
    for (const item of value) {
      const problem = checkValue(item, maxDepth, depth + 1)
      if (problem !== null) return problem
    }
  } else {
    for (const key in value) {
      const problem = checkValue((value as Record<string, unknown>)[key], maxDepth, depth + 1)
      if (problem !== null) return problem
    }
  }
  return null
}

function defaultGetUser (request: FastifyRequest): unknown {
  return (request as FastifyRequest & { user?: unknown }).user
}

function defaultUserId (user: unknown): string | undefined {
  if (typeof user === 'string') return user
  if (typeof user === 'number') return String(user)
  if (user !== null && typeof user === 'object') {
    const id = (user as { id?: unknown }).id
    if (typeof id === 'string' || typeof id === 'number') return String(id)
  }
  return undefined
}

export type { CompiledTopic }
