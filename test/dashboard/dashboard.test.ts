// The dashboard's server side: who may reach it (page, assets, API, live topic), the
// snapshots it publishes, the disconnect actions and their audit lines, its options,
// and that it listens on the diagnostics channels only while someone watches.
import t from 'tap'
import { Writable } from 'node:stream'
import { Type } from '@sinclair/typebox'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import realtime, { diagnosticsChannels } from '../../lib/index.js'
import realtimeDashboard, { DASHBOARD_TOPIC, type Snapshot } from '../../lib/dashboard/index.js'
import { connect, until } from '../fixtures/helpers.js'

const operator = (request: FastifyRequest): boolean => request.headers['x-operator'] === 'yes'

async function start (t: Tap, extra: Record<string, unknown> = {}, realtimeOptions: Record<string, unknown> = {}): Promise<{ app: FastifyInstance, base: string, url: string, logs: Array<Record<string, unknown>> }> {
  const logs: Array<Record<string, unknown>> = []
  const stream = new Writable({ write (chunk, _enc, done) { logs.push(JSON.parse(chunk.toString())); done() } })
  const app = Fastify({ logger: { level: 'info', stream } })
  await app.register(realtime, { getUser: (request) => request.headers['x-user'], ...realtimeOptions })
  await app.register(realtimeDashboard, { authorize: operator, interval: 250, ...extra })
  app.realtime.route({ type: 'echo', schema: { data: Type.String(), reply: Type.String() }, handler: async (data) => data })
  app.realtime.topic('room/:name', { message: Type.Object({ n: Type.Number() }) })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const port = (app.server.address() as { port: number }).port
  return { app, base: `http://127.0.0.1:${port}/realtime/dashboard`, url: `ws://127.0.0.1:${port}/ws`, logs }
}
type Tap = { teardown: (fn: () => unknown) => void }

const asOperator = { headers: { 'x-operator': 'yes' } }

t.test('nothing is reachable without authorize saying yes', async (t) => {
  const { base, url } = await start(t)
  for (const path of ['', '/assets/uplot.js', '/assets/dashboard.js', '/api/connections']) {
    t.equal((await fetch(base + path)).status, 403, `GET ${path || '/'} refused`)
    t.equal((await fetch(base + path, asOperator)).status, 200, `GET ${path || '/'} served to an operator`)
  }
  const post = await fetch(base + '/api/disconnect', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"userId":"u"}' })
  t.equal(post.status, 403)
  const stranger = await connect(t, url)
  t.equal((await stranger.request('subscribe', { topic: DASHBOARD_TOPIC })).error?.code, 'FORBIDDEN', 'the live topic refuses a connection whose request is not authorized')
  t.equal((await stranger.request('publish', { topic: DASHBOARD_TOPIC, data: {} })).error?.code, 'FORBIDDEN', 'and nobody publishes on it')
})

t.test('an app that does not register it has no dashboard', async (t) => {
  const app = Fastify()
  await app.register(realtime)
  t.teardown(() => app.close())
  t.equal((await app.inject('/realtime/dashboard')).statusCode, 404)
})

