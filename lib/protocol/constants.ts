// Constants of the wire protocol (docs/protocol.md, version 1). Every code the
// server puts on the wire comes from here, so the code and the document agree. The
// client imports this module too, so it uses nothing that only Node has.

export const SUBPROTOCOL = 'realtime.v1'
/** The same protocol, every frame a binary MessagePack frame holding the same envelope (docs/protocol.md, MessagePack). */
export const SUBPROTOCOL_MSGPACK = 'realtime.v1.msgpack'

/** Longest string `id` an envelope may carry; a longer one could make every answer large. */
export const MAX_ID_LENGTH = 128

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
  /** Reserved: the server answers `recovered: false` instead, which the protocol prefers. */
  UNRECOVERABLE_POSITION: 'UNRECOVERABLE_POSITION',
  /** A service the server depends on (its broker) cannot be reached; temporary. */
  UNAVAILABLE: 'UNAVAILABLE',
  INTERNAL: 'INTERNAL'
} as const
export type ProtocolErrorCode = typeof ErrorCode[keyof typeof ErrorCode]

/**
 * WebSocket close codes with the meaning the protocol gives them. Codes marked
 * "reserved" are in the protocol for clients to understand, but this server never
 * closes with them itself: ws sends the 100x codes of the WebSocket layer, and an
 * application may use the others with `disconnect()`.
 */
export const CloseCode = {
  /** A shutdown for good (`closeCode: 1000` or `close({ code: 1000 })`): clients do not reconnect; also a normal close by the client, or by the app with `disconnect()`. */
  NORMAL: 1000,
  /** A shutdown with `closeCode: 1001` (or `close({ code: 1001 })`); from a client, its page going away. */
  GOING_AWAY: 1001,
  /** Reserved (sent by ws on a protocol violation). */
  PROTOCOL_ERROR: 1002,
  /** Reserved (sent by ws on bad UTF-8). */
  INVALID_PAYLOAD: 1007,
  /** Reserved. */
  POLICY: 1008,
  /** Never sent: what a close frame without a code reports. */
  NO_STATUS: 1005,
  /** Never sent: what a connection lost without a close frame reports. */
  ABNORMAL: 1006,
  TOO_BIG: 1009,
  /** Reserved (a peer's unexpected condition). */
  SERVER_ERROR: 1011,
  RESTARTING: 1012,
  TRY_AGAIN_LATER: 1013,
  /** Reserved. */
  INTERNAL: 4004,
  /** Sent by the client when it gives up on a socket it cannot terminate (a browser's): it reconnects. */
  ABANDONED: 4000,
  CREDENTIALS_EXPIRED: 4005,
  SLOW_CONSUMER: 4008,
  /** Reserved: a gap is told per topic with `unsubscribed` 2500 instead. */
  INSUFFICIENT_STATE: 4010,
  /** Reserved (for `disconnect()`: ask a client to reconnect, for example to rebalance). */
  RECONNECT: 4011,
  NO_PONG: 4012,
  TOO_MANY_REQUESTS: 4013,
  UNAUTHORIZED: 4500,
  BAD_REQUEST: 4501,
  AUTH_TIMEOUT: 4502,
  DISCONNECTED: 4503,
  CONNECTION_LIMIT: 4504,
  /** Reserved: too many subscriptions is answered LIMIT_EXCEEDED, the connection stays. */
  SUBSCRIPTION_LIMIT: 4505,
  /** Reserved: an unsupported subprotocol is refused with HTTP 400 before the upgrade. */
  UNSUPPORTED_PROTOCOL: 4506,
  /** Reserved. */
  FORBIDDEN: 4507
} as const

/**
 * The close codes a shutdown may use (`closeCode`, `app.realtime.close({ code })`): 1000
 * (stop for good: clients do not reconnect), 1001 (going away) and 1012 (restarting:
 * clients come back at once, with jitter).
 */
export const SHUTDOWN_CODES = [CloseCode.NORMAL, CloseCode.GOING_AWAY, CloseCode.RESTARTING] as const
export type ShutdownCode = typeof SHUTDOWN_CODES[number]

/** A WebSocket's `readyState` (the same numbers in ws and in browsers). */
export const ReadyState = {
  CONNECTING: 0,
  OPEN: 1,
  CLOSING: 2,
  CLOSED: 3
} as const

/** Codes of an `unsubscribed` frame. */
export const UnsubscribeCode = {
  SERVER: 2000,
  INSUFFICIENT_STATE: 2500,
  /** Reserved: the server does not yet re-check permissions of live subscriptions. */
  PERMISSION_EXPIRED: 2501
} as const

/** Whether a client should reconnect after this close code (protocol, "Close codes"). */
export function shouldReconnect (code: number): boolean {
  if (code === CloseCode.GOING_AWAY || code === CloseCode.ABNORMAL || code === CloseCode.RESTARTING || code === CloseCode.TRY_AGAIN_LATER) return true
  return code >= 4000 && code <= 4499
}

/**
 * Whether a close with this code, received from the server, comes after the answers of
 * every request the server accepted on the connection (it answers them, or answers
 * INTERNAL those still running, before its close frame): then a request left
 * unanswered was not run. Not after 4008 (its send queue was full), 4012 (no pong: the
 * peer looked dead), 1006 (the socket died) or a WebSocket-layer code (1002, 1007, 1009…).
 */
export function answeredBeforeClose (code: number): boolean {
  if (code === 1001 || code === 1012 || code === 1013) return true
  return code >= 4000 && code <= 4999 && code !== CloseCode.SLOW_CONSUMER && code !== CloseCode.NO_PONG
}

/** Message types a client may send that the server handles itself. */
export const CLIENT_BUILTINS = ['auth', 'subscribe', 'unsubscribe', 'publish', 'presence', 'ping'] as const
/** Frame types the server sends on its own account; no event may take these names. */
const SERVER_BUILTINS = ['reply', 'error', 'message', 'welcome', 'join', 'leave', 'unsubscribed', 'subscribed', 'pong'] as const

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
