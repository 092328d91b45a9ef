// Frames built once and written straight to a ws connection's net.Socket
// (lib/wire/ws-frame.ts), and payloads deflated once (lib/wire/compress-once.ts). Every check goes
// through a real ws server and a real ws client, which must read exactly the
// messages sent, in the order sent, whatever route each one took.
import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { WebSocket, WebSocketServer, type PerMessageDeflateOptions } from 'ws'
import { frameOf, payloadOf, senderIdle, senderLooksFamiliar, textFrame, writeFrame } from '../../lib/wire/ws-frame.js'
import { SharedFrame, frameRoute, sendShared } from '../../lib/wire/compress-once.js'
import type { CompressionOptions } from '../../lib/wire/compression-options.js'
import { until } from '../fixtures/helpers.js'

interface Pair { server: WebSocket, client: WebSocket, received: string[] }

/** A ws server and one connected client; the server side's socket is returned to drive. */
async function pair (t: any, options: { serverDeflate?: PerMessageDeflateOptions | false, clientDeflate?: PerMessageDeflateOptions | boolean } = {}): Promise<Pair> {
  const http = createServer()
  const wss = new WebSocketServer({ server: http, perMessageDeflate: options.serverDeflate ?? false })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  const accepted = new Promise<WebSocket>((resolve) => wss.once('connection', resolve))
  const client = new WebSocket(`ws://127.0.0.1:${(http.address() as AddressInfo).port}`, { perMessageDeflate: options.clientDeflate ?? false })
  const received: string[] = []
  client.on('message', (data: Buffer, isBinary) => { received.push(isBinary ? `binary:${data.length}` : data.toString()) })
  t.teardown(async () => {
    client.terminate()
    for (const socket of wss.clients) socket.terminate()
    await new Promise((resolve) => wss.close(resolve))
    await new Promise((resolve) => http.close(resolve))
  })
  const [server] = await Promise.all([accepted, new Promise((resolve) => client.once('open', resolve))])
  return { server, client, received }
}

t.test('a frame built once carries any length: 7-, 16- and 64-bit length fields', async (t) => {
  const { server, received } = await pair(t)
  t.ok(senderLooksFamiliar(server), 'the installed ws exposes the Sender state the safety check reads')
  const texts = [0, 1, 125, 126, 127, 65535, 65536, 70_000].map((n) => 'é'.repeat(Math.floor(n / 2)) + 'a'.repeat(n % 2))
  for (const text of texts) {
    const frame = textFrame(text)
    t.equal(payloadOf(frame).toString(), text, `payloadOf gives back ${Buffer.byteLength(text)} bytes`)
    t.equal(writeFrame(server, frame, true), 'direct')
  }
  t.equal(frameOf(Buffer.from([1, 2, 3]), { opcode: 2 })[0], 0x82, 'FIN and the binary opcode')
  t.equal(writeFrame(server, frameOf(Buffer.alloc(300), { opcode: 2 }), true), 'direct')
  await until(() => received.length === texts.length + 1)
  t.same(received, [...texts, 'binary:300'])
})

t.test('direct writes and ws.send() keep one order', async (t) => {
  const { server, received } = await pair(t)
  const expected: string[] = []
  for (let i = 0; i < 300; i++) {
    const text = `m${i}`
    expected.push(text)
    if (i % 3 === 0) server.send(text)
    else t.equal(writeFrame(server, textFrame(text), true), 'direct')
  }
  await until(() => received.length === expected.length)
  t.same(received, expected)
})

t.test('a busy Sender (compressing) makes the frame wait its turn through ws.send()', async (t) => {
  // Context takeover and threshold 0: ws compresses every send asynchronously.
  const { server, received } = await pair(t, { serverDeflate: { threshold: 0 }, clientDeflate: true })
  server.send('first, compressed by ws'.repeat(50))
  t.notOk(senderIdle(server), 'ws is compressing the first message')
  t.equal(writeFrame(server, textFrame('second'), false), 'ws', 'not direct: it would overtake the first')
  t.equal(writeFrame(server, textFrame('third'), true), 'ws', 'asked for direct, still queued behind ws')
  await until(() => received.length === 3)
  t.same(received, ['first, compressed by ws'.repeat(50), 'second', 'third'])
  t.ok(senderIdle(server), 'idle again once ws has written everything')
  t.equal(writeFrame(server, textFrame('fourth'), true), 'direct')
  await until(() => received.length === 4)
  t.equal(received[3], 'fourth')
})

t.test('bytes written directly count in bufferedAmount, so a send-queue limit sees them', async (t) => {
  const { server, client } = await pair(t)
  client.pause() // the peer stops reading: the kernel buffers fill, then the net.Socket's queue
  const frame = textFrame('x'.repeat(64 * 1024))
  for (let i = 0; i < 2000 && server.bufferedAmount === 0; i++) writeFrame(server, frame, true)
  t.ok(server.bufferedAmount > 0, 'the socket queues once the peer stops reading')
  const before = server.bufferedAmount
  t.equal(writeFrame(server, frame, true), 'direct')
  t.equal(server.bufferedAmount, before + frame.length, 'a queued direct write adds its whole frame')
  server.send('y'.repeat(1000))
  t.ok(server.bufferedAmount > before + frame.length + 1000, 'and ws.send() adds to the same count')
})

