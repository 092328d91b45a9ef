// What travels on a topic's channel (written by the scripts in redis-scripts.ts):
//   m\n<offset>\n<epoch>\n<origin>\n<except>\n<data>   a publication in the stream
//   e\n<epoch>\n<origin>\n<except>\n<data>             an ephemeral one (offset 0)
//   j\n<connection id>\n<member data>                  a presence join
//   l\n<connection id>\n<member data>                  a presence leave
import type { PresenceEvent, Publication } from './types.js'

export type ChannelMessage =
  | { kind: 'publication', publication: Publication, origin: string }
  | { kind: 'presence', event: PresenceEvent }

export function decodeMessage (topic: string, message: string): ChannelMessage {
  const kind = message[0]
  if (kind === 'j' || kind === 'l') {
    const nl = message.indexOf('\n', 2)
    return {
      kind: 'presence',
      event: { topic, kind: kind === 'j' ? 'join' : 'leave', member: { connectionId: message.slice(2, nl), data: message.slice(nl + 1) } }
    }
  }
  let at = 2
  let offset = 0
  if (kind === 'm') {
    const nl = message.indexOf('\n', at)
    offset = Number(message.slice(at, nl))
    at = nl + 1
  }
  const a = message.indexOf('\n', at)
  const b = message.indexOf('\n', a + 1)
  const c = message.indexOf('\n', b + 1)
  return {
    kind: 'publication',
    publication: publicationOf(topic, offset, message.slice(at, a), message.slice(c + 1), message.slice(b + 1, c)),
    origin: message.slice(a + 1, b)
  }
}

export function publicationOf (topic: string, offset: number, epoch: string, data: string, except: string): Publication {
  const publication: Publication = { topic, offset, epoch, data }
  if (except !== '') publication.except = JSON.parse(except) as string[]
  return publication
}
