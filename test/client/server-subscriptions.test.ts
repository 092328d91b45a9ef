// The client and the subscriptions the server makes for it: surfaced as a `subscribed`
// event, listened to with subscribe() (which sends nothing), restored after a
// reconnection by the server's onConnect and recovered from the client's position.
import t from 'tap'
import Fastify from 'fastify'
import { Type } from '@sinclair/typebox'
import { WebSocket } from 'ws'
import realtime from '../../lib/index.js'
import { createClient } from '../../lib/client/index.js'
import { until } from '../fixtures/helpers.js'

t.test('a server subscription reaches the client, and survives a reconnection without a gap', async (t) => {
  const app = Fastify()
  await app.register(realtime)
  app.realtime.topic('inbox/:user', { message: Type.Object({ n: Type.Integer() }), authorize: () => false })
  app.realtime.addHook('onConnect', async (connection) => {
    await app.realtime.subscribe(connection.id, 'inbox/ann')
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const url = `ws://127.0.0.1:${(app.server.address() as { port: number }).port}/ws`
  const client = createClient({ url, WebSocket, backoff: { initialDelay: 20, maxDelay: 50 } })
  t.teardown(() => client.close())
  const told: Array<{ topic: string, offset: number }> = []
  const received: number[] = []
  client.on('subscribed', (event) => {
    told.push({ topic: event.topic, offset: event.offset })
    // Listening to a topic the server holds sends nothing (authorize would refuse it).
    if (told.length === 1) client.subscribe(event.topic, (message) => { received.push((message as { n: number }).n) })
  })
  await until(() => client.state === 'open' && told.length === 1)
  t.same(told, [{ topic: 'inbox/ann', offset: 0 }])
  for (let n = 1; n <= 3; n++) await app.realtime.publish('inbox/ann', { n })
  await until(() => received.length === 3)
  const [connection] = [...app.realtime.connections]
  app.realtime.disconnect(connection.id, 4011, 'reconnect, please')
  // Published while the client is away: recovered after onConnect restores the subscription.
  for (let n = 4; n <= 6; n++) await app.realtime.publish('inbox/ann', { n })
  await until(() => told.length === 2 && client.state === 'open', 10_000)
  await app.realtime.publish('inbox/ann', { n: 7 })
  await until(() => received.length >= 7, 10_000)
  t.same(received, [1, 2, 3, 4, 5, 6, 7], 'each once, in order, nothing lost across the reconnection')
  t.match(client.subscriptions, [{ topic: 'inbox/ann', active: true, offset: 7 }])
})

t.test('a filter given to subscribe() is sent with every (re)subscribe; counts reach the `presence` event', async (t) => {
  const app = Fastify()
  await app.register(realtime)
  app.realtime.topic('tickets', {
    message: Type.Object({ n: Type.Integer() }),
    tags: { schema: Type.Object({ odd: Type.Integer() }), from: (m) => ({ odd: m.n % 2 }) },
    presence: { mode: 'count', countInterval: 20 }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const url = `ws://127.0.0.1:${(app.server.address() as { port: number }).port}/ws`
  const client = createClient({ url, WebSocket, backoff: { initialDelay: 20, maxDelay: 50 } })
  t.teardown(() => client.close())
  const counts: number[] = []
  client.on('presence', (event) => { counts.push(event.count) })
  const received: number[] = []
  const sub = client.subscribe('tickets', (message) => { received.push((message as { n: number }).n) }, { filter: { tag: 'odd', eq: 1 } })
  await sub.ready
  for (let n = 1; n <= 4; n++) await app.realtime.publish('tickets', { n })
  await until(() => received.length === 2)
  const [connection] = [...app.realtime.connections]
  app.realtime.disconnect(connection.id, 4011, 'reconnect, please')
  for (let n = 5; n <= 8; n++) await app.realtime.publish('tickets', { n })
  await until(() => received.length === 4, 10_000)
  t.same(received, [1, 3, 5, 7], 'only the odd ones, recovered across the reconnection with the same filter')
  await until(() => counts.at(-1) === 1, 10_000)
})
