// A shutdown that ends when it says and lets clients know why: handlers in flight
// finish and are answered first, the close code is a choice, idle and speculative
// HTTP sockets do not hold app.close(), and a peer that never answers a close (a
// slow consumer) is terminated after closeGrace.
import t from 'tap'
import { createConnection } from 'node:net'
import { Agent, request } from 'node:http'
import { Type } from '@sinclair/typebox'
import Fastify from 'fastify'
import realtime from '../../lib/index.js'
import { build, connect, until, watchCrashes } from '../fixtures/helpers.js'
import { WebSocket } from 'ws'
import { createClient } from '../../lib/client/index.js'

t.test('a handler running when shutdown starts finishes, publishes and replies before the close', async (t) => {
  let entered!: () => void
  const started = new Promise<void>((resolve) => { entered = resolve })
  const { app, url } = await build(t, {}, (app) => {
    app.realtime.topic('feed', { message: Type.Object({ n: Type.Integer() }) })
    app.realtime.route({
      type: 'slow',
      schema: { reply: Type.Object({ offset: Type.Integer() }) },
      handler: async () => {
        entered()
        await new Promise((resolve) => setTimeout(resolve, 300))
        return { offset: (await app.realtime.publish('feed', { n: 1 })).offset }
      }
    })
    app.realtime.route({ type: 'quick', handler: () => {} })
  })
  const c = await connect(t, url)
  await c.request('subscribe', { topic: 'feed' })
  c.send({ type: 'slow', id: 'slow' })
  await started
  const closing = app.close()
  // Sent after the shutdown began: refused as temporary, to be sent again after reconnecting.
  c.send({ type: 'quick', id: 'late' })
  const late = await c.next((f) => f.id === 'late')
  t.match(late.error, { code: 'UNAVAILABLE', temporary: true, retryAfterMs: 1000 })
  const published = await c.nextOfType('message')
  t.equal(published.offset, 1, 'its publication went out')
  t.same((await c.next((f) => f.id === 'slow')).data, { offset: 1 }, 'and its reply')
  t.same(await c.closed, { code: 1012, reason: 'server restarting' }, 'then the close')
  await closing
  await t.rejects(app.realtime.publish('feed', { n: 2 }), { code: 'FST_REALTIME_CLOSED' }, 'after the shutdown nothing publishes')
  t.throws(() => app.realtime.route({ type: 'again', handler: () => {} }), { code: 'FST_REALTIME_DECLARED_AFTER_CLOSE', message: 'Cannot declare route "again": fastify-realtime is closed' })
  t.throws(() => app.realtime.topic('t', { message: Type.String() }), { code: 'FST_REALTIME_DECLARED_AFTER_CLOSE' })
  t.throws(() => app.realtime.event('e', Type.String()), { code: 'FST_REALTIME_DECLARED_AFTER_CLOSE' })
  t.throws(() => app.realtime.addHook('onConnect', () => {}), { code: 'FST_REALTIME_DECLARED_AFTER_CLOSE' })
})

t.test('a ping during shutdown is answered UNAVAILABLE, as every other message is', async (t) => {
  let entered!: () => void
  let release!: () => void
  const started = new Promise<void>((resolve) => { entered = resolve })
  const held = new Promise<void>((resolve) => { release = resolve })
  const { app, url } = await build(t, {}, (app) => {
    app.realtime.route({ type: 'hold', handler: async () => { entered(); await held } })
  })
  const c = await connect(t, url)
  c.send({ type: 'ping', id: 'early-ping' })
  t.same(await c.next((f) => f.id === 'early-ping'), { type: 'pong', id: 'early-ping' }, 'before the shutdown: pong')
  c.send({ type: 'hold', id: 'hold' })
  await started
  const closing = app.close()
  c.send({ type: 'ping', id: 'late-ping' })
  const late = await c.next((f) => f.id === 'late-ping')
  t.match(late, { type: 'error', error: { code: 'UNAVAILABLE', temporary: true, retryAfterMs: 1000 } }, 'not a pong')
  c.send({ type: 'ping' })
  t.match(await c.next((f) => f.id === undefined), { type: 'error', error: { code: 'UNAVAILABLE' } }, 'an id-less ping too')
  release()
  t.match(await c.next((f) => f.id === 'hold'), { type: 'reply' }, 'the handler in flight is still answered')
  t.equal((await c.closed).code, 1012)
  await closing
})

t.test('the close code is a choice: the closeCode option, or app.realtime.close({ code, reason })', async (t) => {
  const { url } = await build(t, { closeCode: 1001 })
  const a = await connect(t, url)
  const { app: other, url: otherUrl } = await build(t)
  const b = await connect(t, otherUrl)
  await other.realtime.close({ code: 1001, reason: 'maintenance' })
  t.same(await b.closed, { code: 1001, reason: 'maintenance' })
  await other.realtime.close({ code: 1012 })
  t.equal(other.realtime.stats().connections.active, 0, 'a second close waits for the first and changes nothing')
  a.close()
  await a.closed
  const app = Fastify()
  await t.rejects(async () => { await app.register(realtime, { closeCode: 4000 } as never).ready() }, { code: 'FST_REALTIME_INVALID_OPTION', message: 'Invalid fastify-realtime option "closeCode": Expected one of 1012, 1001, 1000' })
  await app.close()
})

