// Malformed WebSocket frames written byte by byte over TCP (test/fixtures/raw-ws.ts).
// Each offender must get the exact close code the WebSocket layer (ws, lib/receiver.js)
// assigns to its fault, the process must live, and honest clients beside the offenders
// must lose nothing.
//
// What ws sends, read from node_modules/ws/lib/receiver.js and websocket-server.js:
//   1002  RSV bits without an extension, reserved opcodes, unmasked client frames,
//         fragmented or oversized (> 125 bytes) control frames, a 1-byte close payload,
//         an invalid close code, a continuation with nothing to continue, a new data
//         frame inside a fragmented message
//   1007  invalid UTF-8 in a text message or in a close reason
//   1008  more than `maxFragments` fragments in one message (ws server default 16384)
//   1009  a message over maxPayload (summed over its fragments), a 64-bit length > 2^53-1
//
// Environment:
//   FRAMES_FRAGMENTS  one-byte fragments in the fragment flood (default 200000)
//   FRAMES_BYSTANDERS honest clients running beside the offenders (default 10)
import t from 'tap'
import { Type } from '@sinclair/typebox'
import { build, connect, until, watchCrashes } from '../fixtures/helpers.js'
import { Bystanders, Op, closePayload, declareBystanders, fragmented, frame, rawConnect, type CloseInfo, type RawWebSocket } from '../fixtures/raw-ws.js'

const FRAGMENTS = Number(process.env.FRAMES_FRAGMENTS ?? 200_000)
const BYSTANDERS = Number(process.env.FRAMES_BYSTANDERS ?? 10)
const MAX_PAYLOAD = 64 * 1024 // the plugin's default maxPayload
const MAX_FRAGMENTS = 16 * 1024 // ws server default maxFragments

// Limits wide open: only the WebSocket layer's own rules are under test here.
const options = {
  rateLimit: { rate: 1e9, burst: 1e9 },
  errorBudget: { max: 1e9, window: 1000 },
  maxConnectionsPerIp: 100_000
}

async function within<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms) })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

const text = (payload: string | Buffer, extra: Partial<Parameters<typeof frame>[0]> = {}) => frame({ opcode: Op.TEXT, payload, ...extra })

interface Offence {
  name: string
  bytes: () => Buffer
  code: number
}

const PING = '{"type":"ping","id":"x"}'

