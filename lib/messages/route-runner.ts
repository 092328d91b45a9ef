// A message route, from validated envelope to its one answer: the preHandler hooks,
// the handler, the reply checked and serialised by its schema, or the failure mapped
// to a wire error; on a route declared idempotent, all of it once per (user, key). Each
// request is in flight on its connection from here to its answer, so that a close the
// server decides meanwhile waits for that answer (connection.ts).
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { Answers, FailureAnswer } from '../connection/answer.js'
import type { Broker } from '../broker/types.js'
import type { Connection } from '../connection/connection.js'
import type { Envelope } from '../wire/envelope.js'
import { RealtimeError, wireErrors } from '../protocol/errors.js'
import { errorFrame, replyFrame, type MessageId } from '../wire/frames.js'
import { runHooks, runObservers, type Hooks } from './hooks.js'
import { answerRecord, readAnswerRecord, runIdempotent } from './idempotency.js'
import type { ResolvedOptions } from '../config/options.js'
import type { PublishOptions, PublishResult } from '../pubsub/publish.js'
import type { CompiledRoute, MessageContext } from './router.js'
import { handlerTraced, traceHandler } from './handler-trace.js'

export type PublishFn = (topic: string, data: unknown, options?: PublishOptions) => Promise<PublishResult>

/** Work started and not yet answered, counted so that a shutdown can wait for it. */
export class InFlight {
  #count = 0
  #onIdle: (() => void) | null = null

  start (): void {
    this.#count++
  }

