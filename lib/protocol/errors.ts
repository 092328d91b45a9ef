// One catalogue of errors. Configuration mistakes are @fastify/error constructors
// (FST_REALTIME_*) thrown at register/ready time and naming what is wrong; wire
// errors are RealtimeError instances that know their protocol code and, where they
// end the connection, their close code. One more code lives beside the module that
// throws it because that module is bundled for browsers: FST_REALTIME_INVALID_CONTRACT
// (`ContractError`, lib/protocol/contract.ts), re-exported here.
import { createError as createFastifyError, type FastifyErrorConstructor } from '@fastify/error'
import { ErrorCode, type ProtocolErrorCode } from './constants.js'

export type { FastifyErrorConstructor }

/**
 * @fastify/error's createError with its return type named: the inferred one refers to the
 * `createError` namespace through a default import, which consumers resolving with
 * `moduleResolution: bundler` cannot see (TS2503), or see as `any` under skipLibCheck.
 */
export function createError<C extends string, SC extends number> (code: C, message: string, statusCode: SC, Base?: ErrorConstructor): FastifyErrorConstructor<{ code: C, statusCode: SC }> {
  return createFastifyError(code, message, statusCode, Base)
}

export const errorCodes = {
  FST_REALTIME_INVALID_OPTION: createError('FST_REALTIME_INVALID_OPTION', 'Invalid fastify-realtime option "%s": %s', 500, TypeError),
  FST_REALTIME_DUPLICATE_ROUTE: createError('FST_REALTIME_DUPLICATE_ROUTE', 'Message route "%s" is already declared', 500),
  FST_REALTIME_RESERVED_TYPE: createError('FST_REALTIME_RESERVED_TYPE', '"%s" is a built-in message type of the protocol and cannot be declared', 500),
  FST_REALTIME_INVALID_NAME: createError('FST_REALTIME_INVALID_NAME', 'Invalid %s name "%s": %s', 500, TypeError),
  FST_REALTIME_SCHEMA: createError('FST_REALTIME_SCHEMA', 'Failed building the %s schema of %s: %s', 500),
  FST_REALTIME_DUPLICATE_TOPIC: createError('FST_REALTIME_DUPLICATE_TOPIC', 'Topic pattern "%s" is already declared', 500),
  FST_REALTIME_INVALID_PATTERN: createError('FST_REALTIME_INVALID_PATTERN', 'Invalid topic pattern "%s": %s', 500, TypeError),
  FST_REALTIME_UNKNOWN_TOPIC: createError('FST_REALTIME_UNKNOWN_TOPIC', 'Topic "%s" matches no declared topic pattern', 500),
  FST_REALTIME_DUPLICATE_EVENT: createError('FST_REALTIME_DUPLICATE_EVENT', 'Event "%s" is already declared', 500),
  FST_REALTIME_UNKNOWN_EVENT: createError('FST_REALTIME_UNKNOWN_EVENT', 'Event "%s" is not declared; declare it with realtime.event()', 500),
  FST_REALTIME_INVALID_DATA: createError('FST_REALTIME_INVALID_DATA', 'Invalid data for %s: %s', 500, TypeError),
  FST_REALTIME_CLOSED: createError('FST_REALTIME_CLOSED', 'fastify-realtime is closed', 500),
  /** Redis or PostgreSQL cannot be reached (or the connection dropped mid-command). Temporary: the same call may succeed later; answered UNAVAILABLE on the wire. */
  FST_REALTIME_BROKER_UNAVAILABLE: createError('FST_REALTIME_BROKER_UNAVAILABLE', 'The broker is unavailable: %s', 503),
  /** The broker was closed. */
  FST_REALTIME_BROKER_CLOSED: createError('FST_REALTIME_BROKER_CLOSED', 'The broker is closed', 500),
  FST_REALTIME_BROKER_NOT_STARTED: createError('FST_REALTIME_BROKER_NOT_STARTED', 'The broker is not started: start() comes before %s()', 500),
  FST_REALTIME_INVALID_BROKER_OPTION: createError('FST_REALTIME_INVALID_BROKER_OPTION', 'Invalid broker option "%s": %s', 500, TypeError),
  /** A publication larger than the broker's `maxPublicationBytes`: refused before the database sees it. */
  FST_REALTIME_PUBLICATION_TOO_LARGE: createError('FST_REALTIME_PUBLICATION_TOO_LARGE', 'The publication on "%s" is %s bytes, more than maxPublicationBytes (%s)', 413, RangeError),
  /** `transaction` is not a pg client inside an open transaction block (none begun, or aborted). Nothing was written. */
  FST_REALTIME_INVALID_TRANSACTION: createError('FST_REALTIME_INVALID_TRANSACTION', 'Cannot publish in this transaction: %s', 500, TypeError),
  /** `transaction` given to a broker that publishes only on its own (memory, Redis). */
  FST_REALTIME_NO_TRANSACTIONS: createError('FST_REALTIME_NO_TRANSACTIONS', 'The %s broker cannot publish in the application\'s transaction: the transaction option needs the PostgreSQL broker (fastify-realtime/postgres)', 500),
  FST_REALTIME_DECLARED_AFTER_CLOSE: createError('FST_REALTIME_DECLARED_AFTER_CLOSE', 'Cannot declare %s: fastify-realtime is closed', 500),
  FST_REALTIME_HOOK_INVALID_TYPE: createError('FST_REALTIME_HOOK_INVALID_TYPE', '"%s" is not a fastify-realtime hook (onConnect, onDisconnect, onSubscribe, onUnsubscribe, preHandler, onHandlerError)', 500, TypeError),
  FST_REALTIME_HOOK_INVALID_HANDLER: createError('FST_REALTIME_HOOK_INVALID_HANDLER', '%s hook should be a function, instead got %s', 500, TypeError),
  FST_REALTIME_NO_IDEMPOTENCY: createError('FST_REALTIME_NO_IDEMPOTENCY', 'Route "%s" is idempotent but the broker keeps no idempotency records (it lacks claimIdempotent/settleIdempotent)', 500),
  FST_REALTIME_WEBSOCKET_ORDER: createError('FST_REALTIME_WEBSOCKET_ORDER', 'fastify-realtime at "%s" registered @fastify/websocket itself, so a later registration cannot apply its options: register @fastify/websocket with your options before fastify-realtime (which then shares it), or register it after without options', 500),
  FST_REALTIME_MISSING_PEER: createError('FST_REALTIME_MISSING_PEER', '%s needs %s, an optional peer dependency of fastify-realtime that is not installed: npm install %s', 500),
  FST_REALTIME_WEBSOCKET_SCOPE: createError('FST_REALTIME_WEBSOCKET_SCOPE', 'fastify-realtime at "%s" cannot share the WebSocket server of the fastify-realtime at "%s", which registered @fastify/websocket in another encapsulated context: register @fastify/websocket once in a common parent (the root) before both', 500)
}

