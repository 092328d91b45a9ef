// The MessagePack subprotocol (realtime.v1.msgpack): negotiated per connection, the same
// envelope and frames as JSON, and hostile frames refused before they are decoded.
import t from 'tap'
import { Type } from '@sinclair/typebox'
import { pack } from 'msgpackr'
import { build, connect, watchCrashes } from '../fixtures/helpers.js'
import { scanMessagePack } from '../../lib/wire/msgpack.js'
import { SharedFrame } from '../../lib/wire/compress-once.js'

const Quote = Type.Object({ symbol: Type.String(), price: Type.Number(), size: Type.Integer() })

async function app (t: Parameters<typeof build>[0], options: Parameters<typeof build>[1] = {}) {
  return await build(t, { msgpack: true, ...options }, (app) => {
    app.realtime.topic('ticker/*symbol', { message: Quote, clientPublish: true })
    app.realtime.route({
      type: 'echo',
      schema: { data: Type.Object({ n: Type.Integer() }), reply: Type.Object({ n: Type.Integer() }) },
      handler: async (data) => ({ n: data.n, secret: 'not in the schema' } as { n: number })
    })
  })
}

t.test('the server selects realtime.v1.msgpack when offered, in the client\'s order', async (t) => {
  const { url } = await app(t)
  const packed = await connect(t, url, { protocols: ['realtime.v1.msgpack', 'realtime.v1'] })
  t.equal(packed.ws.protocol, 'realtime.v1.msgpack')
  const json = await connect(t, url, { protocols: ['realtime.v1', 'realtime.v1.msgpack'] })
  t.equal(json.ws.protocol, 'realtime.v1')
  const only = await connect(t, url, { protocols: 'realtime.v1.msgpack' })
  t.equal(only.ws.protocol, 'realtime.v1.msgpack')
})

t.test('msgpack: false refuses a client that offers only realtime.v1.msgpack with HTTP 400', async (t) => {
  const { url } = await app(t, { msgpack: false })
  await t.rejects(connect(t, url, { protocols: 'realtime.v1.msgpack' }), /400/)
  const json = await connect(t, url, { protocols: ['realtime.v1.msgpack', 'realtime.v1'] })
  t.equal(json.ws.protocol, 'realtime.v1')
})

t.test('a JSON client and a MessagePack client on one topic both get every publication, serialised by the schema', async (t) => {
  const { app: server, url } = await app(t)
  const json = await connect(t, url)
  const packed = await connect(t, url, { protocols: 'realtime.v1.msgpack' })
  for (const client of [json, packed]) t.equal((await client.request('subscribe', { topic: 'ticker/BTC/USDT' })).type, 'reply')
  for (let i = 1; i <= 3; i++) await server.realtime.publish('ticker/BTC/USDT', { symbol: 'BTC/USDT', price: 100.5 + i, size: i, extra: 'dropped' } as never)
  for (const client of [json, packed]) {
    for (let i = 1; i <= 3; i++) {
      const message = await client.nextOfType('message')
      t.same(message, { type: 'message', topic: 'ticker/BTC/USDT', offset: i, epoch: message.epoch, data: { symbol: 'BTC/USDT', price: 100.5 + i, size: i } }, `${client.msgpack ? 'msgpack' : 'json'} ${i}`)
    }
  }
  // Replies are serialised by their schema too, then packed.
  t.same((await packed.request('echo', { n: 7 })).data, { n: 7 })
  // A client publication in MessagePack reaches the JSON client.
  t.equal((await packed.request('publish', { topic: 'ticker/BTC/USDT', data: { symbol: 'BTC/USDT', price: 1, size: 1 } })).type, 'reply')
  t.same((await json.nextOfType('message')).data, { symbol: 'BTC/USDT', price: 1, size: 1 })
  // Outbound data is still checked, never coerced, in either encoding.
  await t.rejects(server.realtime.publish('ticker/BTC/USDT', { symbol: 'BTC/USDT', price: 1, size: 1.5 }), { code: 'FST_REALTIME_INVALID_DATA' })
})

