// Constants of the wire protocol (shared/PROTOCOL.md, version 1). Every code the
// server puts on the wire comes from here, so the code and the document agree. The
// client imports this module too, so it uses nothing that only Node has.

export const SUBPROTOCOL = 'realtime.v1'

/** Longest idempotency `key` an envelope may carry, in characters; longer is BAD_REQUEST. */
export const MAX_KEY_LENGTH = 128

/** Error codes carried in an `error` frame; the connection stays open. */
export const ErrorCode = {
  BAD_REQUEST: 'BAD_REQUEST',
  UNKNOWN_TYPE: 'UNKNOWN_TYPE',
  VALIDATION_FAILED: 'VALIDATION_FAILED',
  UNAUTHORIZED: 'UNAUTHORIZED',
  FORBIDDEN: 'FORBIDDEN',
  ALREADY_SUBSCRIBED: 'ALREADY_SUBSCRIBED',
  NOT_SUBSCRIBED: 'NOT_SUBSCRIBED',
  LIMIT_EXCEEDED: 'LIMIT_EXCEEDED',
  RATE_LIMITED: 'RATE_LIMITED',
  UNRECOVERABLE_POSITION: 'UNRECOVERABLE_POSITION',
  UNAVAILABLE: 'UNAVAILABLE',
  INTERNAL: 'INTERNAL'
} as const
export type ProtocolErrorCode = typeof ErrorCode[keyof typeof ErrorCode]

/** WebSocket close codes the server uses, with the meaning given by the protocol. */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  INVALID_PAYLOAD: 1007,
  POLICY: 1008,
  TOO_BIG: 1009,
  RESTARTING: 1012,
  TRY_AGAIN_LATER: 1013,
  INTERNAL: 4004,
  CREDENTIALS_EXPIRED: 4005,
  SLOW_CONSUMER: 4008,
  INSUFFICIENT_STATE: 4010,
  RECONNECT: 4011,
  NO_PONG: 4012,
  TOO_MANY_REQUESTS: 4013,
  UNAUTHORIZED: 4500,
  BAD_REQUEST: 4501,
  AUTH_TIMEOUT: 4502,
  DISCONNECTED: 4503,
  CONNECTION_LIMIT: 4504,
  SUBSCRIPTION_LIMIT: 4505,
  UNSUPPORTED_PROTOCOL: 4506,
  FORBIDDEN: 4507
} as const

/** Codes of an `unsubscribed` frame. */
export const UnsubscribeCode = {
  SERVER: 2000,
  INSUFFICIENT_STATE: 2500,
  PERMISSION_EXPIRED: 2501
} as const

/** Whether a client should reconnect after this close code (protocol, "Close codes"). */
export function shouldReconnect (code: number): boolean {
  if (code === 1001 || code === 1006 || code === 1012 || code === 1013) return true
  return code >= 4000 && code <= 4499
}

/** Message types a client may send that the server handles itself. */
export const CLIENT_BUILTINS = ['auth', 'subscribe', 'unsubscribe', 'publish', 'presence', 'ping'] as const
/** Frame types the server sends on its own account; no event may take these names. */
export const SERVER_BUILTINS = ['reply', 'error', 'message', 'welcome', 'join', 'leave', 'unsubscribed', 'pong'] as const

export const RESERVED_TYPES: ReadonlySet<string> = new Set<string>([...CLIENT_BUILTINS, ...SERVER_BUILTINS])

/** A close reason is at most 123 bytes (RFC 6455 5.5.1); longer ones are cut on a character boundary. */
export function closeReason (reason: string): string {
  if (utf8.encode(reason).length <= 123) return reason
  let out = ''
  let bytes = 0
  for (const ch of reason) {
    bytes += utf8.encode(ch).length
    if (bytes > 123) break
    out += ch
  }
  return out
}

const utf8 = new TextEncoder()