t.test('the page and its chart library come from the package, no CDN', async (t) => {
  const { base } = await start(t)
  const page = await (await fetch(base, asOperator)).text()
  t.notMatch(page, /https?:\/\//, 'no external URL in the page')
  t.match(page, /src="\/realtime\/dashboard\/assets\/uplot\.js"/)
  const uplot = await fetch(base + '/assets/uplot.js', asOperator)
  t.match(uplot.headers.get('content-type'), /javascript/)
  t.match(await uplot.text(), /uPlot/)
  t.equal((await fetch(base + '/assets/nope.js', asOperator)).status, 404)
})

t.test('an authorized connection gets a snapshot every interval, with live figures', async (t) => {
  const { app, url } = await start(t)
  const watcher = await connect(t, url, asOperator)
  t.equal((await watcher.request('subscribe', { topic: DASHBOARD_TOPIC })).type, 'reply')
  const user = await connect(t, url, { headers: { 'x-user': 'ann' } })
  await user.request('subscribe', { topic: 'room/a' })
  // The dashboard starts listening at its first tick with a watcher: activity goes on until a snapshot shows it.
  let snapshot: Snapshot | undefined
  let errors = 0
  for (let i = 0; i < 500; i++) {
    await app.realtime.publish('room/a', { n: i })
    await user.request('echo', 'x')
    if (errors === 0 && diagnosticsChannels.error.hasSubscribers) {
      await user.request('nope', {})
      errors++
    }
    const frame = watcher.frames.findLast((f) => f.type === 'message' && f.topic === DASHBOARD_TOPIC)
    snapshot = frame?.data as Snapshot
    if (snapshot !== undefined && snapshot.rates.deliveries > 0 && snapshot.latency.p50 !== null && Object.keys(snapshot.errors).length > 0) break
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  const s = snapshot as Snapshot
  t.equal(s.connections.open, 2)
  t.ok(s.rates.in > 0 && s.rates.out > 0)
  t.ok(s.rates.deliveries > 0, 'deliveries are charted')
  t.ok(typeof s.latency.p50 === 'number' && s.latency.p50 >= 0, 'so is handler latency')
  t.same(s.errors, { UNKNOWN_TYPE: 1 })
  t.equal(s.patterns['room/:name'], 1)
  t.equal(s.broker, true)
  t.ok(s.process.rss > 0 && s.process.cpu >= 0)
})

t.test('disconnect a connection or a user: 4503, answered and logged', async (t) => {
  const { app, base, logs } = await start(t)
  const url = base.replace('http', 'ws').replace('/realtime/dashboard', '/ws')
  const ann = await connect(t, url, { headers: { 'x-user': 'ann' } })
  const bob1 = await connect(t, url, { headers: { 'x-user': 'bob' } })
  const bob2 = await connect(t, url, { headers: { 'x-user': 'bob' } })
  const post = (body: unknown) => fetch(base + '/api/disconnect', { method: 'POST', headers: { 'content-type': 'application/json', 'x-operator': 'yes' }, body: JSON.stringify(body) })

  const list = await (await fetch(base + '/api/connections?q=ann', asOperator)).json() as { total: number, matched: number, rows: Array<{ id: string, userId: string }> }
  t.equal(list.total, 3)
  t.equal(list.matched, 1)
  const annId = list.rows[0].id
  let res = await post({ connectionId: annId })
  t.same(await res.json(), { disconnected: 'connection', connectionId: annId })
  t.same(await ann.closed, { code: 4503, reason: 'disconnected by an operator' })

  res = await post({ userId: 'bob' })
  t.same(await res.json(), { disconnected: 'user', userId: 'bob' })
  t.equal((await bob1.closed).code, 4503)
  t.equal((await bob2.closed).code, 4503)
  await until(() => app.realtime.connections.size === 0)

  t.equal((await post({ connectionId: annId })).status, 404, 'a connection that is gone')
  t.equal((await post({ nothing: 1 })).status, 400, 'a body that names nobody')
  t.match(logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('realtime dashboard:')), [
    { msg: 'realtime dashboard: disconnect connection', connectionId: annId, done: true, operator: '127.0.0.1' },
    { msg: 'realtime dashboard: disconnect user', userId: 'bob' },
    { msg: 'realtime dashboard: disconnect connection', done: false }
  ])
})

t.test('the connections table searches and caps its rows', async (t) => {
  const { base, url } = await start(t, { maxRows: 2 })
  for (const name of ['ann', 'bob', 'cat']) await connect(t, url, { headers: { 'x-user': name } })
  const all = await (await fetch(base + '/api/connections', asOperator)).json() as { total: number, matched: number, rows: Array<Record<string, unknown>> }
  t.equal(all.total, 3)
  t.equal(all.matched, 3)
  t.equal(all.rows.length, 2, 'maxRows')
  t.match(all.rows[0], { userId: String, address: '127.0.0.1', connectedAt: Number, subscriptions: [], queuedBytes: 0, messagesIn: 0, messagesOut: 1 })
  const none = await (await fetch(base + '/api/connections?q=zzz', asOperator)).json() as { matched: number }
  t.equal(none.matched, 0)
})

t.test('listens on the channels only while a dashboard watches; close clears its timer', async (t) => {
  const { app, url } = await start(t)
  t.equal(diagnosticsChannels.delivery.hasSubscribers, false, 'nobody watching: the core publishes nothing')
  const watcher = await connect(t, url, asOperator)
  await watcher.request('subscribe', { topic: DASHBOARD_TOPIC })
  await until(() => diagnosticsChannels.delivery.hasSubscribers)
  await watcher.request('unsubscribe', { topic: DASHBOARD_TOPIC })
  await until(() => !diagnosticsChannels.delivery.hasSubscribers)
  await watcher.request('subscribe', { topic: DASHBOARD_TOPIC })
  await until(() => diagnosticsChannels.delivery.hasSubscribers)
  await app.close()
  t.equal(diagnosticsChannels.delivery.hasSubscribers, false, 'closed: listening stops')
})

t.test('where the plugin authenticates by message, the page gets a token from authToken', async (t) => {
  const { base, url } = await start(t, { authToken: () => 'op-token' }, {
    authenticate: (token: string) => token === 'op-token' ? { user: { id: 'operator' } } : null
  })
  t.equal((await fetch(base + '/api/token')).status, 403)
  const token = await (await fetch(base + '/api/token', asOperator)).json() as { token: string }
  t.same(token, { token: 'op-token' })
  t.match(await (await fetch(base, asOperator)).text(), /data-auth="token"/)
  const c = await connect(t, url, { ...asOperator, welcome: false })
  t.equal((await c.request('auth', { token: token.token })).type, 'reply')
  t.equal((await c.request('subscribe', { topic: DASHBOARD_TOPIC })).type, 'reply')
})

t.test('bad options fail at register, naming the option', async (t) => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{}, 'authorize'],
    [{ authorize: true }, 'authorize'],
    [{ authorize: operator, path: 'dash' }, 'path'],
    [{ authorize: operator, path: '/dash/' }, 'path'],
    [{ authorize: operator, interval: 100 }, 'interval'],
    [{ authorize: operator, maxRows: 0 }, 'maxRows'],
    [{ authorize: operator, authToken: 'x' }, 'authToken']
  ]
  for (const [options, name] of cases) {
    const app = Fastify()
    await app.register(realtime)
    await t.rejects(async () => { await app.register(realtimeDashboard, options as never) }, { code: 'FST_REALTIME_INVALID_OPTION', message: new RegExp(`"${name}"`) })
    await app.close()
  }
  const lonely = Fastify()
  await t.rejects(async () => { await lonely.register(realtimeDashboard, { authorize: operator }) }, /fastify-realtime/, 'needs the plugin registered first')
})