t.test('close({ code: 1000 }) stops for good: clients get 1000 and the bundled client does not reconnect', async (t) => {
  const { app, url } = await build(t)
  const raw = await connect(t, url)
  const client = createClient({ url, WebSocket, backoff: { initialDelay: 50, maxDelay: 100 } })
  t.teardown(() => client.close())
  const attempts: number[] = []
  const closes: Array<{ code: number, reconnect: boolean }> = []
  client.on('attempt', (e) => { attempts.push(e.attempt) })
  client.on('close', (e) => { closes.push({ code: e.code, reconnect: e.reconnect }) })
  await until(() => client.state === 'open')
  await t.rejects(app.realtime.close({ code: 1002 } as never), { code: 'FST_REALTIME_INVALID_OPTION', message: 'Invalid fastify-realtime option "close({ code })": must be one of 1000, 1001, 1012 (got 1002)' }, 'from JavaScript, a wrong code names the allowed ones')
  t.equal(app.realtime.stats().connections.active, 2, 'and closes nothing')
  await app.realtime.close({ code: 1000 })
  t.same(await raw.closed, { code: 1000, reason: 'server stopped' })
  await until(() => client.state === 'closed')
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal(client.state, 'closed', 'the client stays closed')
  t.same(attempts, [], 'with no attempt to reconnect')
  t.same(closes, [{ code: 1000, reconnect: false }])
})

t.test('the closeCode option 1000 makes app.close() a stop for good', async (t) => {
  const { app, url } = await build(t, { closeCode: 1000 })
  const c = await connect(t, url)
  await app.close()
  t.same(await c.closed, { code: 1000, reason: 'server stopped' })
})

t.test('app.close() ends within closeTimeout + closeGrace whatever the browsers hold', async (t) => {
  const app = Fastify()
  await app.register(realtime, { closeTimeout: 500, closeGrace: 300 })
  app.get('/page', async () => 'page')
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const ws = await connect(t, `ws://127.0.0.1:${port}/ws`)
  // What a browser keeps: a speculative socket that never sends a request...
  const speculative = createConnection(port, '127.0.0.1')
  speculative.on('error', () => {})
  await new Promise((resolve) => speculative.once('connect', resolve))
  // ...and an idle keep-alive connection after a page load.
  const agent = new Agent({ keepAlive: true })
  t.teardown(() => { agent.destroy(); speculative.destroy() })
  await new Promise<void>((resolve, reject) => {
    request({ port, host: '127.0.0.1', path: '/page', agent }, (res) => { res.resume(); res.once('end', resolve) }).once('error', reject).end()
  })
  const start = Date.now()
  await app.close()
  const took = Date.now() - start
  t.ok(took < 500 + 300 + 1000, `app.close() took ${took} ms`)
  t.equal((await ws.closed).code, 1012)
})

t.test('app.close() is bounded by closeTimeout + closeGrace with a handler that never settles and a peer that stopped reading', async (t) => {
  const crashes = watchCrashes(t)
  const closeTimeout = 300
  const closeGrace = 200
  let entered!: () => void
  const started = new Promise<void>((resolve) => { entered = resolve })
  const disconnects: number[] = []
  const { app, url } = await build(t, { closeTimeout, closeGrace, heartbeat: { interval: 60_000, timeout: 60_000 } }, (app) => {
    app.realtime.route({ type: 'forever', handler: () => { entered(); return new Promise<never>(() => {}) } })
    app.realtime.addHook('onDisconnect', (_connection, { code }) => { disconnects.push(code) })
  })
  const busy = await connect(t, url)
  busy.send({ type: 'forever', id: 'f' })
  await started
  // A peer that stopped reading never sees the close frame, so never answers it.
  const deaf = await connect(t, url)
  const deafSocket = (deaf.ws as unknown as { _socket: { pause: () => void, resume: () => void } })._socket
  deafSocket.pause()
  const start = Date.now()
  await app.close()
  const took = Date.now() - start
  // At least: the wait for the handler, then the grace the deaf peer never used.
  t.ok(took >= closeTimeout + closeGrace - 20, `app.close() waited for the handler and the grace (${took} ms)`)
  t.ok(took < closeTimeout + closeGrace + 100 + 1000, `app.close() took ${took} ms, not ws's 30 s or forever`)
  t.equal(app.realtime.stats().connections.active, 0, 'nothing outlives it')
  t.same(await busy.closed, { code: 1012, reason: 'server restarting' }, 'the peer with the handler in flight hears 1012')
  // Reading again, the deaf peer finds the close frame the server sent before cutting it off.
  deafSocket.resume()
  t.same(await deaf.closed, { code: 1012, reason: 'server restarting' }, 'the peer that stopped reading hears 1012 too')
  t.same(disconnects, [1012, 1012], 'onDisconnect hears the shutdown code for both')
  t.equal(crashes.uncaught + crashes.unhandled, 0)
})

