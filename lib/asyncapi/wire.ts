// The frames of the wire protocol (docs/protocol.md, version 1) as schemas, for the
// AsyncAPI document: the envelope around an application's own schemas, and the
// built-in messages. Codes come from lib/protocol/constants.ts, so the document and the server
// cannot disagree on them.
import type { TSchema } from '../protocol/schema.js'
import { Type } from '../wire/json-schema.js'
import { ErrorCode, MAX_ID_LENGTH, MAX_KEY_LENGTH, UnsubscribeCode } from '../protocol/constants.js'

/**
 * An object schema written plainly: TypeBox's `Optional` copies the schema it wraps,
 * and a schema must stay the very object it was (the app's, or one of ours used in
 * many frames) to be recognised as shared and written once.
 */
function obj (required: Record<string, TSchema>, optional: Record<string, TSchema> = {}, extra: Record<string, unknown> = {}): TSchema {
  return { type: 'object', properties: { ...required, ...optional }, required: Object.keys(required), ...extra } as unknown as TSchema
}

export const MessageId = Type.Union([Type.String({ maxLength: MAX_ID_LENGTH }), Type.Integer()], {
  title: 'MessageId',
  description: 'Chosen by the client. With an id the client gets exactly one answer (`reply` or `error`) carrying it; without one the message is fire-and-forget.',
  examples: [7]
})

const IdempotencyKey = Type.String({
  maxLength: MAX_KEY_LENGTH,
  description: 'Idempotency key: the first answer for a (user, key) pair is remembered and sent again for a repeat, and the handler runs once.'
})

const Topic = Type.String({ minLength: 1, title: 'TopicName', description: 'A topic name', examples: ['room/general'] })

const ProtocolCode = Type.Union(Object.values(ErrorCode).map((code) => Type.Literal(code)), {
  title: 'ProtocolErrorCode',
  description: 'Errors of the protocol itself (see the protocol\'s table of codes)'
})

const ErrorDetail = Type.Object({ path: Type.String(), message: Type.String() })

/** The `error` object of a protocol error. */
export const ProtocolError = obj({ code: ProtocolCode, message: Type.String() }, {
  details: Type.Union([Type.Array(ErrorDetail), Type.Unknown()], { description: 'VALIDATION_FAILED: JSON pointers into `data` with messages' }),
  temporary: Type.Boolean({ description: 'The same request may succeed later' }),
  retryAfterMs: Type.Integer({ minimum: 0 })
}, { title: 'ProtocolError' })

/** The `error` object of an application code declared by a route, with its details schema. */
export function appError (code: string, details: TSchema): TSchema {
  return obj({ code: Type.Literal(code), message: Type.String(), details })
}

/** A frame `{ type, id?, data }`, sent by the client. `data` absent: the route takes none. */
export function request (type: string, data: TSchema | undefined, idempotent = false): TSchema {
  return obj({ type: Type.Literal(type), ...(data === undefined ? {} : { data }) }, {
    id: MessageId,
    ...(idempotent ? { key: IdempotencyKey } : {})
  }, { additionalProperties: false })
}

/** `{ type: 'reply', id, data }`; `data` absent where the route declares no reply. */
export function reply (data: TSchema | undefined): TSchema {
  return obj({ type: Type.Literal('reply'), id: MessageId, ...(data === undefined ? {} : { data }) })
}

/** `{ type: 'error', id?, error }` with the given error objects. */
export function errorFrame (errors: TSchema[]): TSchema {
  return obj({ type: Type.Literal('error'), error: errors.length === 1 ? errors[0] : ({ anyOf: errors } as unknown as TSchema) }, { id: MessageId })
}

/** `{ type: <event>, data }`: a server event. */
export function event (name: string, data: TSchema): TSchema {
  return obj({ type: Type.Literal(name), data })
}

