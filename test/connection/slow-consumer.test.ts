// One slow phone must not eat the server's memory nor hold the others back: 10
// clients that never read among 200 that do, 20,000 publications.
import t from 'tap'
import { Type } from '@sinclair/typebox'
import { WebSocket } from 'ws'
import { build, until } from '../fixtures/helpers.js'

const CLIENTS = 200
const SLOW = 10
const PUBLICATIONS = 20_000
const PAD = 'x'.repeat(400)
const MAX_QUEUE = 1024 * 1024

interface Reader { ws: WebSocket, count: number, last: number, inOrder: boolean, code: number }

async function scenario (t: any, volatile: boolean) {
  // The code each connection was closed with, as the server decided it.
  const closedWith: number[] = []
  // A long heartbeat: the paused clients must be judged by their queue, not by missing pongs.
  const { app, url } = await build(t, { maxQueue: MAX_QUEUE, heartbeat: { interval: 600_000, timeout: 600_000 } }, (app) => {
    app.realtime.topic('ticks', { message: Type.Object({ n: Type.Integer(), pad: Type.String() }), volatile, history: { size: 0 } })
    app.realtime.addHook('onDisconnect', (_connection, { code }) => { closedWith.push(code) })
  })
  const readers: Reader[] = []
  for (let i = 0; i < CLIENTS; i++) {
    const ws = new WebSocket(url, 'realtime.v1', { skipUTF8Validation: true })
    const reader: Reader = { ws, count: 0, last: 0, inOrder: true, code: 0 }
    readers.push(reader)
    ws.on('error', () => {})
    ws.on('close', (code) => { reader.code = code })
    ws.on('message', (raw) => {
      const text = raw.toString()
      if (!text.startsWith('{"type":"message"')) return
      // Cheaper than JSON.parse for 3.8 million frames: the offset is at a known place.
      const offset = Number(/"offset":(\d+)/.exec(text)?.[1])
      if (offset !== reader.last + 1) reader.inOrder = false
      reader.last = offset
      reader.count++
    })
    await new Promise((resolve) => ws.once('open', resolve))
    ws.send(JSON.stringify({ type: 'subscribe', id: 1, data: { topic: 'ticks' } }))
  }
  t.teardown(() => { for (const r of readers) r.ws.terminate() })
  await until(() => app.realtime.stats().topics.ticks === CLIENTS)
  const slow = readers.slice(0, SLOW)
  // These never read again: the kernel buffers fill, then the server's queue does.
  for (const r of slow) (r.ws as unknown as { _socket: { pause: () => void } })._socket.pause()
  const fast = readers.slice(SLOW)
  const fastIds = new Set<string>()
  const connections = [...app.realtime.connections]
  const rssBefore = process.memoryUsage().rss
  let maxQueued = 0
  for (let n = 1; n <= PUBLICATIONS; n++) {
    await app.realtime.publish('ticks', { n, pad: PAD })
    if (n % 200 === 0) {
      for (const c of connections) maxQueued = Math.max(maxQueued, c.bufferedAmount)
      // Pace the producer to the readers that do read, as a real feed would be.
      const target = n - 400
      await until(() => fast.every((r) => r.count >= target), 20_000)
    }
  }
  await until(() => fast.every((r) => r.count === PUBLICATIONS), 30_000)
  const rssGrowth = process.memoryUsage().rss - rssBefore
  for (const c of app.realtime.connections) fastIds.add(c.id)
  return { app, slow, fast, maxQueued, rssGrowth, closedWith }
}

t.test('slow consumers are closed with 4008; the others get every publication in order', async (t) => {
  const { app, slow, fast, maxQueued, rssGrowth, closedWith } = await scenario(t, false)
  t.ok(fast.every((r) => r.count === PUBLICATIONS && r.inOrder && r.last === PUBLICATIONS), '190 readers got 100 % in order')
  t.ok(fast.every((r) => r.ws.readyState === WebSocket.OPEN), 'and are still connected')
  for (const r of slow) (r.ws as unknown as { _socket: { resume: () => void } })._socket.resume()
  await until(() => slow.every((r) => r.code !== 0), 10_000)
  await until(() => app.realtime.connections.size === CLIENTS - SLOW)
  t.same(closedWith, Array(SLOW).fill(4008), 'the 10 slow ones were closed with 4008')
  // A client that does not read never sees its close frame: after closeGrace the
  // server cuts it off rather than wait for ws's 30 s close timeout.
  t.ok(slow.every((r) => r.code === 4008 || r.code === 1006), `and are gone (${[...new Set(slow.map((r) => r.code))].join(',')})`)
  t.ok(slow.every((r) => r.count < PUBLICATIONS), 'and did not get everything')
  t.ok(maxQueued <= MAX_QUEUE, `no connection ever queued more than maxQueue (max ${maxQueued})`)
  t.ok(rssGrowth < 256 * 1024 * 1024, `memory stayed bounded (rss +${Math.round(rssGrowth / 1048576)} MiB)`)
})

t.test('on a volatile topic slow consumers lose messages, counted, and stay connected', async (t) => {
  const { app, slow, fast, maxQueued } = await scenario(t, true)
  t.ok(fast.every((r) => r.count === PUBLICATIONS && r.inOrder), '190 readers got 100 % in order')
  t.equal(app.realtime.connections.size, CLIENTS, 'nobody was closed')
  t.ok(slow.every((r) => r.ws.readyState === WebSocket.OPEN))
  t.ok(app.realtime.stats().messages.dropped > 0, `drops are counted (${app.realtime.stats().messages.dropped})`)
  t.ok(maxQueued <= MAX_QUEUE, `no connection ever queued more than maxQueue (max ${maxQueued})`)
})
