// The compression option: permessage-deflate without context takeover, each
// publication deflated once and that compressed frame written to every subscriber
// that negotiated the same window; the others get the plain frame. Real ws clients,
// with and without compression, must read every message intact and in order.
import t from 'tap'
import { Socket } from 'node:net'
import { Type } from '@sinclair/typebox'
import { WebSocket, type ClientOptions } from 'ws'
import { build, connect, TestClient, type Frame } from '../fixtures/helpers.js'

const Tick = Type.Object({ n: Type.Integer(), text: Type.String() })

/** A protocol client with the given permessage-deflate offer (ws clients offer it by default). */
async function client (t: any, url: string, perMessageDeflate: ClientOptions['perMessageDeflate']): Promise<TestClient> {
  const ws = new WebSocket(url, 'realtime.v1', { perMessageDeflate })
  const c = new TestClient(ws)
  t.teardown(() => ws.terminate())
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  await c.nextOfType('welcome')
  return c
}

/** ~2 KB of words and numbers: deflate shrinks it as it does real JSON. */
const words = (n: number): string => Array.from({ length: 120 }, (_, i) => `item${(i * 7 + n) % 13} price ${100 + (i % 17)}`).join(' ')

t.test('each publication is compressed once and every client, compressing or not, reads them all in order', async (t) => {
  const { app, url } = await build(t, { compression: true }, (app) => {
    app.realtime.topic('ticker', { message: Tick })
  })
  const deflating = await client(t, url, true)
  const sameWindow = await client(t, url, true)
  const smallWindow = await client(t, url, { serverMaxWindowBits: 10 })
  const plain = await client(t, url, false)
  const all = [deflating, sameWindow, smallWindow, plain]
  t.same(all.map((c) => c.ws.extensions), ['permessage-deflate', 'permessage-deflate', 'permessage-deflate', ''], 'negotiated by those that offered it')
  for (const c of all) t.equal((await c.request('subscribe', { topic: 'ticker' })).type, 'reply')

  // One large publication, watched on the wire: one compressed Buffer per window size.
  const write = Socket.prototype.write
  const written: Buffer[] = []
  Socket.prototype.write = function (this: Socket, chunk: any, ...rest: any[]) {
    if (Buffer.isBuffer(chunk)) written.push(chunk)
    return (write as any).call(this, chunk, ...rest)
  } as typeof write
  try {
    await app.realtime.publish('ticker', { n: 0, text: words(0) })
  } finally {
    Socket.prototype.write = write
  }
  const compressed = written.filter((b) => b[0] === 0xc1)
  t.equal(compressed.length, 3, 'three compressing clients, three compressed writes')
  t.equal(new Set(compressed).size, 2, 'one Buffer for the two with the default window, one for the 1 KiB window')
  t.equal(written.filter((b) => b[0] === 0x81).length, 1, 'the plain frame to the client that did not negotiate it')
  const plainLength = (written.find((b) => b[0] === 0x81) as Buffer).length
  t.ok(compressed[0].length < plainLength / 2, `compressed ${compressed[0].length} of ${plainLength} bytes`)

  // Then a stream of large and small publications, with requests answered in between.
  const expected: unknown[] = [{ n: 0, text: words(0) }]
  for (let n = 1; n <= 60; n++) {
    const data = { n, text: n % 3 === 0 ? `short ${n}` : words(n) }
    expected.push(data)
    await app.realtime.publish('ticker', data)
    if (n % 10 === 0) for (const c of all) c.send({ type: 'ping', id: `p${n}` })
  }
  for (const c of all) {
    const messages: Frame[] = []
    for (let i = 0; i < expected.length; i++) messages.push(await c.nextOfType('message'))
    t.same(messages.map((m) => m.data), expected, `intact and in order (${c.ws.extensions === '' ? 'plain' : 'compressed'})`)
    t.same(messages.map((m) => m.offset), expected.map((_, i) => i + 1))
    for (let n = 10; n <= 60; n += 10) t.equal((await c.next((f) => f.type === 'pong' && f.id === `p${n}`)).type, 'pong')
  }
})

t.test('compression is off by default: a client offering it does not get it', async (t) => {
  const { url } = await build(t)
  const c = await connect(t, url)
  t.equal(c.ws.extensions, '')
})

t.test('the compression option is checked at register', async (t) => {
  const { default: Fastify } = await import('fastify')
  const { default: realtime } = await import('../../lib/index.js')
  const attempts: Array<[object, RegExp]> = [
    [{ compression: { threshold: -1 } }, /compression/],
    [{ compression: { level: 10 } }, /compression/],
    [{ compression: { levle: 1 } }, /compression/],
    [{ compression: 'yes' }, /compression/],
    [{ compression: true, websocket: { perMessageDeflate: true } }, /websocket\.perMessageDeflate.*compression option sets it/]
  ]
  for (const [options, message] of attempts) {
    const app = Fastify()
    t.teardown(() => app.close())
    await t.rejects(async () => { await app.register(realtime, options as never).ready() }, { code: 'FST_REALTIME_INVALID_OPTION', message }, JSON.stringify(options))
  }
})

t.test('compression with settings: under the threshold a publication goes plain', async (t) => {
  const { app, url } = await build(t, { compression: { threshold: 10_000, level: 1 } }, (app) => {
    app.realtime.topic('ticker', { message: Tick })
  })
  const c = await client(t, url, true)
  t.equal(c.ws.extensions, 'permessage-deflate')
  await c.request('subscribe', { topic: 'ticker' })
  const write = Socket.prototype.write
  const firstBytes: number[] = []
  Socket.prototype.write = function (this: Socket, chunk: any, ...rest: any[]) {
    if (Buffer.isBuffer(chunk)) firstBytes.push(chunk[0])
    return (write as any).call(this, chunk, ...rest)
  } as typeof write
  try {
    await app.realtime.publish('ticker', { n: 1, text: words(1) })
  } finally {
    Socket.prototype.write = write
  }
  t.same(firstBytes, [0x81], 'one plain text frame')
  t.same((await c.nextOfType('message')).data, { n: 1, text: words(1) })
})