t.test('a shared frame is packed once, on first need, and compressed once per encoding', async (t) => {
  const text = JSON.stringify({ type: 'message', topic: 't', offset: 1, epoch: 'e', data: { text: 'x'.repeat(2000) } })
  const frame = new SharedFrame(text, { threshold: 0, level: 1, memLevel: 8 })
  const packed = frame.frame(true)
  t.equal(frame.frame(true), packed, 'the same Buffer for every MessagePack socket')
  t.equal(packed[0] & 0x0f, 2, 'a binary frame')
  t.equal(frame.frame(false), frame.plain, 'the JSON one is the text frame')
  const deflated = frame.deflated(15, true) as Buffer
  t.equal(frame.deflated(15, true), deflated)
  t.equal(deflated[0] & 0x4f, 0x42, 'compressed binary: RSV1 and the binary opcode')
  t.not(frame.deflated(15, false), deflated)
})

t.test('malformed, hostile or text frames on realtime.v1.msgpack are BAD_REQUEST, and the connection stays', async (t) => {
  const crashes = watchCrashes(t)
  const { url } = await app(t, { maxDepth: 8 })
  const client = await connect(t, url, { protocols: 'realtime.v1.msgpack' })
  const deep = Buffer.concat([Buffer.from([0x81, 0xa4, ...Buffer.from('data')]), Buffer.alloc(60_000, 0x91), Buffer.from([0xc0])])
  const cases: Array<[string, Buffer | string, RegExp]> = [
    ['not MessagePack (truncated)', Buffer.from([0x82, 0xa4, 0x74]), /not valid MessagePack/],
    ['text on a MessagePack connection', JSON.stringify({ type: 'ping', id: 1 }), /Text frames are not accepted/],
    ['not an object', pack([1, 2]), /must be a JSON object/],
    ['nested 60,000 deep', deep, /nest at most 8/],
    ['an array announcing 2^32 - 1 elements', Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0]), /not valid MessagePack/],
    ['a bin value', Buffer.concat([Buffer.from([0x81, 0xa4, ...Buffer.from('type'), 0xc4, 0x01, 0x00])]), /JSON values only/],
    ['an ext value (timestamp)', Buffer.from([0x81, 0xa4, ...Buffer.from('type'), 0xd6, 0xff, 0, 0, 0, 0]), /JSON values only/],
    ['a number key', Buffer.from([0x81, 0x01, 0xc0]), /keys must be strings/],
    ['a __proto__ key', Buffer.concat([Buffer.from([0x82, 0xa4, ...Buffer.from('type'), 0xa4, ...Buffer.from('ping'), 0xa9]), Buffer.from('__proto__'), Buffer.from([0x80])]), /prototype/],
    ['a constructor.prototype', pack({ type: 'ping', data: { constructor: { prototype: {} } } }), /prototype/],
    ['two values', Buffer.concat([pack({ type: 'ping' }), pack({ type: 'ping' })]), /one MessagePack value/],
    ['NaN', pack({ type: 'ping', data: Number.NaN }), /finite/]
  ]
  for (const [name, frame, message] of cases) {
    client.send(frame)
    const error = await client.nextOfType('error')
    t.equal(error.error?.code, 'BAD_REQUEST', name)
    t.match(error.error?.message, message, name)
  }
  client.send({ type: 'ping', id: 99 })
  t.equal((await client.nextOfType('pong')).id, 99, 'still open')
  t.equal(crashes.uncaught, 0)
})

t.test('scanMessagePack accepts what a packer writes and bounds what it reads', async (t) => {
  const values = [{ type: 'x', id: 1, data: { a: [1, 2.5, -3, 'é', null, true, false, { b: 'c'.repeat(300) }], big: 2 ** 40, neg: -(2 ** 40) } }, { type: 'y', data: Array.from({ length: 70_000 }, (_, i) => i) }]
  for (const value of values) t.equal(scanMessagePack(pack(value), 32), null)
  t.equal(scanMessagePack(pack({ a: { b: { c: 1 } } }), 3), null, 'three levels in three')
  t.match(scanMessagePack(pack({ a: { b: { c: [] } } }), 3), /nest at most 3/)
  t.match(scanMessagePack(Buffer.from([]), 3), /not valid/)
})
