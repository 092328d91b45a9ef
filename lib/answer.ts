// The one answer a client gets for a message it sent with an id: a reply, or an error.
// Every answer of the plugin, for routes and built-ins alike, leaves through here, so
// the rules hold everywhere: a reply only when an id was given, errors mapped to the
// protocol (anything unexpected is INTERNAL and reveals nothing), a wire error's close
// code honoured, and protocol errors charged to the client's error budget.
import type { Connection } from './connection.js'
import { isRealtimeError, RealtimeError, wireErrors } from './errors.js'
import { errorFrame, replyFrame, type MessageId } from './frames.js'
import { ErrorBudget, type ErrorBudgetOptions } from './limits.js'
import { CloseCode, ErrorCode } from './protocol.js'
import type { Serializer } from './schema-compiler.js'
import { channels } from './diagnostics.js'

/** Errors that are the client's fault, counted against its error budget. */
const CLIENT_FAULTS: ReadonlySet<string> = new Set([ErrorCode.BAD_REQUEST, ErrorCode.UNKNOWN_TYPE, ErrorCode.VALIDATION_FAILED])

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
    this.#send(connection, id, error, error.details === undefined ? undefined : JSON.stringify(error.details))
  }

  /**
   * Answers a failed message: a wire error as it is (a declared one with its details
   * serialised by its schema), anything else as INTERNAL, logged. Returns true when the
   * failure was unexpected (answered INTERNAL), which is what onHandlerError reports.
   */
  failure (connection: Connection<any>, id: MessageId, type: string, err: unknown, declared?: ReadonlyMap<string, Serializer>): boolean {
    if (isRealtimeError(err)) {
      const serializer = declared?.get(err.code)
      if (serializer !== undefined) {
        let details: string | undefined
        try {
          details = err.details === undefined ? undefined : serializer(err.details)
        } catch (serr) {
          connection.log.error({ err: serr, type, code: err.code }, 'error details do not match their schema')
          this.error(connection, id, wireErrors.internal())
          return true
        }
        this.#send(connection, id, err, details)
        return false
      }
      if (ErrorCode[err.code as keyof typeof ErrorCode] === err.code) {
        this.error(connection, id, err)
        return false
      }
      connection.log.error({ err, type }, `handler threw undeclared error code ${err.code}`)
    } else {
      connection.log.error({ err, type }, 'message handler failed')
    }
    this.error(connection, id, wireErrors.internal())
    return true
  }

  #send (connection: Connection<any>, id: MessageId, error: RealtimeError, details: string | undefined): void {
    connection.send(errorFrame(id, error, details))
    if (channels.error.hasSubscribers) channels.error.publish({ connection, code: error.code })
    if (error.closeCode !== undefined) {
      connection.close(error.closeCode, error.message)
    } else if (CLIENT_FAULTS.has(error.code) && (connection.budget ??= new ErrorBudget()).spend(this.#budget, Date.now())) {
      // A client that keeps sending garbage is a broken or hostile one: stop listening.
      connection.close(CloseCode.BAD_REQUEST, 'too many protocol errors')
    }
  }
}
