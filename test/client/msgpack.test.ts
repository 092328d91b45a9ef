// The client's `encoding: 'msgpack'`: it offers realtime.v1.msgpack, writes and reads
// binary MessagePack frames, and behaves as the JSON client does, reconnection included.
import t from 'tap'
import { Type } from '@sinclair/typebox'
import { WebSocket } from 'ws'
import { createClient, defineContract } from '../../lib/client/index.js'
import { build, until } from '../fixtures/helpers.js'

const contract = defineContract({
  routes: { echo: { data: Type.Object({ text: Type.String() }), reply: Type.Object({ text: Type.String() }) } },
  topics: { 'ticker/*symbol': { message: Type.Object({ symbol: Type.String(), price: Type.Number() }) } }
})

t.test('a MessagePack client subscribes, gets publications, requests, and recovers after a reconnection', async (t) => {
  const { app, url } = await build(t, { msgpack: true }, (app) => {
    app.realtime.topic('ticker/*symbol', { message: contract.topics['ticker/*symbol'].message })
    app.realtime.route({ type: 'echo', schema: contract.routes.echo, handler: async (data) => ({ text: data.text }) })
  })
  const client = createClient({ url, contract, WebSocket: WebSocket as never, encoding: 'msgpack' })
  t.teardown(() => client.close())
  const seen: Array<{ price: number, offset: number | undefined }> = []
  const sub = client.subscribe('ticker/BTC/USDT', (quote, meta) => { seen.push({ price: quote.price, offset: meta.offset }) })
  await sub.ready
  const server = app.realtime.connections.get(client.connectionId as string) as unknown as { socket: WebSocket }
  t.equal(server.socket.protocol, 'realtime.v1.msgpack', 'negotiated')
  t.same(await client.request('echo', { text: 'hé' }), { text: 'hé' })
  await app.realtime.publish('ticker/BTC/USDT', { symbol: 'BTC/USDT', price: 1.5 })
  await until(() => seen.length === 1)
  // A reconnection resubscribes with `since` and recovers what was published meanwhile.
  server.socket.terminate()
  await until(() => client.state === 'reconnecting')
  await app.realtime.publish('ticker/BTC/USDT', { symbol: 'BTC/USDT', price: 2.5 })
  await until(() => seen.length === 2, 10_000)
  t.same(seen, [{ price: 1.5, offset: 1 }, { price: 2.5, offset: 2 }])
})

t.test('encoding is checked', async (t) => {
  t.throws(() => createClient({ url: 'ws://127.0.0.1:1/ws', WebSocket: WebSocket as never, encoding: 'xml' as never, autoConnect: false }), /encoding must be/)
})
