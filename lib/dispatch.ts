// Every inbound frame after the socket: parse (envelope.ts), rate limit, the barriers
// that keep a connection's frames in order behind a pending auth or subscribe, then
// the built-in command or the message route: validation, preHandler hooks, the
// handler, and its one answer (answer.ts).
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { RawData } from 'ws'
import type { Answers } from './answer.js'
import type { MessageAuth } from './auth.js'
import type { Connection } from './connection.js'
import { isEnvelopeError, parseEnvelope, type Envelope } from './envelope.js'
import { RealtimeError, wireErrors } from './errors.js'
import { pongFrame, type MessageId } from './frames.js'
import { runHooks, runObservers, type Hooks } from './hooks.js'
import type { ResolvedOptions } from './options.js'
import { CloseCode, ErrorCode } from './protocol.js'
import type { PublishOptions, PublishResult } from './publish.js'
import type { CompiledRoute, MessageContext, Router } from './router.js'
import { SENT, type TopicCommands } from './topic-commands.js'
import { channels, handlerTraced, inboundType, traceHandler } from './diagnostics.js'

/**
 * Frames a connection may send while one of its `auth`, `subscribe` or `unsubscribe`
 * (or its onConnect hooks) is in flight; they wait and run in order after it. Past
 * this many they are refused: a client cannot make the server hold unbounded work.
 */
const MAX_BACKLOG = 256

type PublishFn = (topic: string, data: unknown, options?: PublishOptions) => Promise<PublishResult>

export class Dispatcher<U> {
  readonly #options: Readonly<ResolvedOptions>
  readonly #router: Router
  readonly #commands: TopicCommands<U>
  readonly #hooks: Hooks<U>
  readonly #answers: Answers
  readonly publish: PublishFn
  /** Set when the server authenticates by message (the `authenticate` option). */
  auth: MessageAuth<U> | null = null
  /** Frames received on every connection. */
  messagesIn = 0

  constructor (options: Readonly<ResolvedOptions>, router: Router, commands: TopicCommands<U>, hooks: Hooks<U>, answers: Answers, publish: PublishFn) {
    this.#options = options
    this.#router = router
    this.#commands = commands
    this.#hooks = hooks
    this.#answers = answers
    this.publish = publish
  }

