// Prometheus metrics: every metric's value after a scripted session, label values that
// no client can grow, the app's own registry, and option checking.
import t from 'tap'
import { Type } from '@sinclair/typebox'
import Fastify from 'fastify'
import websocket from '@fastify/websocket'
import { Registry } from 'prom-client'
import realtime, { RealtimeError } from '../../lib/index.js'
import { build, connect, until } from '../fixtures/helpers.js'
import { hasRedisServer, startRedisServer } from '../fixtures/redis.js'
import { RedisBroker } from '../../lib/redis.js'

async function values (registry: Registry, name: string): Promise<Array<{ labels: Record<string, unknown>, value: number, metricName?: string }>> {
  const metric = registry.getSingleMetric(name)
  if (metric === undefined) throw new Error(`no metric ${name}`)
  return (await metric.get()).values as never
}

async function value (registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const found = (await values(registry, name)).find((v) => v.metricName === undefined && Object.entries(labels).every(([k, l]) => v.labels[k] === l) && Object.keys(v.labels).length === Object.keys(labels).length)
  return found?.value ?? 0
}

function declare (app: import('fastify').FastifyInstance): void {
  app.realtime.topic('room/:name', { message: Type.Object({ text: Type.String() }), clientPublish: true })
  app.realtime.topic('ticker', { message: Type.Object({ pad: Type.String() }), volatile: true })
  app.realtime.event('big', Type.String())
  app.realtime.route({ type: 'echo', schema: { data: Type.String(), reply: Type.String() }, handler: async (data) => data })
  app.realtime.route({ type: 'fail', schema: { data: Type.Unknown(), errors: { NOT_FOUND: Type.Unknown() } }, handler: () => { throw new RealtimeError('NOT_FOUND', 'nope') } })
}

