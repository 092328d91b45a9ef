// Every limit is an option with a default, and each is crossed here by one.
import t from 'tap'
import { WebSocket } from 'ws'
import realtime from '../../lib/index.js'
import Fastify from 'fastify'
import { Type } from '@sinclair/typebox'
import { build, connect } from '../fixtures/helpers.js'

function refusedWith (url: string, headers: Record<string, string> = {}): Promise<number> {
  const ws = new WebSocket(url, 'realtime.v1', { headers })
  ws.on('error', () => {})
  return new Promise((resolve) => {
    ws.once('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate() })
    ws.once('open', () => { resolve(101); ws.terminate() })
  })
}

t.test('the defaults', async (t) => {
  const app = Fastify()
  await app.register(realtime)
  const o = app.realtime.options
  t.same(o.rateLimit, { rate: 100, burst: 200, closeAfter: 100 })
  t.same(o.errorBudget, { max: 20, window: 10000 })
  t.same([o.maxConnections, o.maxConnectionsPerIp, o.maxConnectionsPerUser, o.maxQueue, o.maxPayload, o.maxSubscriptions], [100000, 10000, 100, 1048576, 65536, 128])
  t.equal(o.allowedOrigins, undefined)
  await app.close()
})

t.test('message rate: a token bucket; RATE_LIMITED with retryAfterMs, then 4013 when it goes on', async (t) => {
  const { url } = await build(t, { rateLimit: { rate: 1, burst: 5, closeAfter: 3 } })
  const c = await connect(t, url)
  for (let i = 0; i < 5; i++) c.send({ type: 'ping', id: i })
  for (let i = 0; i < 5; i++) t.equal((await c.next((f) => f.id === i)).type, 'pong', `message ${i + 1} of the burst passes`)
  c.send({ type: 'ping', id: 'over' })
  const limited = await c.next((f) => f.id === 'over')
  t.equal(limited.error?.code, 'RATE_LIMITED', 'one past the burst is refused')
  t.equal(limited.error?.temporary, true)
  t.ok((limited.error?.retryAfterMs ?? 0) > 0 && (limited.error?.retryAfterMs ?? 0) <= 1000, `retryAfterMs ${limited.error?.retryAfterMs}`)
  for (let i = 0; i < 2; i++) c.send({ type: 'ping', id: `more${i}` })
  for (let i = 0; i < 2; i++) t.equal((await c.next((f) => f.id === `more${i}`)).error?.code, 'RATE_LIMITED')
  c.send({ type: 'ping', id: 'last' })
  t.equal((await c.closed).code, 4013, 'one more than closeAfter refused in a row closes with 4013')
})

t.test('a 4013 close comes after the answers of every request the server ran (a burst to an async route)', async (t) => {
  let runs = 0
  const { url } = await build(t, { rateLimit: { rate: 1, burst: 5, closeAfter: 3 } }, (app) => {
    app.realtime.route({
      type: 'post',
      schema: { data: Type.Object({ n: Type.Integer() }), reply: Type.Object({ n: Type.Integer() }) },
      handler: async (data) => {
        runs++
        await new Promise((resolve) => setTimeout(resolve, 50))
        return data
      }
    })
  })
  const c = await connect(t, url)
  // One write: the burst passes, three are refused, the next closes, the rest come after that decision.
  for (let n = 0; n < 20; n++) c.send({ type: 'post', id: n, data: { n } })
  t.equal((await c.closed).code, 4013)
  const replies = c.frames.filter((f) => f.type === 'reply')
  const limited = c.frames.filter((f) => f.error?.code === 'RATE_LIMITED')
  t.equal(runs, 5, 'the burst ran')
  t.same(replies.map((f) => f.id), [0, 1, 2, 3, 4], 'and every request that ran was answered before the close frame')
  t.equal(limited.length, 3, 'the refused ones were told so')
  t.equal(c.frames.filter((f) => f.type === 'reply' || f.type === 'error').length, 8, 'what came after the decision to close was neither run nor answered')
})

t.test('error budget: too many protocol errors in a window closes with 4501', async (t) => {
  const { url } = await build(t, { errorBudget: { max: 3, window: 60_000 } })
  const c = await connect(t, url)
  const neighbour = await connect(t, url)
  for (const bad of ['nope', '{"type":"unknown.type","id":1}', '[]']) {
    c.send(bad)
    await c.nextOfType('error')
  }
  t.equal(c.ws.readyState, WebSocket.OPEN, 'three errors are within the budget')
  c.send('{"type":5}')
  t.equal((await c.nextOfType('error')).error?.code, 'BAD_REQUEST', 'the fourth is still answered')
  t.equal((await c.closed).code, 4501, 'and then the connection is closed')
  neighbour.send({ type: 'ping', id: 1 })
  t.equal((await neighbour.nextOfType('pong')).id, 1, 'its neighbour carries on')
})

t.test('connections in all, per IP and per user', async (t) => {
  const total = await build(t, { maxConnections: 2 })
  await connect(t, total.url)
  await connect(t, total.url)
  t.equal(await refusedWith(total.url), 503, 'one past maxConnections: 503 before the upgrade')

  const perIp = await build(t, { maxConnectionsPerIp: 2 })
  await connect(t, perIp.url)
  await connect(t, perIp.url)
  t.equal(await refusedWith(perIp.url), 429, 'one past maxConnectionsPerIp: 429 before the upgrade')

  const perUser = await build(t, { maxConnectionsPerUser: 2 }, (app) => {
    app.addHook('onRequest', async (request) => {
      (request as unknown as { user: unknown }).user = { id: request.headers['x-user'] }
    })
  })
  await connect(t, perUser.url, { headers: { 'x-user': 'ann' } })
  await connect(t, perUser.url, { headers: { 'x-user': 'ann' } })
  t.equal(await refusedWith(perUser.url, { 'x-user': 'ann' }), 429, 'one past maxConnectionsPerUser (hook auth): 429')
  t.equal(await refusedWith(perUser.url, { 'x-user': 'bob' }), 101, 'another user is fine')

  const byMessage = await build(t, { maxConnectionsPerUser: 1, authenticate: (token) => ({ user: { id: token } }) })
  const first = await connect(t, byMessage.url, { welcome: false })
  t.equal((await first.request('auth', { token: 'ann' })).type, 'reply')
  const second = await connect(t, byMessage.url, { welcome: false })
  second.send({ type: 'auth', id: 1, data: { token: 'ann' } })
  t.equal((await second.closed).code, 4504, 'one past maxConnectionsPerUser (auth message): 4504')
})

t.test('origin allowlist: a listed origin passes, others get 403 before the upgrade', async (t) => {
  const { url } = await build(t, { allowedOrigins: ['https://app.example'] })
  t.equal(await refusedWith(url, { origin: 'https://app.example' }), 101)
  t.equal(await refusedWith(url, { origin: 'https://evil.example' }), 403)
  t.equal(await refusedWith(url, { origin: 'https://app.example.evil.example' }), 403, 'no prefix match')
  t.equal(await refusedWith(url), 101, 'non-browser clients send no Origin')
})

t.test('maxPayload: exactly the limit passes, one byte more closes with 1009', async (t) => {
  const { url } = await build(t, { maxPayload: 1024 })
  const c = await connect(t, url)
  const frame = (size: number) => {
    const base = '{"type":"ping","id":"x","pad":""}'
    return base.replace('"pad":""', `"pad":"${'p'.repeat(size - base.length)}"`)
  }
  t.equal(Buffer.byteLength(frame(1024)), 1024)
  c.send(frame(1024))
  t.equal((await c.nextOfType('pong')).id, 'x')
  c.send(frame(1025))
  t.equal((await c.closed).code, 1009)
})

t.test('expiring credentials: 4005 unless refreshed; a refresh cannot change the user', async (t) => {
  const logs: string[] = []
  const { url } = await build(t, {
    authenticate: (token) => {
      const [user, ms] = token.split(':')
      return { user: { id: user }, expiresAt: Date.now() + Number(ms) }
    }
  }, undefined, { logger: { level: 'trace', stream: { write: (line: string) => { logs.push(line) } } } })
  const expiring = await connect(t, url, { welcome: false })
  await expiring.request('auth', { token: 'ann:150' })
  const start = Date.now()
  t.same(await expiring.closed, { code: 4005, reason: 'credentials expired' })
  t.ok(Date.now() - start >= 100, 'not before the expiry')

  const refreshed = await connect(t, url, { welcome: false })
  await refreshed.request('auth', { token: 'bob:200' })
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal((await refreshed.request('auth', { token: 'bob:60000' })).type, 'reply', 'refreshed in time')
  await new Promise((resolve) => setTimeout(resolve, 250))
  refreshed.send({ type: 'ping', id: 'alive' })
  t.equal((await refreshed.nextOfType('pong')).id, 'alive', 'still open past the first expiry')
  const swapped = await refreshed.request('auth', { token: 'eve:60000' })
  t.equal(swapped.error?.code, 'UNAUTHORIZED')
  t.equal((await refreshed.closed).code, 4500, 'a refresh with another user\'s credentials closes with 4500')
  t.notOk(logs.some((l) => l.includes('ann:150') || l.includes('bob:60000')), 'tokens never reach the logs')
})

t.test('maxDepth: nesting at the limit passes, one level more is BAD_REQUEST; non-finite numbers too', async (t) => {
  const { url } = await build(t, { maxDepth: 4 }, (app) => {
    app.realtime.route({ type: 'echo', schema: { data: Type.Any(), reply: Type.Any() }, handler: (d) => d })
    app.realtime.route({ type: 'num', schema: { data: Type.Object({ n: Type.Number() }), reply: Type.Object({ n: Type.Number() }) }, handler: (d) => d })
  })
  const c = await connect(t, url)
  // The envelope is level 1, data level 2.
  t.same((await c.request('echo', { a: { b: { c: 1 } } })).data, { a: { b: { c: 1 } } }, 'envelope, data, a, b: 4 levels, fine')
  c.send('{"type":"echo","id":"deep","data":{"a":{"b":{"c":{"d":1}}}}}')
  const deep = await c.nextOfType('error')
  t.equal(deep.error?.code, 'BAD_REQUEST')
  t.match(deep.error?.message, /nest at most 4/)
  c.send('{"type":"num","id":"inf","data":{"n":1e999}}')
  t.match((await c.nextOfType('error')).error, { code: 'BAD_REQUEST', message: /finite/ }, '1e999 is not a number a schema may see')
  c.send(`{"type":"num","id":"big","data":{"n":1${'0'.repeat(400)}}}`)
  t.match((await c.nextOfType('error')).error, { code: 'BAD_REQUEST', message: /finite/ })
  t.same((await c.request('num', { n: 1.5e300 })).data, { n: 1.5e300 }, 'large finite numbers are fine')
})
