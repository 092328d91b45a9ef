import t from 'tap'
import Fastify from 'fastify'
import websocket from '@fastify/websocket'
import { Type } from '@sinclair/typebox'
import { WebSocket } from 'ws'
import realtime from '../../lib/index.js'
import type { RealtimeFacade } from '../../lib/plugin/realtime.js'
import { build, connect, TestClient } from '../fixtures/helpers.js'

t.test('options are checked at register, naming the wrong one', async (t) => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ path: 'ws' }, /"path"/],
    [{ heartbeat: { interval: 0 } }, /"heartbeat\.interval"/],
    [{ heartbeat: { timeout: 'x' } }, /"heartbeat\.timeout"/],
    [{ maxPayload: 1 }, /"maxPayload"/],
    [{ authenticate: 'yes' }, /"authenticate"/],
    [{ broker: 5 }, /"broker"/],
    [{ maxSubscriptions: 1.5 }, /"maxSubscriptions"/]
  ]
  for (const [options, message] of cases) {
    const app = Fastify()
    await t.rejects(async () => { await app.register(realtime, options as never).ready() }, { code: 'FST_REALTIME_INVALID_OPTION', message }, JSON.stringify(options))
    await app.close()
  }
  const app = Fastify()
  await app.register(realtime)
  t.equal(app.realtime.options.path, '/ws')
  t.same(app.realtime.options.heartbeat, { interval: 25000, timeout: 10000 })
  t.equal(app.realtime.options.maxPayload, 65536)
  t.ok(Object.isFrozen(app.realtime.options))
  await app.close()
})

t.test('Fastify hooks run on the upgrade request; a refusal is an HTTP status before any upgrade', async (t) => {
  const { url } = await build(t, {}, (app) => {
    app.addHook('onRequest', async (request, reply) => {
      await new Promise((resolve) => setTimeout(resolve, 20))
      if (request.headers.authorization !== 'Bearer good') return reply.code(401).send({ error: 'nope' })
    })
    app.realtime.route({ type: 'who', schema: { data: Type.Any(), reply: Type.Any() }, handler: () => 'me' })
  })
  const refused = new WebSocket(url, 'realtime.v1')
  const status = await new Promise<number>((resolve) => refused.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)))
  t.equal(status, 401)
  refused.on('error', () => {})
  refused.terminate()

  // Frames sent the moment the socket opens, right after the slow async hook, are all answered.
  const ws = new WebSocket(url, 'realtime.v1', { headers: { authorization: 'Bearer good' } })
  const c = new TestClient(ws)
  t.teardown(() => ws.terminate())
  await new Promise((resolve) => ws.once('open', resolve))
  for (let i = 0; i < 5; i++) c.send({ type: 'who', id: i })
  for (let i = 0; i < 5; i++) t.equal((await c.next((f) => f.id === i)).data, 'me')
})

t.test('subprotocols: ours is chosen; offering only others is a 400; none offered is accepted', async (t) => {
  const { app, url } = await build(t)
  const other = new WebSocket(url, ['graphql-ws'])
  const status = await new Promise<number>((resolve) => other.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)))
  t.equal(status, 400)
  other.on('error', () => {})
  other.terminate()
  const both = new WebSocket(url, ['graphql-ws', 'realtime.v1'])
  await new Promise((resolve) => both.once('open', resolve))
  t.equal(both.protocol, 'realtime.v1')
  both.close()
  const none = new WebSocket(url)
  await new Promise((resolve) => none.once('open', resolve))
  t.equal(none.protocol, '')
  none.close()
  const plain = await app.inject({ method: 'GET', url: '/ws' })
  t.equal(plain.statusCode, 426, 'plain HTTP on the endpoint asks for an upgrade')
})

t.test('heartbeat: a peer that stops answering pings is terminated; a live one stays', async (t) => {
  const interval = 200
  const timeout = 100
  const { app, url } = await build(t, { heartbeat: { interval, timeout } })
  const live = await connect(t, url)
  const deadWs = new WebSocket(url, 'realtime.v1', { autoPong: false })
  const dead = new TestClient(deadWs)
  t.teardown(() => deadWs.terminate())
  await dead.nextOfType('welcome')
  const lastSign = Date.now()
  let pings = 0
  deadWs.on('ping', () => { pings++ })
  const { code } = await dead.closed
  const elapsed = Date.now() - lastSign
  // The sweep's period is internal (heartbeat.ts), read from the facade behind app.realtime.
  const tick = (app.realtime as unknown as RealtimeFacade).heartbeatTick
  t.ok(pings >= 1, 'the silent peer was pinged first')
  t.ok(elapsed >= interval + timeout - 20, `not before interval + timeout (${elapsed} ms)`)
  t.ok(elapsed <= interval + timeout + tick + 150, `within interval + timeout + tick (${elapsed} ms, tick ${tick})`)
  t.ok(code === 4012 || code === 1006, `closed as dead (${code})`)
  t.equal(live.ws.readyState, WebSocket.OPEN, 'the peer that answers pings stays')
  t.equal(app.realtime.connections.size, 1)
})

