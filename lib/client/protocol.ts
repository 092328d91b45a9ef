// The parts of the wire protocol (realtime.v1) that a client needs. The client keeps
// its own copy instead of importing the server's module, so that nothing written for
// Node can ever reach a browser bundle; a test checks that both copies agree.

export const SUBPROTOCOL = 'realtime.v1'

/** Message types a client sends that the server handles itself; `request()` refuses them. */
export const CLIENT_BUILTINS: ReadonlySet<string> = new Set(['auth', 'subscribe', 'unsubscribe', 'publish', 'presence', 'ping'])

/** Error codes of the protocol (in an `error` frame). */
export type ProtocolErrorCode =
  | 'BAD_REQUEST'
  | 'UNKNOWN_TYPE'
  | 'VALIDATION_FAILED'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'ALREADY_SUBSCRIBED'
  | 'NOT_SUBSCRIBED'
  | 'LIMIT_EXCEEDED'
  | 'RATE_LIMITED'
  | 'UNRECOVERABLE_POSITION'
  | 'INTERNAL'

/** Codes of an `unsubscribed` frame. */
export const UnsubscribeCode = {
  /** Unsubscribed by the server: stay unsubscribed. */
  SERVER: 2000,
  /** Insufficient state: resubscribe with `since`. */
  INSUFFICIENT_STATE: 2500,
  /** Permission expired: refresh the credentials, then resubscribe. */
  PERMISSION_EXPIRED: 2501
} as const

/**
 * Whether a close code calls for reconnecting: 1001, 1006, 1012, 1013 and 4000–4499.
 * Everything else (1000, other 1xxx, 4500–4999) means stay closed.
 */
export function shouldReconnect (code: number): boolean {
  if (code === 1001 || code === 1006 || code === 1012 || code === 1013) return true
  return code >= 4000 && code <= 4499
}
