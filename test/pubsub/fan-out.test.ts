// A fan-out to more subscribers than `fanOutSlice` is spread over event-loop turns:
// small ones still run at once, order per subscriber and the delivery rule hold, a slow
// consumer is still cut, other connections are answered meanwhile, and a shutdown during
// a sliced fan-out delivers everything that was acknowledged before its close frame.
import t from 'tap'
import { Type } from '@sinclair/typebox'
import { WebSocket } from 'ws'
import { FanOuts } from '../../lib/pubsub/fan-out.js'
import type { Connection } from '../../lib/connection/connection.js'
import { build, connect, until, type TestClient } from '../fixtures/helpers.js'

const Message = Type.Object({ n: Type.Integer(), pad: Type.String() })

/** Stand-ins for connections: the walk only hands them to `visit`. */
function members (count: number): Set<Connection> {
  return new Set(Array.from({ length: count }, (_, i) => ({ id: String(i) }) as unknown as Connection))
}

t.test('FanOuts: within the slice at once; above it a slice per turn; a topic\'s walks in order; idle after', async (t) => {
  const fanOuts = new FanOuts(3)
  const seen: string[] = []
  let done = 0
  fanOuts.walk('small', members(3), (c) => { seen.push(`small ${c.id}`) }, () => { done++ })
  t.same(seen, ['small 0', 'small 1', 'small 2'], 'a walk within the slice runs at once')
  t.equal(done, 1)
  seen.length = 0
  await fanOuts.idle()

  fanOuts.walk('big', members(8), (c) => { seen.push(`a ${c.id}`) }, () => { seen.push('a done') })
  t.same(seen, ['a 0', 'a 1', 'a 2'], 'a larger walk writes one slice in this turn')
  // Arriving meanwhile: small, but behind the walk of its topic; another topic is not held.
  fanOuts.walk('big', members(2), (c) => { seen.push(`b ${c.id}`) }, () => { seen.push('b done') })
  fanOuts.walk('other', members(1), (c) => { seen.push(`other ${c.id}`) }, () => {})
  t.same(seen.slice(3), ['other 0'], 'another topic is walked at once, not behind the sliced one')
  let idle = false
  const settled = fanOuts.idle().then(() => { idle = true })
  await new Promise((resolve) => setImmediate(resolve))
  t.same(seen.slice(4), ['a 3', 'a 4', 'a 5'], 'the next slice in the next turn')
  t.notOk(idle)
  await settled
  t.same(seen.slice(7), ['a 6', 'a 7', 'a done', 'b 0', 'b 1', 'b done'], 'the later walk of the topic after the earlier one')
})

t.test('FanOuts: a visit that throws reaches the caller; the rest of the walk and the later walks still run', async (t) => {
  const fanOuts = new FanOuts(2)
  const seen: string[] = []
  t.throws(() => fanOuts.walk('t', members(5), (c) => {
    if (c.id === '1') throw new Error('boom')
    seen.push(`a ${c.id}`)
  }, () => { seen.push('a done') }), /boom/)
  fanOuts.walk('t', members(1), (c) => { seen.push(`b ${c.id}`) }, () => { seen.push('b done') })
  await fanOuts.idle()
  t.same(seen, ['a 0', 'a 2', 'a 3', 'a 4', 'a done', 'b 0', 'b done'])
})

async function subscribers (t: any, url: string, count: number, topic: string): Promise<TestClient[]> {
  const clients: TestClient[] = []
  for (let i = 0; i < count; i++) {
    const c = await connect(t, url)
    t.equal((await c.request('subscribe', { topic })).type, 'reply')
    clients.push(c)
  }
  return clients
}

function messagesOf (c: TestClient, topic: string): number[] {
  return c.frames.filter((f) => f.type === 'message' && f.topic === topic).map((f) => f.data.n)
}

t.test('sliced fan-outs: every subscriber gets every publication once, in order; another connection is answered meanwhile', async (t) => {
  const { app, url } = await build(t, { fanOutSlice: 2 }, (app) => {
    app.realtime.topic('feed', { message: Message, clientPublish: true })
  })
  const clients = await subscribers(t, url, 9, 'feed')
  const other = await connect(t, url)
  const count = 60
  const published = Array.from({ length: count }, (_, i) => app.realtime.publish('feed', { n: i + 1, pad: '' }))
  // Asked after every publication was handed to the fan-out: answered long before the last delivery.
  other.send({ type: 'ping', id: 'p' })
  const pong = other.nextOfType('pong', 20_000)
  let lastDeliveredAtPong = -1
  pong.then(() => { lastDeliveredAtPong = messagesOf(clients[8], 'feed').length }, () => {})
  const offsets = (await Promise.all(published)).map((r) => r.offset)
  t.same(offsets, Array.from({ length: count }, (_, i) => i + 1))
  await until(() => clients.every((c) => messagesOf(c, 'feed').length >= count), 20_000)
  const expected = Array.from({ length: count }, (_, i) => i + 1)
  for (const c of clients) {
    t.same(messagesOf(c, 'feed'), expected, 'all of them, each once, in order')
    const frames = c.frames.filter((f) => f.type === 'message')
    t.same(frames.map((f) => f.offset), expected, 'offsets without a gap')
  }
  await pong
  t.ok(lastDeliveredAtPong < count, `the ping of another connection was answered during the fan-out (the last subscriber had ${lastDeliveredAtPong} of ${count})`)
})

