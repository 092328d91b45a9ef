// Write batching (connection/write-batch.ts): a socket's frames of one event-loop iteration
// leave in one write; with `writeDelay`, those of a few ms. Order, and the delivery rule, kept.
import t from 'tap'
import { Type } from '@sinclair/typebox'
import { build, connect, until } from '../fixtures/helpers.js'

/** Counts the writes that reach a server-side socket's stream implementation (one system call each, or one writev). */
function countWrites (socket: { _write: (...args: any[]) => void, _writev?: (...args: any[]) => void }): { writes: number } {
  const counts = { writes: 0 }
  const write = socket._write
  socket._write = function (this: unknown, ...args: any[]) { counts.writes++; return write.apply(this, args) }
  const writev = socket._writev
  if (writev !== undefined) socket._writev = function (this: unknown, ...args: any[]) { counts.writes++; return writev.apply(this, args) }
  return counts
}

async function setup (t: Parameters<typeof build>[0], writeDelay?: number) {
  const { app, url } = await build(t, writeDelay === undefined ? {} : { writeDelay }, (app) => {
    app.realtime.topic('feed', { message: Type.Object({ n: Type.Integer() }) })
    app.realtime.event('notice', Type.String())
  })
  const client = await connect(t, url)
  await client.request('subscribe', { topic: 'feed' })
  const [connection] = [...app.realtime.connections]
  const raw = (connection as unknown as { socket: { _socket: any } }).socket._socket
  // Let the subscribe reply's window end before counting.
  await new Promise((resolve) => setTimeout(resolve, 20 + (writeDelay ?? 0)))
  return { app, client, counts: countWrites(raw) }
}

t.test('the frames of one iteration to one socket leave in one write, in order', async (t) => {
  const { app, client, counts } = await setup(t)
  const publishing = Promise.all(Array.from({ length: 10 }, (_, i) => app.realtime.publish('feed', { n: i })))
  app.realtime.broadcast('notice', 'after')
  await publishing
  await until(() => client.frames.filter((f) => f.type === 'message').length === 10 && client.frames.some((f) => f.type === 'notice'))
  const kinds = client.frames.map((f) => f.type === 'message' ? f.data.n : f.type)
  t.same(kinds.filter((k) => k !== 'notice'), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'in offset order')
  t.ok(counts.writes <= 3, `${counts.writes} writes for 11 frames`)
})

t.test('writeDelay coalesces a socket\'s frames across iterations, and delays them that much at most', async (t) => {
  const { app, client, counts } = await setup(t, 60)
  const started = Date.now()
  for (let i = 0; i < 5; i++) {
    await app.realtime.publish('feed', { n: i })
    await new Promise((resolve) => setImmediate(resolve))
  }
  t.equal(client.frames.filter((f) => f.type === 'message').length, 0, 'nothing yet: the window is open')
  await until(() => client.frames.filter((f) => f.type === 'message').length === 5)
  t.ok(Date.now() - started >= 40, 'held for about writeDelay')
  t.same(client.frames.filter((f) => f.type === 'message').map((f) => f.data.n), [0, 1, 2, 3, 4])
  t.ok(counts.writes <= 2, `${counts.writes} writes for 5 publications in 5 iterations`)
})

t.test('writeDelay is validated at register', async (t) => {
  for (const writeDelay of [-1, 1.5, 5000, '5']) {
    await t.rejects(build(t, { writeDelay: writeDelay as never }), { code: 'FST_REALTIME_INVALID_OPTION' }, `writeDelay ${String(writeDelay)}`)
  }
})