t.test('app.close(): 1012 to everyone, a bounded wait, then termination; nothing outlives it', async (t) => {
  const app = Fastify()
  await app.register(realtime, { closeTimeout: 300, closeGrace: 300, heartbeat: { interval: 50, timeout: 50 } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const url = `ws://127.0.0.1:${(app.server.address() as { port: number }).port}/ws`
  const polite = await connect(t, url)
  // This peer never answers the close handshake: its socket stops reading.
  const rude = await connect(t, url)
  ;(rude.ws as unknown as { _socket: { pause: () => void } })._socket.pause()
  const start = Date.now()
  await app.close()
  const took = Date.now() - start
  t.equal((await polite.closed).code, 1012)
  t.ok(took >= 250 && took < 2000, `close waited for the handshake, bounded by closeGrace (${took} ms)`)
  ;(rude.ws as unknown as { _socket: { resume: () => void } })._socket.resume()
  t.not((await rude.closed).code, 0, 'the peer that never answered was cut off')
  t.equal(app.realtime.connections.size, 0)
  t.equal(app.realtime.stats().connections.authenticating, 0)
  await t.rejects(app.realtime.publish('x', {}), { code: 'FST_REALTIME_CLOSED' })
})

t.test('authentication by first message', async (t) => {
  const logs: string[] = []
  const { app, url } = await build(t, {
    authTimeout: 300,
    userSchema: Type.Object({ id: Type.String(), name: Type.String() }),
    authenticate: async (token) => {
      await new Promise((resolve) => setTimeout(resolve, 30))
      if (token === 'throw') throw new Error('verifier down')
      return token.startsWith('good-') ? { user: { id: token.slice(5), name: token.slice(5).toUpperCase(), secret: 's3' } } : null
    }
  }, (app) => {
    app.realtime.route({ type: 'whoami', schema: { data: Type.Any(), reply: Type.Object({ id: Type.String() }) }, handler: (_d, ctx) => ctx.user as { id: string } })
  }, { logger: { level: 'debug', stream: { write: (line: string) => { logs.push(line) } } } })

  const c = await connect(t, url, { welcome: false })
  c.send({ type: 'whoami', id: 'early' })
  t.equal((await c.next((f) => f.id === 'early')).error?.code, 'UNAUTHORIZED', 'a frame before auth is refused, not dropped')
  c.send({ type: 'auth', id: 'a', data: { token: 'good-ann' } })
  // Sent while authenticate() runs: handled after it.
  c.send({ type: 'whoami', id: 'w1' })
  c.send({ type: 'whoami', id: 'w2' })
  const reply = await c.next((f) => f.id === 'a')
  t.same(reply.data, { user: { id: 'ann', name: 'ANN' } }, 'the user as its schema shows it')
  const order = [await c.nextOfType('welcome'), await c.next((f) => f.id === 'w1'), await c.next((f) => f.id === 'w2')]
  t.same(order.map((f) => f.type), ['welcome', 'reply', 'reply'])
  t.same(order[1].data, { id: 'ann' })
  t.equal(app.realtime.connections.byUser('ann').length, 1)

  const refreshed = await c.request('auth', { token: 'good-ann' })
  t.same(refreshed.data, { user: { id: 'ann', name: 'ANN' } }, 'auth again refreshes the credentials')

  const bad = await connect(t, url, { welcome: false })
  bad.send({ type: 'auth', id: 1, data: { token: 'wrong' } })
  t.equal((await bad.next((f) => f.id === 1)).error?.code, 'UNAUTHORIZED', 'the auth message is answered')
  t.equal((await bad.closed).code, 4500, 'bad credentials close with 4500')
  const throws = await connect(t, url, { welcome: false })
  throws.send({ type: 'auth', id: 1, data: { token: 'throw' } })
  t.equal((await throws.closed).code, 4500)
  const invalid = await connect(t, url, { welcome: false })
  t.equal((await invalid.request('auth', { nope: 1 })).error?.code, 'VALIDATION_FAILED')
  const silent = await connect(t, url, { welcome: false })
  t.equal((await silent.closed).code, 4502, 'no auth within authTimeout closes with 4502')
  t.notOk(logs.some((l) => l.includes('good-ann') || l.includes('throw"')), 'tokens never reach the logs')
})

t.test('an app that registered @fastify/websocket itself', async (t) => {
  const app = Fastify()
  await app.register(websocket, { options: { maxPayload: 1 << 20 } })
  await app.register(realtime, { maxPayload: 512 })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const url = `ws://127.0.0.1:${(app.server.address() as { port: number }).port}/ws`
  const c = await connect(t, url, { protocols: ['x', 'realtime.v1'] })
  t.equal(c.ws.protocol, 'realtime.v1', 'our subprotocol is picked on the app\'s ws server too')
  c.send({ type: 'ping', pad: 'x'.repeat(600) })
  t.equal((await c.closed).code, 1009, 'our maxPayload holds on the app\'s ws server')
})