t.test('sliced fan-outs: a client publishing and subscribing meanwhile keeps the delivery rule', async (t) => {
  const { app, url } = await build(t, { fanOutSlice: 1 }, (app) => {
    app.realtime.topic('feed', { message: Message, clientPublish: true })
  })
  const clients = await subscribers(t, url, 5, 'feed')
  const late = await connect(t, url)
  const order: string[] = []
  late.ws.on('message', (raw) => { const f = JSON.parse(raw.toString()); order.push(f.type === 'message' ? 'message' : String(f.id)) })
  const count = 30
  const published: Array<Promise<unknown>> = []
  for (let i = 1; i <= count; i++) {
    published.push(app.realtime.publish('feed', { n: i, pad: '' }))
    // Subscribes from the start of the stream in the middle of it, while fan-outs are sliced.
    if (i === 10) late.send({ type: 'subscribe', id: 'late', data: { topic: 'feed', since: { epoch: (await published[0] as { epoch: string }).epoch, offset: 0 } } })
  }
  await Promise.all(published)
  const reply = await late.next((f) => f.id === 'late')
  t.equal(reply.type, 'reply')
  t.equal(reply.data.recovered, true)
  await until(() => [...clients, late].every((c) => messagesOf(c, 'feed').length >= count), 20_000)
  const expected = Array.from({ length: count }, (_, i) => i + 1)
  for (const c of [...clients, late]) t.same(messagesOf(c, 'feed'), expected, 'everything once, in order, recovered and live joined without a gap')
  t.equal(order[0], 'late', 'no message before the subscribe reply')
})

t.test('sliced fan-outs: a slow consumer is still cut with 4008, the others get everything', async (t) => {
  const closedWith: number[] = []
  const { app, url } = await build(t, { fanOutSlice: 2, maxQueue: 4096, heartbeat: { interval: 600_000, timeout: 600_000 } }, (app) => {
    app.realtime.topic('feed', { message: Message })
    app.realtime.addHook('onDisconnect', (_connection, { code }) => { closedWith.push(code) })
  })
  const clients = await subscribers(t, url, 6, 'feed')
  const slow = clients[3]
  ;(slow.ws as unknown as { _socket: { pause: () => void } })._socket.pause()
  const pad = 'x'.repeat(2000)
  let n = 0
  // Until the server cuts the slow one: its kernel buffers fill first, then the server's queue.
  await until(async () => {
    for (let i = 0; i < 20; i++) await app.realtime.publish('feed', { n: ++n, pad })
    return app.realtime.stats().topics.feed === 5
  }, 30_000)
  await until(() => closedWith.length === 1)
  t.same(closedWith, [4008], 'the slow consumer was closed as one (the server\'s code: its socket never reads the close frame)')
  const readers = clients.filter((c) => c !== slow)
  await until(() => readers.every((c) => messagesOf(c, 'feed').length >= n), 20_000)
  for (const c of readers) t.same(messagesOf(c, 'feed'), Array.from({ length: n }, (_, i) => i + 1))
})

t.test('shutdown during a sliced fan-out: every acknowledged publication reaches every subscriber before 1012', async (t) => {
  const { app, url } = await build(t, { fanOutSlice: 1, closeTimeout: 5000 }, (app) => {
    app.realtime.topic('feed', { message: Message })
  })
  const clients = await subscribers(t, url, 8, 'feed')
  const count = 40
  const acknowledged: number[] = []
  await Promise.all(Array.from({ length: count }, (_, i) => app.realtime.publish('feed', { n: i + 1, pad: '' }).then(() => { acknowledged.push(i + 1) })))
  const codes = clients.map((c) => c.closed)
  await app.close()
  for (const [i, c] of clients.entries()) {
    t.equal((await codes[i]).code, 1012)
    t.same(messagesOf(c, 'feed'), acknowledged.sort((a, b) => a - b), 'all that was acknowledged, in order, before the close')
  }
})

t.test('fanOutSlice is validated at register', async (t) => {
  for (const bad of [0, -1, 1.5, '10']) {
    await t.rejects(build(t, { fanOutSlice: bad as number }), { code: 'FST_REALTIME_INVALID_OPTION' }, `fanOutSlice ${String(bad)}`)
  }
  t.ok(WebSocket)
})