t.test('a slow consumer closed with 4008 is terminated after closeGrace: registry, presence and onDisconnect follow', async (t) => {
  const disconnects: number[] = []
  const { app, url } = await build(t, { maxQueue: 64 * 1024, closeGrace: 200, heartbeat: { interval: 60_000, timeout: 60_000 } }, (app) => {
    app.realtime.topic('room', { message: Type.Object({ pad: Type.String() }), presence: true, history: { size: 0 } })
    app.realtime.addHook('onDisconnect', (_connection, { code }) => { disconnects.push(code) })
  })
  const watcher = await connect(t, url)
  await watcher.request('subscribe', { topic: 'room' })
  const slow = await connect(t, url)
  await slow.request('subscribe', { topic: 'room' })
  await watcher.nextOfType('join')
  ;(slow.ws as unknown as { _socket: { pause: () => void } })._socket.pause()
  const [, slowConnection] = app.realtime.connections
  while (slowConnection.state === 'open') {
    await app.realtime.publish('room', { pad: 'x'.repeat(30_000) })
    await new Promise((resolve) => setImmediate(resolve))
  }
  const closedAt = Date.now()
  await until(() => app.realtime.connections.size === 1, 3000)
  const took = Date.now() - closedAt
  t.ok(took < 200 + 500, `gone from the registry ${took} ms after its 4008 (not ws's 30 s)`)
  t.same(disconnects, [4008], 'onDisconnect hears 4008, the reason the server closed it')
  const leave = await watcher.nextOfType('leave')
  t.equal(leave.topic, 'room', 'presence: the others hear it leave')
  t.same(app.realtime.stats().connections, { active: 1, total: 2, authenticating: 0 })
})

t.test('the Redis broker away: presence, subscribe and history requests are UNAVAILABLE, not INTERNAL', async (t) => {
  const { reachable, requireOrSkip, startRedisServer, hasRedisServer, uniquePrefix } = await import('../fixtures/redis.js')
  if (!requireOrSkip(t, hasRedisServer() && await reachable(), 'redis-server is not available')) return
  const { RedisBroker } = await import('../../lib/broker/redis.js')
  const redis = await startRedisServer(t)
  const broker = new RedisBroker({ redis: redis.url, prefix: uniquePrefix('unavailable') })
  const { url } = await build(t, { broker }, (app) => {
    app.realtime.topic('room/:name', { message: Type.Object({ text: Type.String() }), presence: true })
    app.realtime.route({ type: 'recent', schema: { reply: Type.Unknown() }, handler: () => app.realtime.history('room/a') })
  })
  t.teardown(() => broker.close())
  const c = await connect(t, url)
  t.equal((await c.request('subscribe', { topic: 'room/a' })).type, 'reply')
  await redis.kill()
  for (const [type, data] of [['presence', { topic: 'room/a' }], ['subscribe', { topic: 'room/b' }], ['recent', undefined]] as const) {
    const answer = await c.request(type, data)
    t.match(answer.error, { code: 'UNAVAILABLE', temporary: true, retryAfterMs: 1000 }, type)
  }
})

t.test('a handler that outlives closeTimeout is answered INTERNAL (it may have run) before the 1012, as any server close answers', async (t) => {
  let entered!: () => void
  const hanging = new Promise<void>((resolve) => { entered = resolve })
  const { app, url } = await build(t, { closeTimeout: 100, closeGrace: 200 }, (app) => {
    app.realtime.route({ type: 'hang', handler: () => { entered(); return new Promise<void>(() => {}) } })
  })
  const c = await connect(t, url)
  c.send({ type: 'hang', id: 'h' })
  await hanging
  const closing = app.close()
  t.match(await c.next((f) => f.id === 'h'), { type: 'error', error: { code: 'INTERNAL', temporary: true, message: /may have run/ } })
  t.equal((await c.closed).code, 1012)
  await closing
})

t.test('a socket accepted after shutdown started hears the shutdown\'s own code (1001 here), not another', async (t) => {
  const app = Fastify()
  await app.register(realtime)
  let entered!: () => void
  const inHook = new Promise<void>((resolve) => { entered = resolve })
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  // Holds the upgrade between admission and accept, while the shutdown starts.
  app.addHook('preHandler', async () => { entered(); await gate })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const ws = new WebSocket(`ws://127.0.0.1:${(app.server.address() as { port: number }).port}/ws`, 'realtime.v1')
  ws.on('error', () => {})
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
  await inHook
  const closing = app.realtime.close({ code: 1001, reason: 'going away' })
  release()
  t.equal(await closed, 1001)
  await closing
})
