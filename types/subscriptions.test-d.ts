// Type tests of server-side subscriptions, latest-value topics, tags and filters, and
// count presence (issue 26), on the server and the client.
import Fastify from 'fastify'
import { Type } from '@sinclair/typebox'
import { WebSocket } from 'ws'
import realtime, { type StreamPosition } from '../lib/index.js'
import { createClient } from '../lib/client/index.js'

function expectType<T> (_value: T): void {}

const app = Fastify()
await app.register(realtime, { filters: { maxSize: 32, maxDepth: 3, maxPerTopic: 50 } })
// @ts-expect-error: filter limits are numbers
await app.register(realtime, { filters: { maxSize: 'many' } })

app.realtime.topic('tickets', {
  message: Type.Object({ queue: Type.String(), priority: Type.Integer() }),
  latest: true,
  presence: { mode: 'count', countInterval: 500 },
  // `from` gets the message as its schema types it.
  tags: { schema: Type.Object({ queue: Type.String() }), from: (m) => ({ queue: m.queue }) }
})
app.realtime.topic('bad', {
  message: Type.Object({ n: Type.Integer() }),
  // @ts-expect-error: the message has no `queue`
  tags: { schema: Type.Object({ queue: Type.String() }), from: (m) => ({ queue: m.queue }) }
})
// @ts-expect-error: presence mode is 'members' or 'count'
app.realtime.topic('worse', { message: Type.Object({}), presence: { mode: 'some' } })

expectType<Promise<StreamPosition | null>>(app.realtime.subscribe('id', 'tickets'))
await app.realtime.subscribe('id', 'tickets', { filter: { or: [{ tag: 'queue', eq: 'a' }, { tag: 'queue', in: ['b', 'c'] }] } })
// @ts-expect-error: a filter is eq, in, and or or
await app.realtime.subscribe('id', 'tickets', { filter: { tag: 'queue', like: 'a%' } })
await app.realtime.publish('tickets', { queue: 'a', priority: 1 }, { tags: { queue: 'a' } })

const client = createClient({ url: 'ws://localhost/ws', WebSocket })
client.on('subscribed', (event) => {
  expectType<string>(event.topic)
  expectType<number>(event.offset)
  client.subscribe(event.topic, () => {}, { filter: { and: [{ tag: 'queue', eq: 'a' }] } })
})
client.on('presence', (event) => expectType<number>(event.count))
