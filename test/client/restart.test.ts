// The client across server restarts: the server is closed in the middle of a stream
// and a new Fastify starts on the same port. With the same broker instance (history
// and epochs survive) the client recovers every publication it missed, in order and
// none twice; with a new broker it is told `recovered: false`, then gets the new
// broker's stream from its first publication while history holds it.
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { Type } from '@sinclair/typebox'
import { WebSocket } from 'ws'
import realtime, { MemoryBroker, type Broker, type RealtimeOptions } from '../../lib/index.js'
import { createClient, defineContract, type RealtimeClient, type RecoveredEvent } from '../../lib/client/index.js'

const contract = defineContract({
  routes: {
    echo: { data: Type.Object({ text: Type.String() }), reply: Type.Object({ text: Type.String() }) }
  },
  topics: {
    feed: { message: Type.Object({ n: Type.Integer() }) }
  }
})

async function start (t: Test, broker: Broker, options: RealtimeOptions = {}, port = 0): Promise<{ app: FastifyInstance, port: number, url: string }> {
  const app = Fastify()
  await app.register(realtime, { ...options, broker, closeTimeout: 1000 })
  app.realtime.route({ type: 'echo', schema: contract.routes.echo, handler: (data) => data })
  app.realtime.topic('feed', contract.topics.feed)
  await app.ready()
  t.teardown(() => app.close())
  return { app, port, url: `ws://127.0.0.1:${port}/ws` }
}

async function listen (app: FastifyInstance, port: number): Promise<{ port: number, url: string }> {
  await app.listen({ port, host: '127.0.0.1' })
  const actual = (app.server.address() as { port: number }).port
  return { port: actual, url: `ws://127.0.0.1:${actual}/ws` }
}

function client (t: Test, url: string): RealtimeClient<typeof contract> {
  const c = createClient({ url, contract, WebSocket, backoff: { initialDelay: 100, maxDelay: 300 } })
  t.teardown(() => c.close())
  return c
}

