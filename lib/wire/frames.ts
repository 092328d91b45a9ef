// Builds every frame the server sends, as strings. Data parts arrive already
// serialised (by a schema's serializer), so a frame is a concatenation, never a second
// stringify. No other module writes frame JSON by hand: the wire format lives here.
import { errorCodes, type RealtimeError } from '../protocol/errors.js'

export type MessageId = string | number | undefined

function idPart (id: MessageId): string {
  return id === undefined ? '' : `,"id":${JSON.stringify(id)}`
}

export function replyFrame (id: MessageId, data: string | undefined): string {
  return data === undefined
    ? `{"type":"reply"${idPart(id)}}`
    : `{"type":"reply"${idPart(id)},"data":${data}}`
}

/** `details` is the serialised details (by the route's error schema), or undefined. */
export function errorFrame (id: MessageId, error: RealtimeError, details?: string): string {
  let body = `"code":${JSON.stringify(error.code)},"message":${JSON.stringify(error.message)}`
  if (details !== undefined) body += `,"details":${details}`
  if (error.temporary) body += ',"temporary":true'
  if (error.retryAfterMs !== undefined) body += `,"retryAfterMs":${error.retryAfterMs}`
  return `{"type":"error"${idPart(id)},"error":{${body}}}`
}

/**
 * Puts a request's id into a reply or error frame built without one: an idempotent
 * route's answer is remembered id-less, and each repeat carries its own id.
 */
export function withId (answer: string, id: MessageId): string {
  // Both heads, `{"type":"reply"` and `{"type":"error"`, are 15 characters long.
  const head = 15
  if (!answer.startsWith('{"type":"reply"') && !answer.startsWith('{"type":"error"')) {
    throw new errorCodes.FST_REALTIME_INVALID_DATA('an idempotent answer', 'it must be a reply or error frame built without an id')
  }
  return id === undefined ? answer : `${answer.slice(0, head)}${idPart(id)}${answer.slice(head)}`
}

export function pongFrame (id: MessageId): string {
  return `{"type":"pong"${idPart(id)}}`
}

/** The first frame of an accepted connection. */
export function welcomeFrame (connectionId: string, heartbeat: { interval: number, timeout: number }): string {
  return `{"type":"welcome","data":{"connectionId":${JSON.stringify(connectionId)},"heartbeat":{"interval":${heartbeat.interval},"timeout":${heartbeat.timeout}}}}`
}

export function messageFrame (topic: string, offset: number, epoch: string, data: string): string {
  return `{"type":"message","topic":${JSON.stringify(topic)},"offset":${offset},"epoch":${JSON.stringify(epoch)},"data":${data}}`
}

/**
 * A publication to a subscriber that asked for deltas: `data` is a string, the JSON text of
 * the publication's data (`delta: false`), or a Fossil delta (`delta: true`, one character
 * per byte) that turns the JSON text of the publication at offset - 1 into this one's.
 */
export function deltaMessageFrame (topic: string, offset: number, epoch: string, delta: boolean, text: string): string {
  return `{"type":"message","topic":${JSON.stringify(topic)},"offset":${offset},"epoch":${JSON.stringify(epoch)},"delta":${delta},"data":${JSON.stringify(text)}}`
}

/**
 * A publication outside the topic's stream: no offset or epoch, never recovered.
 * `local`: a stream publication the broker could not take (Redis away, `localWhileDown`),
 * delivered on this node only; `ephemeral` too, so no client takes it as a position.
 */
export function ephemeralFrame (topic: string, data: string, local = false): string {
  return `{"type":"message","topic":${JSON.stringify(topic)},"ephemeral":true${local ? ',"local":true' : ''},"data":${data}}`
}

export function unsubscribedFrame (topic: string, code: number, reason: string): string {
  return `{"type":"unsubscribed","topic":${JSON.stringify(topic)},"code":${code},"reason":${JSON.stringify(reason)}}`
}

/**
 * A subscription the server made (`app.realtime.subscribe`): the client did not ask, so
 * it is told the topic and the position delivery goes on from, as a `subscribe` reply would.
 */
export function subscribedFrame (topic: string, offset: number, epoch: string): string {
  return `{"type":"subscribed","data":{"topic":${JSON.stringify(topic)},"offset":${offset},"epoch":${JSON.stringify(epoch)}}}`
}

/** How many members a topic with count presence has (debounced, instead of each join and leave). */
export function presenceCountFrame (topic: string, count: number): string {
  return `{"type":"presence","topic":${JSON.stringify(topic)},"count":${count}}`
}

export function eventFrame (name: string, data: string): string {
  return `{"type":${JSON.stringify(name)},"data":${data}}`
}

/** `join` or `leave`; `member` is the member's serialised form (see memberData). */
export function presenceFrame (kind: 'join' | 'leave', topic: string, member: string): string {
  return `{"type":"${kind}","topic":${JSON.stringify(topic)},"member":${member}}`
}

/**
 * A presence member as clients see it, serialised once at join and kept by the broker:
 * `user` and `meta` are already serialised by their schemas.
 */
export function memberData (connectionId: string, user: string | undefined, meta: string | undefined): string {
  let member = `{"connectionId":${JSON.stringify(connectionId)}`
  if (user !== undefined) member += `,"user":${user}`
  if (meta !== undefined) member += `,"meta":${meta}`
  return member + '}'
}

/** The data of the `presence` reply: members as the broker keeps them. */
export function membersData (members: ReadonlyArray<{ data: string }>): string {
  return `{"members":[${members.map((m) => m.data).join(',')}]}`
}

/** The data of the `auth` reply. */
export function authReplyData (user: string): string {
  return `{"user":${user}}`
}
