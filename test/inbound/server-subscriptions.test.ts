// Subscriptions the server decides (`app.realtime.subscribe`): from onConnect, a handler
// or an HTTP route, on this node or another (through the broker); `authorize` not asked,
// onSubscribe run, the client told `subscribed`, the cap of maxSubscriptions held, and
// a reconnection restored by onConnect and recovered in place with `since`.
import t from 'tap'
import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { build, connect, until, type Frame, type TestClient } from '../fixtures/helpers.js'
import { REDIS_URL, dropKeys, reachable, requireOrSkip, startNode, uniquePrefix } from '../fixtures/redis.js'

const Message = Type.Object({ n: Type.Integer() })

function declare (app: FastifyInstance, seen: Array<Record<string, unknown>> = []): void {
  app.realtime.topic('inbox/:user', { message: Message, authorize: () => false })
  app.realtime.topic('room/:name', { message: Message })
  app.realtime.addHook('onSubscribe', (_connection, info) => { seen.push({ ...info }) })
  app.post<{ Params: { id: string } }>('/subscribe/:id', async (request) => {
    const position = await app.realtime.subscribe(request.params.id, 'room/lobby')
    return { local: position !== null }
  })
}

const messages = (c: TestClient): Frame[] => c.frames.filter((f) => f.type === 'message')

t.test('onConnect subscribes: `subscribed` before welcome, no authorize, onSubscribe told it is the server', async (t) => {
  const seen: Array<Record<string, unknown>> = []
  const { app, url } = await build(t, {}, (app) => {
    declare(app, seen)
    app.realtime.addHook('onConnect', async (connection) => {
      await app.realtime.subscribe(connection.id, 'inbox/ann')
    })
  })
  await app.realtime.publish('inbox/ann', { n: 1 })
  const c = await connect(t, url, { welcome: false })
  const first = await c.next()
  t.same(first, { type: 'subscribed', data: { topic: 'inbox/ann', offset: 1, epoch: first.data.epoch } })
  await c.nextOfType('welcome')
  t.same(seen, [{ topic: 'inbox/ann', params: { user: 'ann' }, server: true }])
  await app.realtime.publish('inbox/ann', { n: 2 })
  const message = await c.nextOfType('message')
  t.match(message, { topic: 'inbox/ann', offset: 2, data: { n: 2 } })
  // The client cannot subscribe it again, nor subscribe it itself (authorize refuses).
  t.match(await c.request('subscribe', { topic: 'inbox/ann' }), { error: { code: 'ALREADY_SUBSCRIBED' } })
  t.match(await c.request('subscribe', { topic: 'inbox/bob' }), { error: { code: 'FORBIDDEN' } })
  // It may leave it, and the server may end it.
  t.same((await c.request('unsubscribe', { topic: 'inbox/ann' })).type, 'reply')
})

t.test('from an HTTP route; unknown topics and a second subscription are clear errors', async (t) => {
  let id = ''
  const { app, url } = await build(t, {}, (app) => {
    declare(app)
    app.realtime.addHook('onConnect', (connection) => { id = connection.id })
  })
  const c = await connect(t, url)
  const answer = await app.inject({ method: 'POST', url: `/subscribe/${id}` })
  t.same(answer.json(), { local: true })
  t.match(await c.nextOfType('subscribed'), { data: { topic: 'room/lobby', offset: 0 } })
  await app.realtime.publish('room/lobby', { n: 1 })
  t.match(await c.nextOfType('message'), { topic: 'room/lobby', offset: 1 })
  await t.rejects(app.realtime.subscribe(id, 'nowhere' as never), { code: 'FST_REALTIME_UNKNOWN_TOPIC' })
  await t.rejects(app.realtime.subscribe(id, 'room/lobby'), { code: 'ALREADY_SUBSCRIBED' })
  // A connection this node does not hold: the order goes to the other nodes (none here).
  t.equal(await app.realtime.subscribe('no-such-connection', 'room/lobby'), null)
  t.ok(app.realtime.unsubscribe(id, 'room/lobby'))
  t.match(await c.nextOfType('unsubscribed'), { topic: 'room/lobby', code: 2000 })
})