t.test('nothing is written to a socket that is not open', async (t) => {
  const { server, client } = await pair(t)
  const closed = new Promise((resolve) => client.once('close', resolve))
  server.close(1000)
  t.equal(writeFrame(server, textFrame('late'), true), 'closed')
  await closed
})

const defaults: CompressionOptions = { threshold: 1024, level: -1, memLevel: 8 }
/** What the plugin's connection does: the route fixed at open, then the shared frame. */
const send = (ws: WebSocket, frame: SharedFrame): string => sendShared(ws, frame, frameRoute(ws))

const noTakeover: PerMessageDeflateOptions = { serverNoContextTakeover: true, clientNoContextTakeover: true, threshold: 0 }

t.test('compress once: one deflated frame serves every socket that negotiated no context takeover', async (t) => {
  const a = await pair(t, { serverDeflate: noTakeover, clientDeflate: true })
  const b = await pair(t, { serverDeflate: noTakeover, clientDeflate: { serverMaxWindowBits: 10 } })
  const plain = await pair(t, { serverDeflate: noTakeover, clientDeflate: false })
  const text = JSON.stringify({ type: 'message', topic: 'ticker', data: Array.from({ length: 60 }, (_, i) => ({ symbol: `S${i % 7}`, price: 100 + i })) })
  const publication = new SharedFrame(text, defaults)
  t.equal(send(a.server, publication), 'direct-deflated')
  t.equal(send(b.server, publication), 'direct-deflated')
  t.equal(send(plain.server, publication), 'direct', 'no extension: the plain frame')
  const w15 = publication.deflated(15) as Buffer
  const w10 = publication.deflated(10) as Buffer
  t.equal(w15[0], 0xc1, 'FIN, RSV1 and the text opcode')
  t.ok(w15.length < publication.plain.length / 2, `compressed to ${w15.length} of ${publication.plain.length} bytes`)
  t.equal(publication.deflated(15), w15, 'made once per window size, then reused')
  t.not(w10, w15, 'a peer that asked for a 1 KiB window gets a frame compressed for it')
  for (const p of [a, b, plain]) await until(() => p.received.length === 1)
  t.same([a.received, b.received, plain.received], [[text], [text], [text]])
})

t.test('compress once mixes with ws\'s own compressed sends in one order', async (t) => {
  const { server, received } = await pair(t, { serverDeflate: noTakeover, clientDeflate: true })
  const expected: string[] = []
  const routes = new Set<string>()
  for (let i = 0; i < 200; i++) {
    const text = JSON.stringify({ n: i, body: `payload ${i % 5} `.repeat(40 + (i % 13)) })
    expected.push(text)
    if (i % 4 === 0) server.send(text) // ws compresses this one itself, asynchronously
    else routes.add(send(server, new SharedFrame(text, { threshold: 0, level: 1, memLevel: 8 })))
    // Now and then let ws finish compressing, so later publications find its Sender idle.
    if (i % 8 === 5) await until(() => senderIdle(server))
  }
  await until(() => received.length === expected.length)
  t.same(received, expected, 'every message decoded, in the order sent')
  t.ok(routes.has('direct-deflated'), 'some went as the shared compressed frame')
  t.ok(routes.has('ws'), 'some waited behind ws\'s compression, through ws.send()')
})

t.test('with context takeover negotiated, ws compresses for the socket; small or incompressible payloads go plain', async (t) => {
  const takeover = await pair(t, { serverDeflate: { threshold: 0 }, clientDeflate: true })
  const text = 'context '.repeat(200)
  t.equal(send(takeover.server, new SharedFrame(text, defaults)), 'ws')
  await until(() => takeover.received.length === 1)
  t.same(takeover.received, [text])

  const { server, received } = await pair(t, { serverDeflate: noTakeover, clientDeflate: true })
  t.equal(send(server, new SharedFrame('short', defaults)), 'direct', 'under the 1024-byte threshold')
  const noise = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7919 + (i >> 3) * 104729) % 94 + 33)).toString('latin1')
  const publication = new SharedFrame(noise, { threshold: 0, level: 1, memLevel: 8 })
  const route = send(server, publication)
  t.equal(publication.deflated(15) === null ? 'direct' : 'direct-deflated', route, 'plain only when deflate does not shrink it')
  await until(() => received.length === 2)
  t.same(received, ['short', noise])
})

t.test('a frame made without compression goes through ws to a socket that negotiated it, so ws compresses as configured', async (t) => {
  const { server, received } = await pair(t, { serverDeflate: noTakeover, clientDeflate: true })
  const text = 'compressed by ws '.repeat(100)
  const frame = new SharedFrame(text)
  t.equal(frame.deflated(15), undefined, 'no compressed form')
  t.equal(send(server, frame), 'ws')
  await until(() => received.length === 1)
  t.same(received, [text])
})
