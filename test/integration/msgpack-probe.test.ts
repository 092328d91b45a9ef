// A foreign client written only from docs/protocol.md ("MessagePack", "Delta compression"):
// a bare `ws` socket and @msgpack/msgpack (not the server's msgpackr), fossil-delta for the
// deltas. Nothing of the package's client or test helpers: it checks that the document is
// enough to speak the binary protocol.
import t from 'tap'
import Fastify from 'fastify'
import { Type } from '@sinclair/typebox'
import { WebSocket } from 'ws'
import { decode, encode } from '@msgpack/msgpack'
import fossil from 'fossil-delta'
import realtime from '../../lib/index.js'

t.test('a bare MessagePack client: welcome, a route, subscribe with deltas, publish, a bad frame', async (t) => {
  const app = Fastify()
  await app.register(realtime, { msgpack: true })
  app.realtime.topic('ticker/*symbol', { message: Type.Object({ bid: Type.Number(), ask: Type.Number(), name: Type.String() }), delta: true, clientPublish: true })
  app.realtime.route({ type: 'time', schema: { reply: Type.Object({ now: Type.Integer() }) }, handler: async () => ({ now: 1234 }) })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const port = (app.server.address() as { port: number }).port

  // "Offer realtime.v1.msgpack in Sec-WebSocket-Protocol."
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, ['realtime.v1.msgpack', 'realtime.v1'])
  t.teardown(() => ws.terminate())
  const inbox: any[] = []
  let wake: (() => void) | null = null
  ws.on('message', (raw, isBinary) => {
    t.ok(isBinary, 'every server frame is binary')
    inbox.push(decode(raw as Buffer))
    wake?.()
  })
  const next = async (match: (f: any) => boolean): Promise<any> => {
    for (;;) {
      const i = inbox.findIndex(match)
      if (i >= 0) return inbox.splice(i, 1)[0]
      await new Promise<void>((resolve) => { wake = resolve })
    }
  }
  await new Promise((resolve) => ws.once('open', resolve))
  t.equal(ws.protocol, 'realtime.v1.msgpack', 'the server selected MessagePack')
  const welcome = await next((f) => f.type === 'welcome')
  t.type(welcome.data.connectionId, 'string')

  ws.send(encode({ type: 'time', id: 1 }))
  t.same(await next((f) => f.id === 1), { type: 'reply', id: 1, data: { now: 1234 } })

  ws.send(encode({ type: 'subscribe', id: 2, data: { topic: 'ticker/BTC/USDT', delta: 'fossil' } }))
  const reply = await next((f) => f.id === 2)
  t.equal(reply.type, 'reply')
  for (let i = 0; i < 3; i++) ws.send(encode({ type: 'publish', id: 10 + i, data: { topic: 'ticker/BTC/USDT', data: { bid: 100 + i, ask: 101.5, name: 'Bitcoin / Tether' } } }))
  // "Keep the text (bytes) of the last publication of each delta subscription."
  let base: Buffer | null = null
  const quotes: unknown[] = []
  for (let offset = 1; offset <= 3; offset++) {
    const message = await next((f) => f.type === 'message' && f.offset === offset)
    t.equal(typeof message.data, 'string', 'data is a string on a delta subscription')
    const bytes: Buffer = message.delta === true
      ? Buffer.from(fossil.apply(base as Buffer, Buffer.from(message.data, 'latin1')))
      : Buffer.from(message.data)
    t.equal(message.delta, offset > 1, offset > 1 ? 'a delta' : 'whole first')
    base = bytes
    quotes.push(JSON.parse(bytes.toString()))
  }
  t.same(quotes, [0, 1, 2].map((i) => ({ bid: 100 + i, ask: 101.5, name: 'Bitcoin / Tether' })))

  // "A text frame on a realtime.v1.msgpack connection is answered BAD_REQUEST."
  ws.send(JSON.stringify({ type: 'time', id: 3 }))
  t.equal((await next((f) => f.type === 'error')).error.code, 'BAD_REQUEST')
  // "...when a map key is not a string."
  ws.send(encode(new Map<unknown, unknown>([['type', 'time'], [1, 2]])))
  t.equal((await next((f) => f.type === 'error')).error.code, 'BAD_REQUEST')
  ws.send(encode({ type: 'time', id: 4 }))
  t.equal((await next((f) => f.id === 4)).type, 'reply', 'the connection carries on')
})