const offences: Offence[] = [
  { name: 'RSV1 set without permessage-deflate', bytes: () => text(PING, { rsv1: true }), code: 1002 },
  { name: 'RSV2 set', bytes: () => text(PING, { rsv2: true }), code: 1002 },
  { name: 'RSV3 set', bytes: () => text(PING, { rsv3: true }), code: 1002 },
  { name: 'RSV1 on a ping', bytes: () => frame({ opcode: Op.PING, rsv1: true }), code: 1002 },
  { name: 'RSV1 on a continuation', bytes: () => Buffer.concat([text('{"type"', { fin: false }), frame({ opcode: Op.CONTINUATION, payload: ':"ping"}', rsv1: true })]), code: 1002 },
  ...[3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf].map((opcode) => ({
    name: `reserved opcode 0x${opcode.toString(16)}`,
    bytes: () => frame({ opcode, payload: PING }),
    code: 1002
  })),
  { name: 'unmasked text frame', bytes: () => text(PING, { masked: false }), code: 1002 },
  { name: 'unmasked ping', bytes: () => frame({ opcode: Op.PING, masked: false }), code: 1002 },
  { name: 'fragmented ping (FIN clear on a control frame)', bytes: () => frame({ opcode: Op.PING, fin: false, payload: 'a' }), code: 1002 },
  { name: 'fragmented close', bytes: () => frame({ opcode: Op.CLOSE, fin: false, payload: closePayload(1000) }), code: 1002 },
  { name: 'ping payload of 126 bytes', bytes: () => frame({ opcode: Op.PING, payload: Buffer.alloc(126, 0x61) }), code: 1002 },
  { name: 'pong payload of 200 bytes', bytes: () => frame({ opcode: Op.PONG, payload: Buffer.alloc(200, 0x61) }), code: 1002 },
  { name: 'close payload of 1 byte', bytes: () => frame({ opcode: Op.CLOSE, payload: Buffer.from([0x03]) }), code: 1002 },
  { name: 'close payload over 125 bytes', bytes: () => frame({ opcode: Op.CLOSE, payload: closePayload(1000, 'r'.repeat(130)) }), code: 1002 },
  ...[0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535].map((code) => ({
    name: `close code ${code}`,
    bytes: () => frame({ opcode: Op.CLOSE, payload: closePayload(code, 'bye') }),
    code: 1002
  })),
  { name: 'invalid UTF-8 in a close reason', bytes: () => frame({ opcode: Op.CLOSE, payload: closePayload(1000, Buffer.from([0xff, 0xfe])) }), code: 1007 },
  { name: 'surrogate encoded in UTF-8 in a close reason', bytes: () => frame({ opcode: Op.CLOSE, payload: closePayload(4000, Buffer.from([0xed, 0xa0, 0x80])) }), code: 1007 },
  ...([
    ['a lone continuation byte', [0x80]],
    ['a truncated two-byte sequence', [0xc3]],
    ['an overlong "/"', [0xc0, 0xaf]],
    ['an overlong NUL', [0xe0, 0x80, 0x80]],
    ['a UTF-16 surrogate encoded in UTF-8', [0xed, 0xa0, 0x80]],
    ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
    ['byte 0xFF', [0xff]]
  ] as const).map(([what, bytes]) => ({
    name: `invalid UTF-8 in text: ${what}`,
    bytes: () => text(Buffer.concat([Buffer.from('{"type":"echo","id":1,"data":{"text":"'), Buffer.from(bytes), Buffer.from('"}}')])),
    code: 1007
  })),
  {
    name: 'invalid UTF-8 split across fragments',
    bytes: () => Buffer.concat([text(Buffer.from([0x22, 0xe2, 0x82]), { fin: false }), frame({ opcode: Op.CONTINUATION, payload: Buffer.from([0x28, 0x22]) })]),
    code: 1007
  },
  { name: 'continuation without a start', bytes: () => frame({ opcode: Op.CONTINUATION, payload: PING }), code: 1002 },
  { name: 'a text frame inside a fragmented text message', bytes: () => Buffer.concat([text('{"type":', { fin: false }), text('"ping"}')]), code: 1002 },
  { name: 'a binary frame inside a fragmented text message', bytes: () => Buffer.concat([text('{"type":', { fin: false }), frame({ opcode: Op.BINARY, payload: 'x' })]), code: 1002 },
  { name: 'declared 64-bit length over maxPayload (2^40)', bytes: () => text('{}', { declaredLength: 2n ** 40n, lengthBits: 64 }), code: 1009 },
  { name: '64-bit length with its most significant bit set', bytes: () => text('{}', { declaredLength: 2n ** 63n + 5n, lengthBits: 64 }), code: 1009 },
  { name: '64-bit length of 2^53 (beyond a safe integer)', bytes: () => text('{}', { declaredLength: 2n ** 53n, lengthBits: 64 }), code: 1009 },
  { name: 'one frame of maxPayload + 1 bytes', bytes: () => text(Buffer.alloc(MAX_PAYLOAD + 1, 0x20)), code: 1009 },
  {
    name: 'fragments summing past maxPayload (100 x 1000 bytes)',
    bytes: () => Buffer.concat(Array.from({ length: 100 }, (_, i) => frame({ opcode: i === 0 ? Op.TEXT : Op.CONTINUATION, fin: i === 99, payload: Buffer.alloc(1000, 0x20) }))),
    code: 1009
  },
  {
    // Not 1009: ws counts fragments before bytes, and maxFragments (16384) is reached
    // long before 64 KiB of one-byte fragments.
    name: `${FRAGMENTS} one-byte fragments of one text message`,
    bytes: () => fragmented(Op.TEXT, Buffer.alloc(FRAGMENTS, 0x20), 1),
    code: FRAGMENTS > MAX_FRAGMENTS ? 1008 : 1009
  },
  {
    name: `${MAX_FRAGMENTS + 1} empty continuation frames`,
    bytes: () => Buffer.concat([text('', { fin: false }), ...Array.from({ length: MAX_FRAGMENTS }, () => frame({ opcode: Op.CONTINUATION, fin: false }))]),
    code: 1008
  }
]