export { ContractError } from './contract.js'

export interface WireErrorDetail {
  path: string
  message: string
}

export interface RealtimeErrorOptions {
  details?: unknown
  temporary?: boolean
  retryAfterMs?: number
  /** Close the connection with this code after sending the error. */
  closeCode?: number
  cause?: unknown
}

/**
 * An error that is answered on the wire with `{ type: 'error', error: { code, message, ... } }`.
 * Thrown by the router for protocol errors and by handlers for their declared codes.
 */
export class RealtimeError<C extends string = string, D = unknown> extends Error {
  readonly code: C
  readonly details?: D
  readonly temporary: boolean
  readonly retryAfterMs?: number
  readonly closeCode?: number

  constructor (code: C, message: string, options: RealtimeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'RealtimeError'
    this.code = code
    this.details = options.details as D
    this.temporary = options.temporary ?? false
    if (options.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs
    if (options.closeCode !== undefined) this.closeCode = options.closeCode
  }
}

export function isRealtimeError (err: unknown): err is RealtimeError {
  return err instanceof RealtimeError
}

/** Shorthands for the protocol's own errors. */
export const wireErrors = {
  badRequest: (message: string) => new RealtimeError(ErrorCode.BAD_REQUEST, message),
  unknownType: (type: string) => new RealtimeError(ErrorCode.UNKNOWN_TYPE, `Unknown message type "${clip(type)}"`),
  validation: (details: WireErrorDetail[]) => new RealtimeError(ErrorCode.VALIDATION_FAILED, 'data does not match the schema', { details }),
  unauthorized: (message = 'Not authenticated') => new RealtimeError(ErrorCode.UNAUTHORIZED, message),
  forbidden: () => new RealtimeError(ErrorCode.FORBIDDEN, 'Forbidden'),
  alreadySubscribed: (topic: string) => new RealtimeError(ErrorCode.ALREADY_SUBSCRIBED, `Already subscribed to "${clip(topic)}"`),
  notSubscribed: (topic: string) => new RealtimeError(ErrorCode.NOT_SUBSCRIBED, `Not subscribed to "${clip(topic)}"`),
  limit: (message: string, closeCode?: number) => new RealtimeError(ErrorCode.LIMIT_EXCEEDED, message, closeCode === undefined ? {} : { closeCode }),
  internal: () => new RealtimeError(ErrorCode.INTERNAL, 'Internal error', { temporary: true }),
  /** A request still running when the wait of its connection's close ended: it may have run (or still be running). */
  unfinished: () => new RealtimeError(ErrorCode.INTERNAL, 'The connection closed before this request finished; it may have run', { temporary: true }),
  unavailable: (message: string, retryAfterMs?: number) => new RealtimeError(ErrorCode.UNAVAILABLE, message, retryAfterMs === undefined ? { temporary: true } : { temporary: true, retryAfterMs })
}

/** Keeps client-supplied strings short when they are echoed in error messages. */
function clip (s: string): string {
  return s.length > 64 ? s.slice(0, 64) + '…' : s
}

export const PROTOCOL_ERROR_CODES: ReadonlySet<string> = new Set<ProtocolErrorCode>(Object.values(ErrorCode))