  readonly settled = (): void => {
    if (--this.#count === 0 && this.#onIdle !== null) this.#onIdle()
  }

  idle (): Promise<void> {
    if (this.#count === 0) return Promise.resolve()
    return new Promise((resolve) => {
      const previous = this.#onIdle
      this.#onIdle = () => { this.#onIdle = null; previous?.(); resolve() }
    })
  }
}

/**
 * An idempotent run's outcome that is not the handler's own (see FailureAnswer.transient,
 * and an unexpected failure while the server shuts down): answered, never remembered.
 */
class Unremembered {
  readonly answer: FailureAnswer
  constructor (answer: FailureAnswer) {
    this.answer = answer
  }
}

export class RouteRunner<U> {
  readonly #options: Readonly<ResolvedOptions>
  readonly #hooks: Hooks<U>
  readonly #answers: Answers
  readonly #broker: Broker
  readonly #inFlight: InFlight
  /** True while the server shuts down: an unexpected failure then may be the shutdown's doing. */
  readonly #closing: () => boolean
  readonly publish: PublishFn

  constructor (options: Readonly<ResolvedOptions>, hooks: Hooks<U>, answers: Answers, broker: Broker, publish: PublishFn, inFlight: InFlight, closing: () => boolean) {
    this.#options = options
    this.#closing = closing
    this.#hooks = hooks
    this.#answers = answers
    this.#broker = broker
    this.publish = publish
    this.#inFlight = inFlight
  }

  handle (connection: Connection<U>, route: CompiledRoute, envelope: Envelope): void {
    const details = route.validate(envelope.data)
    if (details !== null) {
      this.#answers.error(connection, envelope.id, wireErrors.validation(details))
      return
    }
    const context = new Context<U>(this, connection, envelope.id, route)
    connection.accepted(context)
    if (route.idempotent && envelope.key !== undefined) this.#once(context, envelope.data, envelope.key)
    else this.#run(context, envelope.data)
  }

  /** preHandlers (when there are any), then the handler; synchronous when it can be. */
  #run (context: Context<U>, data: unknown): void {
    const route = routeOf(context)
    if (this.#hooks.preHandler.length === 0 && route.preHandler.length === 0) {
      this.#invoke(context, data)
      return
    }
    this.#inFlight.start()
    runHooks(this.#hooks.preHandler, data, context)
      .then(() => runHooks(route.preHandler, data, context))
      .then(() => { if (!answered(context)) this.#invoke(context, data) }, (err) => this.fail(context, err))
      .finally(this.#inFlight.settled)
  }

  /**
   * An idempotent route with a key: the first answer per (user, route, key) is kept in
   * the broker (with the close code its error carries); a repeat, on any connection of
   * the user and any node, gets it again, and is answered through answers.ts as the
   * first was. An outcome that is not the handler's own is answered but not kept.
   */
  #once (context: Context<U>, data: unknown, key: string): void {
    const { connection, id } = context
    const route = routeOf(context)
    keyed(context)
    this.#inFlight.start()
    runIdempotent({
      broker: this.#broker,
      userId: connection.userId,
      route: route.type,
      key,
      id,
      ttl: this.#options.idempotency.ttl,
      pendingTimeout: this.#options.idempotency.pendingTimeout
    }, () => new Promise<string>((resolve, reject) => {
      // The answer is captured, built without an id, and kept before it is sent; one
      // that must not be kept rejects, which releases the key.
      captureWith(context, (outcome) => { if (typeof outcome === 'string') resolve(outcome); else reject(outcome) })
      this.#run(context, data)
    })).then(
      // A fire-and-forget repeat gets no reply, as the first did not; errors are still told.
      (record) => { this.#answers.remembered(connection, id, readAnswerRecord(record)) },
      (err) => {
        if (err instanceof Unremembered) this.#answers.send(connection, id, err.answer)
        else this.#answers.failure(connection, id, route.type, err)
      }
    ).finally(() => {
      connection.settled(context)
      this.#inFlight.settled()
    })
  }

  #invoke (context: Context<U>, data: unknown): void {
    const route = routeOf(context)
    let result: unknown
    try {
      result = handlerTraced()
        ? traceHandler(route.handler, data, context, { route: route.type, connectionId: context.connection.id, connection: context.connection })
        : route.handler(data, context)
    } catch (err) {
      this.fail(context, err)
      return
    }
    if (result !== null && typeof result === 'object' && typeof (result as Promise<unknown>).then === 'function') {
      this.#inFlight.start()
      ;(result as Promise<unknown>).then((value) => this.reply(context, value), (err) => this.fail(context, err)).finally(this.#inFlight.settled)
    } else {
      this.reply(context, result)
    }
  }

  /** The route's reply (once, and only when the client gave an id), checked and serialised by its schema. */
  reply (context: Context<U>, value: unknown): void {
    if (!claim(context)) return
    const capture = captureOf(context)
    if (context.id === undefined && capture === null) {
      context.connection.settled(context)
      return
    }
    const route = routeOf(context)
    let data: string | undefined
    if (route.serializeReply !== null) {
      // Checked before it is serialised, which would coerce (1.5 to 1) instead of refusing.
      const problem = route.checkReply === null ? null : route.checkReply(value)
      if (problem !== null) {
        context.log.error({ type: route.type, problem }, `reply of route "${route.type}" does not match its schema: ${problem}`)
        this.#answerError(context, wireErrors.internal())
        return
      }
      try {
        data = route.serializeReply(value)
      } catch (err) {
        context.log.error({ err, type: route.type }, 'reply does not match its schema')
        this.#answerError(context, wireErrors.internal())
        return
      }
    }
    if (capture !== null) {
      capture(replyFrame(undefined, data))
    } else {
      this.#answers.reply(context.connection, context.id, data)
      context.connection.settled(context)
    }
  }

  /** Answers a failed route (once); an unexpected failure is also told to onHandlerError. */
  fail (context: Context<U>, err: unknown): void {
    const route = routeOf(context)
    if (!claim(context)) {
      context.log.error({ err, type: route.type }, 'message handler failed after it replied')
      return
    }
    const capture = captureOf(context)
    const answer = this.#answers.errorOf(context.connection, route.type, err, route.errorSerializers)
    if (capture === null) {
      this.#answers.send(context.connection, context.id, answer)
      context.connection.settled(context)
    } else if (answer.transient || (answer.unexpected && this.#closing())) {
      // Not the handler's outcome but the moment's (the broker away, the plugin closed
      // under it, a failure while the server shuts down): the same key must run again.
      capture(new Unremembered(answer))
    } else {
      capture(answerRecord(errorFrame(undefined, answer.error, answer.details), answer.error.closeCode))
    }
    if (answer.unexpected && this.#hooks.onHandlerError.length > 0) {
      runObservers(this.#hooks.onHandlerError, context.log, 'onHandlerError', err, context).catch(() => {})
    }
  }

  #answerError (context: Context<U>, error: RealtimeError): void {
    const capture = captureOf(context)
    if (capture !== null) {
      capture(errorFrame(undefined, error))
    } else {
      this.#answers.error(context.connection, context.id, error)
      context.connection.settled(context)
    }
  }
}

type Capture = (outcome: string | Unremembered) => void

/*
 * The runner's view of a Context's private state. The handler is given the Context
 * (`ctx`), and what it can reach there is what README documents: the compiled route,
 * whether it was answered and where an idempotent answer goes stay in #fields, read
 * by the runner only through these (set once, in Context's static block).
 */
let routeOf: (context: Context<any>) => CompiledRoute
/** Whether the request was answered (a reply or an error). */
let answered: (context: Context<any>) => boolean
/** Marks the request answered: true the first time only, so that it is answered once. */
let claim: (context: Context<any>) => boolean
let captureOf: (context: Context<any>) => Capture | null
let captureWith: (context: Context<any>, capture: Capture) => void
/** An idempotent run with a key: left unanswered when it outlives a close's wait (connection.ts PendingRequest). */
let keyed: (context: Context<any>) => void

class Context<U> implements MessageContext<any, any, U> {
  readonly connection: Connection<U>
  readonly id: MessageId
  readonly publish: PublishFn
  readonly #runner: RouteRunner<U>
  readonly #route: CompiledRoute
  #replied = false
  /**
   * Set on an idempotent run: the answer record (its frame without id) goes here instead
   * of to the socket, or what must be answered and not remembered.
   */
  #capture: Capture | null = null
  #keyed = false

  static {
    routeOf = (context) => context.#route
    answered = (context) => context.#replied
    claim = (context) => {
      if (context.#replied) return false
      context.#replied = true
      return true
    }
    captureOf = (context) => context.#capture
    captureWith = (context, capture) => { context.#capture = capture }
    keyed = (context) => { context.#keyed = true }
  }

  constructor (runner: RouteRunner<U>, connection: Connection<U>, id: MessageId, route: CompiledRoute) {
    this.#runner = runner
    this.publish = runner.publish
    this.connection = connection
    this.id = id
    this.#route = route
  }

  get type (): string {
    return this.#route.type
  }

  /** As a PendingRequest of its connection (read when a close's wait ends). */
  get keyed (): boolean {
    return this.#keyed
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
    this.#runner.reply(this, data)
  }

  error<K extends string>(code: K, details: unknown, message?: string): RealtimeError<K, any> {
    return new RealtimeError(code, message ?? code, { details })
  }
}
