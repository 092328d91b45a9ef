// The first step of every inbound frame: from raw bytes to an envelope, or to the
// BAD_REQUEST that says why not. Untrusted JSON goes through secure-json-parse, and
// nothing past this point sees an id, a type or data of the wrong shape.
import sjson from 'secure-json-parse'
import type { RawData } from 'ws'
import { RealtimeError, wireErrors } from '../protocol/errors.js'
import type { MessageId } from './frames.js'
import { MAX_ID_LENGTH, MAX_KEY_LENGTH } from '../protocol/constants.js'
import { scanMessagePack, unpack } from './msgpack.js'

export interface Envelope {
  type: string
  id: MessageId
  data: unknown
  /** The idempotency key (read by idempotent routes, ignored elsewhere). */
  key?: string
}

/** A frame that is not an envelope: the error to answer, with the id when one was readable. */
export interface EnvelopeError {
  id: MessageId
  error: RealtimeError
}

/** `msgpack`: the connection negotiated `realtime.v1.msgpack`, whose frames are binary MessagePack. */
export function parseEnvelope (raw: RawData, isBinary: boolean, maxDepth: number, msgpack = false): Envelope | EnvelopeError {
  let value: unknown
  if (msgpack) {
    if (!isBinary) return refuse(undefined, 'Text frames are not accepted on realtime.v1.msgpack; send binary MessagePack')
    const bytes = raw as Buffer
    const problem = scanMessagePack(bytes, maxDepth)
    if (problem !== null) return refuse(undefined, problem)
    try {
      value = unpack(bytes)
    } catch {
      return refuse(undefined, 'Frame is not valid MessagePack')
    }
    if (hasConstructorPrototype(value)) return refuse(undefined, 'Forbidden prototype property in frame')
  } else {
    if (isBinary) return refuse(undefined, 'Binary frames are not accepted; send JSON text')
    try {
      value = sjson.parse(raw as Buffer, null, { protoAction: 'error', constructorAction: 'error' })
    } catch (err) {
      const poisoned = (err as Error).name === 'SyntaxError' && /prototype/i.test((err as Error).message)
      return refuse(undefined, poisoned ? 'Forbidden prototype property in frame' : 'Frame is not valid JSON')
    }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return refuse(undefined, 'Frame must be a JSON object')
  const frame = value as Record<string, unknown>
  const id = frame.id
  if (id !== undefined && !(
    (typeof id === 'string' && id.length <= MAX_ID_LENGTH) ||
    (typeof id === 'number' && Number.isSafeInteger(id))
  )) {
    return refuse(undefined, `"id" must be a string of at most ${MAX_ID_LENGTH} characters or an integer`)
  }
  if (typeof frame.type !== 'string') return refuse(id as MessageId, '"type" must be a string')
  // The whole frame, not only data: a field the server reads elsewhere (a key, a future
  // member) or ignores must not carry what data may not. The envelope is the first level.
  const problem = checkValue(frame, maxDepth, 1)
  if (problem !== null) return refuse(id as MessageId, problem)
  const envelope: Envelope = { type: frame.type, id: id as MessageId, data: frame.data }
  if (frame.key !== undefined) {
    try {
      envelope.key = checkIdempotencyKey(frame.key)
    } catch (error) {
      return { id: id as MessageId, error: error as RealtimeError }
    }
  }
  return envelope
}

export function isEnvelopeError (parsed: Envelope | EnvelopeError): parsed is EnvelopeError {
  return (parsed as EnvelopeError).error !== undefined
}

function refuse (id: MessageId, message: string): EnvelopeError {
  return { id, error: wireErrors.badRequest(message) }
}

/**
 * What secure-json-parse refuses for JSON (`constructorAction`), for a decoded MessagePack
 * frame: an object with a `constructor` that holds a `prototype`. The scan bounded the depth.
 */
function hasConstructorPrototype (value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false
  if (Array.isArray(value)) return value.some(hasConstructorPrototype)
  const object = value as Record<string, unknown>
  const ctor = Object.hasOwn(object, 'constructor') ? object.constructor : undefined
  if (ctor !== null && typeof ctor === 'object' && Object.hasOwn(ctor, 'prototype')) return true
  for (const key in object) if (hasConstructorPrototype(object[key])) return true
  return false
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

/**
 * The envelope's `key`: undefined when absent, the string when valid; anything else
 * (not a string, empty, longer than 128 characters) is BAD_REQUEST.
 */
export function checkIdempotencyKey (value: unknown): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_KEY_LENGTH) {
    throw wireErrors.badRequest(`key must be a string of 1 to ${MAX_KEY_LENGTH} characters`)
  }
  return value
}