async function until (cond: () => boolean, timeoutMs = 8000): Promise<void> {
  const start = Date.now()
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

t.test('killed mid-stream and restarted on the same port with the same broker: everything missed is recovered, once, in order', async (t) => {
  const broker = new MemoryBroker()
  const first = await start(t, broker)
  const { port, url } = await listen(first.app, 0)
  const c = client(t, url)
  const received: Array<{ n: number, offset: number | undefined }> = []
  const recovered: RecoveredEvent[] = []
  c.on('recovered', (e) => { recovered.push(e) })
  const states: string[] = []
  c.on('state', (s) => { states.push(s) })
  await c.subscribe('feed', (m, meta) => { received.push({ n: m.n, offset: meta.offset }) }).ready

  // A steady stream on the first server...
  let n = 0
  const streaming = { on: true }
  const stream = (async () => {
    while (streaming.on) {
      await first.app.realtime.publish('feed', { n: ++n })
      await sleep(2)
    }
  })()
  await until(() => received.length >= 20)
  // ...until it is stopped in the middle.
  streaming.on = false
  await stream
  const closing = first.app.close()
  await until(() => c.state === 'reconnecting')
  await closing
  const beforeRestart = n

  // While no server listens: a request waits in the queue, and publications happen
  // through the next server before it accepts anyone.
  const queued = c.request('echo', { text: 'sent while away' })
  const second = await start(t, broker)
  for (let i = 0; i < 10; i++) await second.app.realtime.publish('feed', { n: ++n })
  await listen(second.app, port)
  // And the stream goes on while the client comes back.
  for (let i = 0; i < 30; i++) {
    await second.app.realtime.publish('feed', { n: ++n })
    await sleep(2)
  }
  t.same(await queued, { text: 'sent while away' }, 'the queued request went out after reconnecting')
  await until(() => received.length >= n)
  await sleep(50)
  t.equal(received.length, n, `all ${n} publications arrived (${beforeRestart} before the restart)`)
  t.same(received.map((r) => r.n), Array.from({ length: n }, (_, i) => i + 1), 'in order, none twice, none missing')
  t.same(received.map((r) => r.offset), Array.from({ length: n }, (_, i) => i + 1), 'offsets rise by one')
  t.same(recovered, [{ topic: 'feed', recovered: true }], 'the app is told it recovered')
  t.same(states, ['open', 'reconnecting', 'open'])
})

t.test('a new broker (a new epoch) after the restart: the app is told recovered: false, and gets the new epoch from its first publication', async (t) => {
  const first = await start(t, new MemoryBroker())
  const { port, url } = await listen(first.app, 0)
  const c = client(t, url)
  const received: Array<[number, number | undefined]> = []
  const recovered: RecoveredEvent[] = []
  c.on('recovered', (e) => { recovered.push(e) })
  const before = await c.subscribe('feed', (m, meta) => { received.push([m.n, meta.offset]) }).ready
  for (let i = 1; i <= 3; i++) await first.app.realtime.publish('feed', { n: i })
  await until(() => received.length === 3)
  await first.app.close()

  const second = await start(t, new MemoryBroker())
  await second.app.realtime.publish('feed', { n: 100 }) // before the client is back: still in history
  await listen(second.app, port)
  await until(() => recovered.length === 1 && received.length === 4)
  t.same(recovered, [{ topic: 'feed', recovered: false }], 'told: what the old broker had is lost')
  t.same(received, [[1, 1], [2, 2], [3, 3], [100, 1]], 'the new stream from its first publication, offsets starting low again')
  const [position] = c.subscriptions
  t.not(position.epoch, before.epoch, 'the position moved to the new stream')
  t.equal(position.offset, 1)
  await second.app.realtime.publish('feed', { n: 4 })
  await until(() => received.length === 5)
  t.same(received.at(-1), [4, 2], 'then live, none twice')
})

t.test('a new broker whose history no longer holds the new epoch\'s start: recovered: false, and live from there', async (t) => {
  const first = await start(t, new MemoryBroker())
  const { port, url } = await listen(first.app, 0)
  const c = client(t, url)
  const received: number[] = []
  const recovered: RecoveredEvent[] = []
  c.on('recovered', (e) => { recovered.push(e) })
  await c.subscribe('feed', (m) => { received.push(m.n) }).ready
  await first.app.realtime.publish('feed', { n: 1 })
  await until(() => received.length === 1)
  await first.app.close()

  const second = await start(t, new MemoryBroker(), { history: { size: 1 } })
  for (let n = 100; n <= 101; n++) await second.app.realtime.publish('feed', { n }) // 100 is trimmed: lost
  await listen(second.app, port)
  await until(() => recovered.length === 1)
  t.same(recovered, [{ topic: 'feed', recovered: false }])
  await second.app.realtime.publish('feed', { n: 2 })
  await until(() => received.length === 2)
  t.same(received, [1, 2], 'never a partial replay: live from the topic\'s position')
  t.same(c.subscriptions[0].offset, 3)
})

t.test('close codes decide: 4011 reconnects, 4500 and 4503 stay closed', async (t) => {
  const { app } = await start(t, new MemoryBroker())
  const { url } = await listen(app, 0)
  const connectionOf = async (c: RealtimeClient<typeof contract>): Promise<string> => {
    await until(() => c.state === 'open' && c.connectionId !== undefined)
    return c.connectionId as string
  }
  const again = client(t, url)
  const first = await connectionOf(again)
  app.realtime.disconnect(first, 4011, 'reconnect please')
  await until(() => again.state === 'open' && again.connectionId !== first)
  t.pass('4011: reconnected')
  for (const code of [4500, 4503]) {
    const c = client(t, url)
    const attempts: number[] = []
    c.on('attempt', (e) => { attempts.push(e.attempt) })
    app.realtime.disconnect(await connectionOf(c), code, 'go away')
    await until(() => c.state === 'closed')
    await sleep(400)
    t.equal(c.state, 'closed', `${code}: stays closed`)
    t.same(attempts, [], `${code}: no attempt after it`)
  }
})