export function since (): TSchema {
  return Type.Object({
    offset: Type.Integer({ minimum: 0, description: 'Offset of the last publication the client saw' }),
    epoch: Type.String({ maxLength: 128, description: 'Epoch of that publication' })
  }, { description: 'Resume after this position: every later publication is replayed, or none (`recovered: false`)' })
}

export const SubscribeReply = obj({
  topic: Topic,
  offset: Type.Integer({ description: 'Offset of the latest publication' }),
  epoch: Type.String()
}, { recovered: Type.Boolean({ description: 'Whether the publications after `since` follow this reply' }) })

export const PublishReply = Type.Object({ offset: Type.Integer() })

export const Subscribed = obj({
  type: Type.Literal('subscribed'),
  data: obj({ topic: Topic, offset: Type.Integer({ description: 'Every publication after this offset follows' }), epoch: Type.String() })
}, {}, { description: 'The server subscribed the connection; a `subscribe` with `since` on the topic recovers it in place' })

export const PresenceCount = obj({ type: Type.Literal('presence'), topic: Topic, count: Type.Integer({ minimum: 0 }) }, {}, { description: 'The number of members, at most once per interval' })

/** A subscribe's filter over the topic's tags (docs/protocol.md, Filters). */
export function filter (tags: TSchema): TSchema {
  const names = Object.keys((tags as { properties?: Record<string, unknown> }).properties ?? {}).join(', ')
  return Type.Object({}, { additionalProperties: true, description: `Only the publications whose tags (${names}) match: {"tag","eq"}, {"tag","in":[…]}, {"and":[…]}, {"or":[…]}` })
}

/**
 * A presence member. Written as plain JSON Schema because TypeBox's `Optional` copies
 * the schema it wraps, and the user's schema must stay the very object the app gave,
 * so that it is recognised as shared.
 */
export function member (user: TSchema, meta: TSchema | undefined): TSchema {
  return obj({ connectionId: Type.String() }, { user, ...(meta === undefined ? {} : { meta }) })
}

/** A publication: `offset` and `epoch` are absent on ephemeral ones (`ephemeral: true`, and `local: true` for local-only ones). */
export function publication (data: TSchema): TSchema {
  return obj({ type: Type.Literal('message'), topic: Topic, data }, {
    offset: Type.Integer({ minimum: 1, description: 'Rises by exactly 1 per publication on the topic' }),
    epoch: Type.String({ description: 'Names the history stream; changes when continuity is lost' }),
    ephemeral: Type.Literal(true, { description: 'Outside the stream: never recovered' }),
    local: Type.Literal(true, { description: 'Published while the broker was unreachable (Redis broker with localWhileDown): delivered on one node only, in no history; always with ephemeral' })
  })
}

export function presenceEvent (type: 'join' | 'leave', memberSchema: TSchema): TSchema {
  return obj({ type: Type.Literal(type), topic: Topic, member: memberSchema })
}

export const Unsubscribed = obj({
  type: Type.Literal('unsubscribed'),
  topic: Topic,
  code: Type.Union(Object.values(UnsubscribeCode).map((code) => Type.Literal(code)), {
    description: '2000: unsubscribed by the server; 2500: resubscribe with `since`; 2501: permission expired'
  }),
  reason: Type.String()
})

export function welcome (heartbeat: { interval: number, timeout: number } | undefined): TSchema {
  return Type.Object({
    type: Type.Literal('welcome'),
    data: Type.Object({
      connectionId: Type.String(),
      heartbeat: Type.Object({
        interval: Type.Integer(heartbeat === undefined ? {} : { examples: [heartbeat.interval] }),
        timeout: Type.Integer(heartbeat === undefined ? {} : { examples: [heartbeat.timeout] })
      }, { description: 'Silence longer than interval + timeout means the connection is dead' })
    })
  })
}

export const Pong = obj({ type: Type.Literal('pong') }, { id: MessageId })
export const TopicData = obj({ topic: Topic })
export const AuthData = Type.Object({ token: Type.String() })
export { Topic }
