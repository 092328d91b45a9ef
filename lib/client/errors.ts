// Errors a client sees: those the server answered (`error` frames, with the
// protocol's codes or a route's own), and those the client raises itself when a
// request cannot be answered (timeout, full queue, lost or closed connection).
import type { ProtocolErrorCode } from './protocol.js'

/** Codes the client itself gives to requests that got no answer from the server. */
export type ClientErrorCode =
  /** No answer within the request's timeout, counted from its sending on an open connection. */
  | 'TIMEOUT'
  /** Disconnected and the queue of waiting requests is full. */
  | 'QUEUE_FULL'
  /** The request waited for a connection longer than `queueTimeout`; it was never sent. */
  | 'QUEUE_TIMEOUT'
  /**
   * The connection was lost after a request that is not idempotent was sent, before its
   * answer, and the client does not send it again (idempotent ones are resent). `maybeRan`
   * says whether it may have run: false after a server close that answers first.
   */
  | 'DISCONNECTED'
  /** The client is closed (by `close()`, or by a close code that does not reconnect). */
  | 'CLOSED'

export interface RealtimeClientErrorOptions<D = unknown> {
  details?: D
  temporary?: boolean
  retryAfterMs?: number
  /** For CLOSED: the WebSocket close code that ended the connection, when there was one. */
  closeCode?: number
  /** For an error the client raised because no answer came: whether the request may have run on the server. */
  maybeRan?: boolean
}

/**
 * An error answered by the server, or raised by the client when no answer came.
 * `code` and `details` are typed by the route when it comes from `request()`; see
 * `RequestError` and `isRealtimeClientError`.
 */
export class RealtimeClientError<C extends string = string, D = unknown> extends Error {
  readonly code: C
  readonly details: D
  /** The same request may succeed later (INTERNAL, RATE_LIMITED, TIMEOUT, DISCONNECTED, …). */
  readonly temporary: boolean
  /** How long to wait before retrying, when the server said so. */
  readonly retryAfterMs: number | undefined
  readonly closeCode: number | undefined
  /**
   * Set on the errors the client raises because no answer came (TIMEOUT, DISCONNECTED,
   * CLOSED, QUEUE_FULL, QUEUE_TIMEOUT): false when the server cannot have run the request
   * (never sent, or left unanswered by a server close that answers what it ran first),
   * true when it may have. Undefined on the server's own answers, which say what happened.
   */
  readonly maybeRan: boolean | undefined

  constructor (code: C, message: string, options: RealtimeClientErrorOptions<D> = {}) {
    super(message)
    this.name = 'RealtimeClientError'
    this.code = code
    this.details = options.details as D
    this.temporary = options.temporary ?? false
    this.retryAfterMs = options.retryAfterMs
    this.closeCode = options.closeCode
    this.maybeRan = options.maybeRan
  }

  toJSON (): { code: C, message: string, details?: D, temporary: boolean, retryAfterMs?: number, maybeRan?: boolean } {
    const out: { code: C, message: string, details?: D, temporary: boolean, retryAfterMs?: number, maybeRan?: boolean } = { code: this.code, message: this.message, temporary: this.temporary }
    if (this.details !== undefined) out.details = this.details
    if (this.retryAfterMs !== undefined) out.retryAfterMs = this.retryAfterMs
    if (this.maybeRan !== undefined) out.maybeRan = this.maybeRan
    return out
  }
}

/** An error of any code: from the protocol, from the client, or an application's own. */
export type AnyRealtimeClientError = RealtimeClientError<ProtocolErrorCode | ClientErrorCode | (string & {}), unknown>

export function isRealtimeClientError (err: unknown): err is AnyRealtimeClientError {
  return err instanceof RealtimeClientError
}

/** Builds the error from the `error` object of an `error` frame. */
export function fromWire (error: unknown): AnyRealtimeClientError {
  const e = (error !== null && typeof error === 'object' ? error : {}) as Record<string, unknown>
  const code = typeof e.code === 'string' ? e.code : 'INTERNAL'
  const message = typeof e.message === 'string' ? e.message : code
  const options: RealtimeClientErrorOptions = { details: e.details, temporary: e.temporary === true }
  if (typeof e.retryAfterMs === 'number') options.retryAfterMs = e.retryAfterMs
  return new RealtimeClientError(code, message, options)
}

/**
 * A client API used wrongly (a missing url, a bad option, a listener that is not a
 * function): a programming mistake, thrown at once. A TypeError, with a code to match on.
 */
export class ClientUsageError extends TypeError {
  readonly code = 'ERR_REALTIME_CLIENT_USAGE'

  constructor (message: string) {
    super(message)
    this.name = 'TypeError'
  }
}
