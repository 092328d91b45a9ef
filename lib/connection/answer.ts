// The one answer a client gets for a message it sent with an id: a reply, or an error.
// Every answer of the plugin, for routes and built-ins alike, leaves through here, so
// the rules hold everywhere: a reply only when an id was given, errors mapped to the
// protocol (anything unexpected is INTERNAL and reveals nothing), a wire error's close
// code honoured, and protocol errors charged to the client's error budget. An idempotent
// route's remembered answer and the answers a closing connection still owes leave here too.
import type { Connection, PendingRequest } from './connection.js'
import { isRealtimeError, RealtimeError, wireErrors } from '../protocol/errors.js'
import { errorFrame, replyFrame, type MessageId } from '../wire/frames.js'
import { ErrorBudget, type ErrorBudgetOptions } from './limits.js'
import { CloseCode, ErrorCode } from '../protocol/constants.js'
import type { Serializer } from '../wire/schema-compiler.js'
import { channels } from '../protocol/diagnostics.js'

/** The broker's code for "cannot reach the store" (lib/broker/redis.ts), answered as UNAVAILABLE. */
const BROKER_UNAVAILABLE = 'FST_REALTIME_BROKER_UNAVAILABLE'
/** What UNAVAILABLE suggests: about the time a Redis client takes to reconnect. */
const RETRY_AFTER_MS = 1000

/**
 * Failures of the plugin's own making: it (or its broker) was closed under a handler.
 * Answered INTERNAL, but they say nothing about the request, so an idempotent route
 * does not remember them.
 */
const PLUGIN_GONE: ReadonlySet<unknown> = new Set(['FST_REALTIME_CLOSED', 'FST_REALTIME_BROKER_CLOSED', 'FST_REALTIME_BROKER_NOT_STARTED'])

/** Errors that are the client's fault, counted against its error budget. */
const CLIENT_FAULTS: ReadonlySet<string> = new Set([ErrorCode.BAD_REQUEST, ErrorCode.UNKNOWN_TYPE, ErrorCode.VALIDATION_FAILED])

export interface FailureAnswer {
  error: RealtimeError
  /** The details, serialised (by the declared schema, or as plain JSON). */
  details: string | undefined
  /** Answered INTERNAL: something the app did not mean to happen. */
  unexpected: boolean
  /**
   * Not the request's outcome but the moment's: UNAVAILABLE (the broker away, or a
   * handler's "try again"), or the plugin closed under the handler. An idempotent route
   * does not remember it, so the same key runs again.
   */
  transient: boolean
}

function plain (error: RealtimeError, unexpected: boolean, transient = error.code === ErrorCode.UNAVAILABLE): FailureAnswer {
  return { error, details: error.details === undefined ? undefined : JSON.stringify(error.details), unexpected, transient }
}

function internal (transient = false): FailureAnswer {
  return plain(wireErrors.internal(), true, transient)
}

/** A remembered answer of an idempotent route: its frame (with the request's id) and the close code its error carried. */
export interface RememberedAnswer {
  frame: string
  closeCode: number | undefined
}

export class Answers {
  readonly #budget: ErrorBudgetOptions

  constructor (budget: ErrorBudgetOptions) {
    this.#budget = budget
  }

  /** Sends a reply; `data` is already serialised (or undefined for a reply without data). */
  reply (connection: Connection<any>, id: MessageId, data: string | undefined): void {
    if (id !== undefined) connection.send(replyFrame(id, data))
  }

  /** Answers with a wire error whose details (if any) are plain JSON. */
  error (connection: Connection<any>, id: MessageId, error: RealtimeError): void {
    this.send(connection, id, plain(error, false))
  }

  /**
   * Answers a failed message: a wire error as it is (a declared one with its details
   * serialised by its schema), anything else as INTERNAL, logged. Returns true when the
   * failure was unexpected (answered INTERNAL), which is what onHandlerError reports.
   */
  failure (connection: Connection<any>, id: MessageId, type: string, err: unknown, declared?: ReadonlyMap<string, Serializer>): boolean {
    const answer = this.errorOf(connection, type, err, declared)
    this.#send(connection, id, answer.error, answer.details)
    return answer.unexpected
  }