t.test('malformed frames: exact close codes, a live process, untouched bystanders', async (t) => {
  const crashes = watchCrashes(t)

  const { app, url } = await build(t, options, (app) => {
    declareBystanders(app)
    app.realtime.route({
      type: 'echo',
      schema: { data: Type.Object({ text: Type.String() }), reply: Type.Object({ text: Type.String() }) },
      handler: (data) => ({ text: data.text })
    })
  })
  const port = (app.server.address() as { port: number }).port
  const bystanders = await Bystanders.start(t, app, url, { count: BYSTANDERS })

  for (const offence of offences) {
    await t.test(offence.name, async (t) => {
      const raw = await rawConnect(t, port)
      raw.write(offence.bytes())
      const info: CloseInfo = await within(raw.closed, 5000, offence.name)
      t.equal(info.frame, true, 'the server sends a close frame')
      t.equal(info.code, offence.code, `closed with ${offence.code}`)
      t.same(raw.violations, [])
    })
  }

  await t.test('truncated frames: the peer leaves mid-frame, the server forgets it', async (t) => {
    // Earlier offenders finish their closing handshakes first.
    await until(() => app.realtime.stats().connections.active === BYSTANDERS, 5000)
    const peers: RawWebSocket[] = []
    for (const spec of [
      { declaredLength: 60_000, lengthBits: 64 as const, payload: Buffer.alloc(10, 0x20) },
      { declaredLength: 1000, lengthBits: 16 as const, payload: Buffer.alloc(3, 0x20) },
      { declaredLength: 100, lengthBits: 7 as const, payload: Buffer.alloc(0) }
    ]) {
      const raw = await rawConnect(t, port)
      // The header claims more bytes than follow; then our side closes.
      raw.write(frame({ opcode: Op.TEXT, ...spec }))
      raw.end()
      peers.push(raw)
    }
    // A header cut inside its own extended length, and inside the mask key.
    const cut = await rawConnect(t, port)
    cut.write(text('{}', { declaredLength: 2n ** 20n, lengthBits: 64 }).subarray(0, 5))
    cut.end()
    peers.push(cut)
    const masked = await rawConnect(t, port)
    masked.write(text('{}').subarray(0, 4))
    masked.end()
    peers.push(masked)
    const infos = await within(Promise.all(peers.map((p) => p.closed)), 5000, 'truncated peers')
    await until(() => app.realtime.stats().connections.active === BYSTANDERS, 5000)
    t.pass(`all ${infos.length} truncated peers were cleaned up`)
  })

  await t.test('well-formed but unusual frames are served', async (t) => {
    const raw = await rawConnect(t, port)
    // A ping with the largest control payload: answered by a pong carrying it.
    const payload = Buffer.alloc(125, 0x7a)
    raw.send({ opcode: Op.PING, payload })
    const pong = await raw.next((f) => f.opcode === Op.PONG)
    t.same(pong.payload, payload, 'pong echoes 125 bytes')
    // An unsolicited pong is ignored.
    raw.send({ opcode: Op.PONG, payload: 'unsolicited' })
    // Control frames between the fragments of a message are allowed.
    raw.send({ opcode: Op.TEXT, fin: false, payload: '{"type":"ping",' })
    raw.send({ opcode: Op.PING, payload: 'mid' })
    raw.send({ opcode: Op.CONTINUATION, payload: '"id":"frag"}' })
    t.same(await raw.nextJson((f) => f.id === 'frag'), { type: 'pong', id: 'frag' })
    // Multi-byte characters split across one-byte fragments come out whole.
    const tricky = 'é€😀\u2028'
    raw.write(fragmented(Op.TEXT, JSON.stringify({ type: 'echo', id: 'utf8', data: { text: tricky } }), 1))
    t.same(await raw.nextJson((f) => f.id === 'utf8'), { type: 'reply', id: 'utf8', data: { text: tricky } })
    // An empty text frame and a binary frame are answered, not fatal.
    raw.send({ opcode: Op.TEXT })
    t.equal((await raw.nextJson((f) => f.type === 'error')).error.code, 'BAD_REQUEST', 'empty text frame')
    raw.send({ opcode: Op.BINARY, payload: PING })
    t.equal((await raw.nextJson((f) => f.type === 'error')).error.code, 'BAD_REQUEST', 'binary frame')
    // The largest frame allowed: maxPayload bytes of JSON, padded with spaces.
    const json = '{"type":"ping","id":"max"}'
    raw.send({ opcode: Op.TEXT, payload: json + ' '.repeat(MAX_PAYLOAD - json.length) })
    t.same(await raw.nextJson((f) => f.id === 'max'), { type: 'pong', id: 'max' })
    t.same(raw.violations, [])
    raw.destroy()
  })

  await t.test(`exactly ${MAX_FRAGMENTS} one-byte fragments make a message`, async (t) => {
    const raw = await rawConnect(t, port)
    const json = '{"type":"ping","id":"many"}'
    raw.write(fragmented(Op.TEXT, json + ' '.repeat(MAX_FRAGMENTS - json.length), 1))
    t.same(await raw.nextJson((f) => f.id === 'many', 10_000), { type: 'pong', id: 'many' })
    raw.destroy()
  })

  await t.test('frames after our close frame are ignored; the close is echoed', async (t) => {
    const raw = await rawConnect(t, port)
    raw.write(Buffer.concat([
      frame({ opcode: Op.CLOSE, payload: closePayload(4321, 'done') }),
      frame({ opcode: 0x3, payload: 'junk' }),
      text(PING, { masked: false })
    ]))
    const info = await within(raw.closed, 5000, 'close echo')
    t.equal(info.code, 4321, 'the server answers our close with our code')
  })

  await t.test('valid close codes are echoed', async (t) => {
    for (const code of [1000, 1001, 1003, 1007, 1011, 1014, 3000, 4999]) {
      const raw = await rawConnect(t, port)
      raw.send({ opcode: Op.CLOSE, payload: closePayload(code, 'ok') })
      t.equal((await within(raw.closed, 5000, `close ${code}`)).code, code, `close ${code} echoed`)
    }
    const empty = await rawConnect(t, port)
    empty.send({ opcode: Op.CLOSE })
    const info = await within(empty.closed, 5000, 'empty close')
    t.equal(info.frame, true)
    t.equal(info.code, 1005, 'an empty close is answered with an empty close (read as 1005)')
  })

  const report = await bystanders.stop()
  t.same(report.problems, [], 'bystanders lost nothing')
  t.ok(report.messages >= report.published * BYSTANDERS, `${report.messages} publications delivered, ${report.replies} replies`)
  await until(() => app.realtime.stats().connections.active === 0, 5000)
  const fresh = await connect(t, url)
  fresh.send({ type: 'ping', id: 'alive' })
  t.same(await fresh.nextOfType('pong'), { type: 'pong', id: 'alive' }, 'the server still answers')
  t.equal(crashes.uncaught, 0, 'no uncaught exception')
  t.equal(crashes.unhandled, 0, 'no unhandled rejection')
})