  onFrame (connection: Connection<U>, raw: RawData, isBinary: boolean): void {
    connection.lastSeen = Date.now()
    connection.messagesIn++
    this.messagesIn++
    if ((raw as Buffer).length > this.#options.maxPayload) {
      // Reached only when the app's own ws server allows larger frames than we do.
      connection.close(CloseCode.TOO_BIG, 'frame too big')
      return
    }
    const envelope = parseEnvelope(raw, isBinary, this.#options.maxDepth)
    if (channels.messageIn.hasSubscribers) channels.messageIn.publish({ connection, type: isEnvelopeError(envelope) ? 'invalid' : inboundType(envelope.type, (t) => this.#router.get(t) !== undefined) })
    if (isEnvelopeError(envelope)) {
      this.#answers.error(connection, envelope.id, envelope.error)
      return
    }
    const wait = connection.bucket.take(this.#options.rateLimit, connection.lastSeen)
    if (wait > 0) {
      if (connection.bucket.refused > this.#options.rateLimit.closeAfter) {
        connection.close(CloseCode.TOO_MANY_REQUESTS, 'too many requests')
      } else {
        this.#answers.error(connection, envelope.id, new RealtimeError(ErrorCode.RATE_LIMITED, 'Too many messages; slow down', { temporary: true, retryAfterMs: wait }))
      }
      return
    }
    const backlog = connection.backlog as Envelope[] | null
    if (backlog !== null) {
      // An auth, subscribe or unsubscribe is in flight: what follows it waits for it,
      // so `subscribe` then `chat.send` behaves as sent, not as raced.
      if (backlog.length < MAX_BACKLOG) backlog.push(envelope)
      else this.#answers.error(connection, envelope.id, wireErrors.limit(`At most ${MAX_BACKLOG} frames may wait behind a pending subscribe or auth`))
      return
    }
    this.#process(connection, envelope)
  }

  /** Runs the frames that waited behind a barrier, until the next barrier among them. */
  drain (connection: Connection<U>): void {
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

  #process (connection: Connection<U>, envelope: Envelope): void {
    if (connection.state === 'authenticating') {
      if (envelope.type === 'auth' && this.auth !== null) this.auth.authenticate(connection, envelope, false)
      else this.#answers.error(connection, envelope.id, wireErrors.unauthorized('Send `auth` first'))
      return
    }
    switch (envelope.type) {
      case 'ping':
        connection.send(pongFrame(envelope.id))
        return
      case 'subscribe':
        connection.backlog = []
        this.#run(connection, envelope, this.#commands.subscribe(connection, envelope.id, envelope.data), true)
        return
      case 'unsubscribe':
        connection.backlog = []
        this.#run(connection, envelope, this.#commands.unsubscribe(connection, envelope.data), true)
        return
      case 'publish':
        this.#run(connection, envelope, this.#commands.publish(connection, envelope.data))
        return
      case 'presence':
        this.#run(connection, envelope, this.#commands.presence(connection, envelope.data))
        return
      case 'auth':
        if (this.auth === null) this.#answers.error(connection, envelope.id, wireErrors.badRequest('This server does not authenticate by message'))
        else this.auth.authenticate(connection, envelope, true)
        return
    }
    const route = this.#router.get(envelope.type)
    if (route === undefined) {
      this.#answers.error(connection, envelope.id, wireErrors.unknownType(envelope.type))
      return
    }
    this.#handle(connection, route, envelope)
  }

  /** Runs a built-in whose promise resolves to the reply frame's data (or rejects with a wire error). */
  #run (connection: Connection<U>, envelope: Envelope, work: Promise<string | typeof SENT>, barrier = false): void {
    work.then(
      (data) => { if (data !== SENT) this.#answers.reply(connection, envelope.id, data) },
      (err) => { this.#answers.failure(connection, envelope.id, envelope.type, err) }
    ).finally(() => { if (barrier) this.drain(connection) })
  }

  #handle (connection: Connection<U>, route: CompiledRoute, envelope: Envelope): void {
    const details = route.validate(envelope.data)
    if (details !== null) {
      this.#answers.error(connection, envelope.id, wireErrors.validation(details))
      return
    }
    const context = new Context<U>(this, connection, envelope.id, route)
    if (this.#hooks.preHandler.length === 0 && route.preHandler.length === 0) {
      this.#invoke(context, envelope.data)
      return
    }
    runHooks(this.#hooks.preHandler, envelope.data, context)
      .then(() => runHooks(route.preHandler, envelope.data, context))
      .then(() => { if (!context.replied) this.#invoke(context, envelope.data) }, (err) => this.fail(context, err))
  }

  #invoke (context: Context<U>, data: unknown): void {
    let result: unknown
    try {
      result = handlerTraced()
        ? traceHandler(context.route.handler, data, context, { route: context.route.type, connectionId: context.connection.id, connection: context.connection })
        : context.route.handler(data, context)
    } catch (err) {
      this.fail(context, err)
      return
    }
    if (result !== null && typeof result === 'object' && typeof (result as Promise<unknown>).then === 'function') {
      (result as Promise<unknown>).then((value) => this.reply(context, value), (err) => this.fail(context, err))
    } else {
      this.reply(context, result)
    }
  }

  /** Sends a route's reply (once, and only when the client gave an id), serialised by its schema. */
  reply (context: Context<U>, value: unknown): void {
    if (context.replied) return
    context.replied = true
    if (context.id === undefined) return
    const route = context.route
    let data: string | undefined
    if (route.serializeReply !== null) {
      try {
        data = route.serializeReply(value)
      } catch (err) {
        context.connection.log.error({ err, type: route.type }, 'reply does not match its schema')
        this.#answers.error(context.connection, context.id, wireErrors.internal())
        return
      }
    }
    this.#answers.reply(context.connection, context.id, data)
  }

  /** Answers a failed route (once); an unexpected failure is also told to onHandlerError. */
  fail (context: Context<U>, err: unknown): void {
    if (context.replied) {
      context.log.error({ err, type: context.route.type }, 'message handler failed after it replied')
      return
    }
    context.replied = true
    const unexpected = this.#answers.failure(context.connection, context.id, context.route.type, err, context.route.errorSerializers)
    if (unexpected && this.#hooks.onHandlerError.length > 0) {
      runObservers(this.#hooks.onHandlerError, context.log, 'onHandlerError', err, context).catch(() => {})
    }
  }
}

class Context<U> implements MessageContext<any, any, U> {
  readonly connection: Connection<U>
  readonly id: MessageId
  readonly route: CompiledRoute
  readonly publish: PublishFn
  readonly #dispatcher: Dispatcher<U>
  replied = false

  constructor (dispatcher: Dispatcher<U>, connection: Connection<U>, id: MessageId, route: CompiledRoute) {
    this.#dispatcher = dispatcher
    this.publish = dispatcher.publish
    this.connection = connection
    this.id = id
    this.route = route
  }

  get type (): string {
    return this.route.type
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
    this.#dispatcher.reply(this, data)
  }

  error<K extends string>(code: K, details: unknown, message?: string): RealtimeError<K, any> {
    return new RealtimeError(code, message ?? code, { details })
  }
}
