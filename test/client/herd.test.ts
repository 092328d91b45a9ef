// A thousand clients lose their server at the same instant (a restart on the same
// port). Full jitter must spread their reconnection attempts: no one-second window
// may hold more than a fifth of them.
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { WebSocket } from 'ws'
import realtime from '../../lib/index.js'
import { createClient, type RealtimeClient } from '../../lib/client/index.js'

const CLIENTS = 1000
// Every first retry is drawn from [0, 8 s]: a second holds 1/8 of them on average,
// far enough under 1/5 that chance does not make the test flaky.
const backoff = { minDelay: 0, initialDelay: 8000, maxDelay: 8000 }

async function server (port: number): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(realtime, { closeTimeout: 2000 })
  await app.listen({ port, host: '127.0.0.1' })
  return app
}

async function until (cond: () => boolean, timeoutMs: number): Promise<void> {
  const start = Date.now()
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** The most attempts that fall within any window of `width` ms. */
function busiestWindow (times: number[], width: number): number {
  const sorted = [...times].sort((a, b) => a - b)
  let most = 0
  let start = 0
  for (let end = 0; end < sorted.length; end++) {
    while (sorted[end] - sorted[start] >= width) start++
    most = Math.max(most, end - start + 1)
  }
  return most
}

t.test(`${CLIENTS} clients reconnecting after a restart spread their attempts`, async (t) => {
  let app = await server(0)
  const port = (app.server.address() as { port: number }).port
  const url = `ws://127.0.0.1:${port}/ws`
  const clients: RealtimeClient[] = []
  let restartedAt = Infinity
  const attempts: number[] = []
  for (let i = 0; i < CLIENTS; i++) {
    const c = createClient({ url, WebSocket, backoff })
    c.on('attempt', () => { if (Date.now() >= restartedAt) attempts.push(Date.now()) })
    clients.push(c)
  }
  t.teardown(async () => {
    await Promise.all(clients.map((c) => c.close()))
    await app.close()
  })
  await until(() => clients.every((c) => c.state === 'open'), 20000)
  t.equal(app.realtime.connections.size, CLIENTS, 'all connected')

  restartedAt = Date.now()
  await app.close() // 1012 to everyone
  // The server's side of each close can end before this process has run the client's
  // side of it (both live here): wait for the clients, boundedly, instead of assuming.
  await until(() => clients.every((c) => c.state === 'reconnecting'), 5000)
  t.pass('every client is reconnecting')
  app = await server(port)
  await until(() => clients.every((c) => c.state === 'open'), 30000)
  t.equal(app.realtime.connections.size, CLIENTS, 'all reconnected')

  const busiest = busiestWindow(attempts, 1000)
  t.ok(attempts.length >= CLIENTS, `${attempts.length} attempts after the restart`)
  t.ok(busiest <= CLIENTS / 5, `the busiest second held ${busiest} attempts (at most ${CLIENTS / 5} allowed)`)
  const spread = Math.max(...attempts) - Math.min(...attempts)
  t.ok(spread > 5000, `attempts spread over ${spread} ms`)
})