t.test('every metric after a scripted session', async (t) => {
  const registry = new Registry()
  const { app, url } = await build(t, { metrics: { registry } }, declare)
  const a = await connect(t, url)
  const b = await connect(t, url)
  t.same((await a.request('subscribe', { topic: 'room/x' })).type, 'reply')
  t.same((await b.request('subscribe', { topic: 'room/x' })).type, 'reply')
  t.same((await a.request('echo', 'hi')).data, 'hi')
  t.same((await a.request('fail', {})).error?.code, 'NOT_FOUND')
  t.same((await a.request('no.such.type', {})).error?.code, 'UNKNOWN_TYPE')
  t.same((await b.request('publish', { topic: 'room/x', data: { text: 'hello' } })).type, 'reply')
  await a.nextOfType('message')
  await b.nextOfType('message')
  await app.realtime.publish('room/x', { text: 'from the server' })
  await a.nextOfType('message')
  await b.nextOfType('message')

  t.equal(await value(registry, 'realtime_connections', { state: 'open' }), 2)
  t.equal(await value(registry, 'realtime_connections', { state: 'authenticating' }), 0)
  t.equal(await value(registry, 'realtime_connections_opened_total'), 2)
  t.equal(await value(registry, 'realtime_messages_received_total', { type: 'subscribe' }), 2)
  t.equal(await value(registry, 'realtime_messages_received_total', { type: 'echo' }), 1)
  t.equal(await value(registry, 'realtime_messages_received_total', { type: 'publish' }), 1)
  t.equal(await value(registry, 'realtime_messages_received_total', { type: 'unknown' }), 1, 'an undeclared type is counted as unknown')
  t.equal(await value(registry, 'realtime_messages_sent_total', { type: 'welcome' }), 2)
  // 2 subscribe replies, echo, publish reply
  t.equal(await value(registry, 'realtime_messages_sent_total', { type: 'reply' }), 4)
  t.equal(await value(registry, 'realtime_messages_sent_total', { type: 'error' }), 2)
  t.equal(await value(registry, 'realtime_messages_sent_total', { type: 'message' }), 4, 'two publications to two subscribers')
  t.equal(await value(registry, 'realtime_deliveries_total', { pattern: 'room/:name' }), 4)
  t.equal(await value(registry, 'realtime_errors_total', { code: 'NOT_FOUND' }), 1)
  t.equal(await value(registry, 'realtime_errors_total', { code: 'UNKNOWN_TYPE' }), 1)
  t.equal(await value(registry, 'realtime_subscriptions', { pattern: 'room/:name' }), 2)
  t.equal(await value(registry, 'realtime_broker_up'), 1)
  // A burst: the first frame is written at once, the next ones wait (corked) until this
  // event-loop iteration ends, so the gauge, read now, sees them.
  app.realtime.broadcast('big', 'x'.repeat(4000))
  app.realtime.broadcast('big', 'y'.repeat(4000))
  const queued = (registry.getSingleMetric('realtime_send_queue_bytes') as import('prom-client').Gauge).get()
  t.ok((await queued).values[0].value >= 4000, 'the queue of the largest connection')
  for (const c of [a, b]) {
    t.equal((await c.nextOfType('big')).data, 'x'.repeat(4000))
    t.equal((await c.nextOfType('big')).data, 'y'.repeat(4000), 'in order')
  }
  t.equal(await value(registry, 'realtime_send_queue_bytes'), 0, 'and nothing once it is written')
  t.equal(await value(registry, 'realtime_messages_sent_total', { type: 'big' }), 4, 'two broadcasts to two connections, counted by event name')
  const handler = await values(registry, 'realtime_handler_duration_seconds')
  const count = (route: string) => handler.find((v) => v.metricName === 'realtime_handler_duration_seconds_count' && v.labels.route === route)?.value
  t.equal(count('echo'), 1, 'an async handler is timed')
  t.equal(count('fail'), 1, 'a throwing handler is timed')
  const exposition = await registry.metrics()
  t.match(exposition, /# TYPE realtime_handler_duration_seconds histogram\n/)
  t.match(exposition, /realtime_handler_duration_seconds_bucket\{route="echo",le="\+Inf"\} 1\n/)
  t.match(exposition, /realtime_handler_duration_seconds_bucket\{route="echo",le="2\.5"\} 1\n/, 'buckets are cumulative')
  t.match(exposition, /realtime_publish_duration_seconds_count 2\n/)
  const publish = await values(registry, 'realtime_publish_duration_seconds')
  t.equal(publish.find((v) => v.metricName === 'realtime_publish_duration_seconds_count')?.value, 2)

  registry.resetMetrics()
  t.equal((await values(registry, 'realtime_handler_duration_seconds')).length, 0, 'registry.resetMetrics() empties the histograms too')

  await b.request('unsubscribe', { topic: 'room/x' })
  t.equal(await value(registry, 'realtime_subscriptions', { pattern: 'room/:name' }), 1)
  b.close()
  await b.closed
  await until(() => app.realtime.stats().connections.active === 1)
  t.equal(await value(registry, 'realtime_disconnects_total', { code: '1005' }), 1, 'a close without a code')
  t.equal(await value(registry, 'realtime_connections', { state: 'open' }), 1)
  const [last] = [...app.realtime.connections]
  app.realtime.disconnect(last.id, 4503)
  await a.closed
  await until(() => app.realtime.stats().connections.active === 0)
  t.equal(await value(registry, 'realtime_disconnects_total', { code: '4503' }), 1)
})

t.test('presence changes are sent as join and leave; a connection awaiting auth is authenticating', async (t) => {
  const registry = new Registry()
  const { app, url } = await build(t, { metrics: { registry }, authenticate: (token) => ({ user: { id: token } }) }, (app) => {
    app.realtime.topic('lobby', { message: Type.Object({ text: Type.String() }), presence: true })
  })
  const waiting = await connect(t, url, { welcome: false })
  await until(() => app.realtime.stats().connections.authenticating === 1)
  t.equal(await value(registry, 'realtime_connections', { state: 'authenticating' }), 1, 'connected, no auth yet')
  t.equal(await value(registry, 'realtime_connections', { state: 'open' }), 0)
  await waiting.request('auth', { token: 'ann' })
  await waiting.nextOfType('welcome')
  t.equal(await value(registry, 'realtime_connections', { state: 'authenticating' }), 0)
  t.equal(await value(registry, 'realtime_connections', { state: 'open' }), 1)

  await waiting.request('subscribe', { topic: 'lobby', presence: true })
  const bob = await connect(t, url, { welcome: false })
  await bob.request('auth', { token: 'bob' })
  await bob.request('subscribe', { topic: 'lobby', presence: true })
  await waiting.nextOfType('join')
  await bob.request('unsubscribe', { topic: 'lobby' })
  await waiting.nextOfType('leave')
  t.equal(await value(registry, 'realtime_messages_sent_total', { type: 'join' }), 1, 'a join is counted as join')
  t.equal(await value(registry, 'realtime_messages_sent_total', { type: 'leave' }), 1)
  t.equal(await value(registry, 'realtime_messages_sent_total', { type: 'message' }), 0, 'and not as a message')
})

t.test('broker_up falls to 0 while Redis is away', { skip: hasRedisServer() ? false : 'redis-server is not installed' }, async (t) => {
  const server = await startRedisServer(t)
  const broker = new RedisBroker({ redis: server.url })
  t.teardown(() => broker.close())
  const registry = new Registry()
  await build(t, { metrics: { registry }, broker }, () => {})
  t.equal(await value(registry, 'realtime_broker_up'), 1)
  await server.kill()
  await until(async () => await value(registry, 'realtime_broker_up') === 0)
  t.pass('0 once the connection is lost')
  await server.start()
  await until(async () => await value(registry, 'realtime_broker_up') === 1, 10_000)
  t.pass('1 again once it is back')
})

t.test('drops on a volatile topic are counted by pattern', async (t) => {
  const registry = new Registry()
  const { app, url } = await build(t, { metrics: { registry }, maxQueue: 1024 }, declare)
  const slow = await connect(t, url)
  await slow.request('subscribe', { topic: 'ticker' })
  // A reader that stops reading: the server's queue grows until publications are dropped.
  ;(slow.ws as unknown as { _socket: import('node:net').Socket })._socket.pause()
  const pad = 'x'.repeat(4000)
  for (let i = 0; i < 200 && await value(registry, 'realtime_dropped_total', { pattern: 'ticker' }) === 0; i++) {
    await app.realtime.publish('ticker', { pad })
  }
  t.ok(await value(registry, 'realtime_dropped_total', { pattern: 'ticker' }) > 0)
})

t.test('a client sending random types and topics does not grow the registry', async (t) => {
  const registry = new Registry()
  // Limits raised out of the way: this client misbehaves on purpose, and must stay connected.
  const { app, url } = await build(t, { metrics: { registry }, errorBudget: { max: 1e6 }, rateLimit: { rate: 1e6, burst: 1e6 } }, declare)
  const c = await connect(t, url)
  const series = async () => (await registry.getMetricsAsJSON()).reduce((n, m) => n + m.values.length, 0)
  const send = async (round: number) => {
    for (let i = 0; i < 20; i++) {
      const r = `${round}-${i}-${Math.random()}`
      await c.request(`t${r.replace(/[^a-z0-9]/gi, '')}`, {})
      await c.request('subscribe', { topic: `nope/${r}` })
      await c.request('publish', { topic: `room/${r}`, data: { wrong: true } })
      await c.request('unsubscribe', { topic: `x${r}` })
    }
    c.send('not json')
    c.send({ type: `zz${round}` })
    // Answered in order: once the pong is here, so are the answers before it.
    c.send({ type: 'ping', id: `p${round}` })
    await c.nextOfType('pong')
  }
  await send(1)
  const before = await series()
  await send(2)
  t.equal(await series(), before, 'the same series after a second round of new names')
  const text = await registry.metrics()
  t.notMatch(text, /nope\/|zz1|zz2|t1-/, 'no client-made name appears as a label')
  t.match(text, /type="unknown"/)
  t.match(text, /type="invalid"/)

  // Close codes a client picks are one `other` value, whichever they are.
  for (const code of [3001, 3999, 4321, 4999]) {
    const peer = await connect(t, url)
    peer.ws.close(code)
    await peer.closed
  }
  await until(() => app.realtime.stats().connections.active === 1)
  t.equal(await value(registry, 'realtime_disconnects_total', { code: 'other' }), 4)
  t.notMatch(await registry.metrics(), /code="(3001|3999|4321|4999)"/)
})

t.test('metrics: true gives each app its own registry, app.realtime.metrics, emptied on close', async (t) => {
  const { register } = await import('prom-client')
  const app = Fastify()
  await app.register(realtime, { metrics: true, path: '/ws' })
  await app.ready()
  const registry = app.realtime.metrics as unknown as Registry
  t.ok(registry.getSingleMetric('realtime_connections'), 'registered in app.realtime.metrics')
  t.equal(register.getSingleMetric('realtime_connections'), undefined, 'not in prom-client\'s global register')
  await app.close()
  t.equal(registry.getSingleMetric('realtime_connections'), undefined)
  const again = Fastify()
  await again.register(realtime, { metrics: { prefix: 'chat_' } })
  t.ok((again.realtime.metrics as unknown as Registry).getSingleMetric('chat_connections_opened_total'), 'a prefix is honoured')
  await again.close()
})

t.test('metrics: true in two apps of one process: each serves its own metrics', async (t) => {
  const serve = (app: import('fastify').FastifyInstance): void => {
    declare(app)
    app.get('/metrics', async (_request, reply) => reply.type(app.realtime.metrics!.contentType).send(await app.realtime.metrics!.metrics()))
  }
  const first = await build(t, { metrics: true }, serve)
  const second = await build(t, { metrics: true }, serve)
  await connect(t, first.url)
  await until(() => first.app.realtime.stats().connections.active === 1)
  const scrape = async (app: import('fastify').FastifyInstance): Promise<string> => (await app.inject('/metrics')).body
  t.match(await scrape(first.app), /^realtime_connections_opened_total 1$/m)
  t.match(await scrape(second.app), /^realtime_connections_opened_total 0$/m)
})

t.test('metrics: true in two encapsulated contexts of one app: each has its own registry', async (t) => {
  const app = Fastify()
  await app.register(websocket)
  const registries: unknown[] = []
  for (const prefix of ['/a', '/b']) {
    app.register(async (context) => {
      await context.register(realtime, { metrics: true })
      registries.push(context.realtime.metrics)
    }, { prefix })
  }
  await app.ready()
  t.teardown(() => app.close())
  t.equal(registries.length, 2)
  t.not(registries[0], registries[1])
})

t.test('two registrations in one given registry fail at register, naming the remedy', async (t) => {
  const { register } = await import('prom-client')
  const first = Fastify()
  await first.register(realtime, { metrics: { registry: register } })
  t.teardown(() => first.close())
  t.ok(register.getSingleMetric('realtime_connections'), 'prom-client\'s global register when asked for')
  const second = Fastify()
  await t.rejects(async () => { await second.register(realtime, { metrics: { registry: register } }) }, {
    code: 'FST_REALTIME_INVALID_OPTION',
    message: /"metrics".*already holds realtime_connections.*own `registry`.*own `prefix`/
  })
  await second.close()
  const third = Fastify()
  await third.register(realtime, { metrics: { registry: register, prefix: 'other_' } })
  t.ok(register.getSingleMetric('other_connections'), 'another prefix in the same registry works')
  await third.close()
})

t.test('two apps in one process each count only their own connections', async (t) => {
  const one = new Registry()
  const two = new Registry()
  const first = await build(t, { metrics: { registry: one } }, declare)
  await build(t, { metrics: { registry: two } }, declare)
  await connect(t, first.url)
  t.equal(await value(one, 'realtime_connections_opened_total'), 1)
  t.equal(await value(two, 'realtime_connections_opened_total'), 0)
})

t.test('bad metrics options fail at register, naming the option', async (t) => {
  for (const [metrics, name] of [[{ prefix: 'bad-prefix' }, 'metrics'], [{ registry: {} }, 'metrics.registry'], [{ registry: null }, 'metrics.registry'], ['yes', 'metrics'], [{ extra: 1 }, 'metrics']] as const) {
    const app = Fastify()
    await t.rejects(async () => { await app.register(realtime, { metrics: metrics as never }) }, { code: 'FST_REALTIME_INVALID_OPTION', message: new RegExp(`"${name.replace('.', '\\.')}"`) })
    await app.close()
  }
})