t.test('server subscriptions count against maxSubscriptions, both ways', async (t) => {
  let id = ''
  const { app, url } = await build(t, { maxSubscriptions: 2 }, (app) => {
    declare(app)
    app.realtime.addHook('onConnect', async (connection) => {
      id = connection.id
      await app.realtime.subscribe(connection.id, 'inbox/ann')
    })
  })
  const c = await connect(t, url)
  t.equal((await c.request('subscribe', { topic: 'room/a' })).type, 'reply')
  t.match(await c.request('subscribe', { topic: 'room/b' }), { error: { code: 'LIMIT_EXCEEDED' } })
  await t.rejects(app.realtime.subscribe(id, 'room/c'), { code: 'LIMIT_EXCEEDED', message: /At most 2 subscriptions/ })
})

t.test('after a reconnection onConnect restores it and the client recovers what it missed, in place', async (t) => {
  const { app, url } = await build(t, {}, (app) => {
    declare(app)
    app.realtime.addHook('onConnect', async (connection) => {
      await app.realtime.subscribe(connection.id, 'inbox/ann')
    })
  })
  const first = await connect(t, url)
  const { epoch } = (await first.nextOfType('subscribed')).data
  for (let n = 1; n <= 3; n++) await app.realtime.publish('inbox/ann', { n })
  await until(() => messages(first).length === 3)
  first.close()
  await first.closed
  for (let n = 4; n <= 6; n++) await app.realtime.publish('inbox/ann', { n })
  const second = await connect(t, url)
  const log: Frame[] = []
  second.ws.on('message', (raw) => log.push(JSON.parse(raw.toString()) as Frame))
  t.same((await second.nextOfType('subscribed')).data, { topic: 'inbox/ann', offset: 6, epoch })
  // A publication while the client asks for the rest: sent once, after what it missed.
  const ask = second.request('subscribe', { topic: 'inbox/ann', since: { offset: 3, epoch } })
  const racing = app.realtime.publish('inbox/ann', { n: 7 })
  const reply = await ask
  await racing
  t.match(reply.data, { topic: 'inbox/ann', epoch, recovered: true })
  t.ok(reply.data.offset >= 6, 'the reply names the topic\'s position (7 when the racing one came first)')
  await until(() => messages(second).filter((m) => m.offset as number > 3).length >= 4)
  const after = log.slice(log.findIndex((f) => f.type === 'reply') + 1).filter((f) => f.type === 'message').map((m) => m.offset)
  t.same(after, [4, 5, 6, 7], 'what it missed, in order, then the live one, none twice after the reply')
})

t.test('an onConnect that subscribes, then refuses: the subscription ends with the connection', async (t) => {
  const { app, url } = await build(t, {}, (app) => {
    declare(app)
    app.realtime.addHook('onConnect', async (connection) => {
      await app.realtime.subscribe(connection.id, 'room/lobby')
      throw new Error('refused after all')
    })
  })
  const c = await connect(t, url, { welcome: false })
  t.match(await c.nextOfType('subscribed'), { data: { topic: 'room/lobby' } })
  await c.closed
  await until(() => app.realtime.stats().topics['room/lobby'] === undefined)
  t.same(app.realtime.stats().topics, {}, 'no subscriber left behind')
})

t.test('across two Redis nodes: a connection on A subscribed from an HTTP route on B', async (t) => {
  if (!requireOrSkip(t, await reachable(), `no Redis at ${REDIS_URL}`)) return
  const prefix = uniquePrefix('server-sub')
  t.teardown(() => dropKeys(REDIS_URL, prefix))
  const a = await startNode(t, { redis: REDIS_URL, prefix }, (app) => declare(app))
  const b = await startNode(t, { redis: REDIS_URL, prefix }, (app) => declare(app))
  let id = ''
  a.app.realtime.addHook('onConnect', (connection) => { id = connection.id })
  const c = await connect(t, a.url)
  const answer = await b.app.inject({ method: 'POST', url: `/subscribe/${id}` })
  t.same(answer.json(), { local: false }, 'B does not hold it: the order went through the broker')
  t.match(await c.nextOfType('subscribed', 10_000), { data: { topic: 'room/lobby' } })
  await b.app.realtime.publish('room/lobby', { n: 1 })
  t.match(await c.nextOfType('message', 10_000), { topic: 'room/lobby', data: { n: 1 } })
})