  /** What a failure is answered with (see failure), without sending it: idempotent routes keep it. */
  errorOf (connection: Connection<any>, type: string, err: unknown, declared?: ReadonlyMap<string, Serializer>): FailureAnswer {
    if (isRealtimeError(err)) {
      const serializer = declared?.get(err.code)
      if (serializer !== undefined) {
        try {
          return { error: err, details: err.details === undefined ? undefined : serializer(err.details), unexpected: false, transient: false }
        } catch (serr) {
          connection.log.error({ err: serr, type, code: err.code }, 'error details do not match their schema')
          return internal()
        }
      }
      if (ErrorCode[err.code as keyof typeof ErrorCode] === err.code) return plain(err, false)
      connection.log.error({ err, type }, `handler threw undeclared error code ${err.code}`)
    } else if ((err as { code?: unknown })?.code === BROKER_UNAVAILABLE) {
      // The broker (Redis) is away: "try again", not "the server is broken".
      connection.log.warn({ err, type }, 'broker unavailable')
      return plain(wireErrors.unavailable('A service the server depends on is unavailable; try again', RETRY_AFTER_MS), false)
    } else if (PLUGIN_GONE.has((err as { code?: unknown })?.code)) {
      connection.log.warn({ err, type }, 'message handler failed: fastify-realtime closed under it')
      return internal(true)
    } else {
      connection.log.error({ err, type }, 'message handler failed')
    }
    return internal()
  }

  /** Sends an answer that errorOf made. */
  send (connection: Connection<any>, id: MessageId, answer: FailureAnswer): void {
    this.#send(connection, id, answer.error, answer.details)
  }

  /**
   * Sends an idempotent route's answer, remembered or just made, as any answer is: a
   * reply only when the request has an id, an error always, its close code and the error
   * budget applied as they were the first time.
   */
  remembered (connection: Connection<any>, id: MessageId, answer: RememberedAnswer): void {
    if (answer.frame.startsWith('{"type":"reply"')) {
      if (id !== undefined) connection.send(answer.frame)
      return
    }
    // Rare (a repeat that gets an error): the code and message are read back from the frame.
    const { code, message } = (JSON.parse(answer.frame) as { error: { code: string, message: string } }).error
    connection.send(answer.frame)
    this.#after(connection, code, answer.closeCode, message)
  }

  /**
   * The requests a closing connection still has in flight when its wait ends: each with an
   * id is answered INTERNAL (temporary; it may have run), so none is left unanswered
   * before the close frame. Except a keyed request to an idempotent route: the client
   * sends it again with its key after reconnecting, and gets the run's own answer.
   */
  unanswered (connection: Connection<any>, requests: Iterable<PendingRequest>): void {
    for (const request of requests) {
      if (request.id !== undefined && request.keyed !== true) this.#send(connection, request.id, wireErrors.unfinished(), undefined)
    }
  }

  #send (connection: Connection<any>, id: MessageId, error: RealtimeError, details: string | undefined): void {
    connection.send(errorFrame(id, error, details))
    this.#after(connection, error.code, error.closeCode, error.message)
  }

  /** What follows an error answer: observers told, its close code honoured, a client fault charged. */
  #after (connection: Connection<any>, code: string, closeCode: number | undefined, message: string): void {
    if (channels.error.hasSubscribers) channels.error.publish({ connection, code })
    if (closeCode !== undefined) {
      connection.close(closeCode, message)
    } else if (CLIENT_FAULTS.has(code) && (connection.budget ??= new ErrorBudget()).spend(this.#budget, Date.now())) {
      // A client that keeps sending garbage is a broken or hostile one: stop listening.
      connection.close(CloseCode.BAD_REQUEST, 'too many protocol errors')
    }
  }
}
