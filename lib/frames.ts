// Builds the server's frames as strings. Data parts arrive already serialised (by a
// schema's serializer), so a frame is a concatenation, never a second stringify.
import type { RealtimeError } from './errors.js'

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

export function pongFrame (id: MessageId): string {
  return `{"type":"pong"${idPart(id)}}`
}

export function messageFrame (topic: string, offset: number, epoch: string, data: string): string {
  return `{"type":"message","topic":${JSON.stringify(topic)},"offset":${offset},"epoch":${JSON.stringify(epoch)},"data":${data}}`
}

/** A publication outside the topic's stream: no offset or epoch, never recovered. */
export function ephemeralFrame (topic: string, data: string): string {
  return `{"type":"message","topic":${JSON.stringify(topic)},"ephemeral":true,"data":${data}}`
}

export function unsubscribedFrame (topic: string, code: number, reason: string): string {
  return `{"type":"unsubscribed","topic":${JSON.stringify(topic)},"code":${code},"reason":${JSON.stringify(reason)}}`
}

export function eventFrame (name: string, data: string): string {
  return `{"type":${JSON.stringify(name)},"data":${data}}`
}
