import t from 'tap'
import { Type } from '@sinclair/typebox'
import { WebSocket } from 'ws'
import { build, connect, until } from '../fixtures/helpers.js'
import type { EventHandle } from '../../lib/index.js'

t.test('welcome, ping/pong, and envelope errors that leave the connection open', async (t) => {
  const { url } = await build(t, { heartbeat: { interval: 20000, timeout: 5000 } }, (app) => {
    app.realtime.route({ type: 'echo', schema: { data: Type.Any(), reply: Type.Any() }, handler: (d) => d })
  })
  const ws = new WebSocket(url, 'realtime.v1')
  const first = await new Promise<any>((resolve) => ws.once('message', (m) => resolve(JSON.parse(m.toString()))))
  t.equal(ws.protocol, 'realtime.v1', 'the subprotocol is agreed')
  t.equal(first.type, 'welcome')
  t.match(first.data.connectionId, /^[0-9a-f-]{36}$/)
  t.same(first.data.heartbeat, { interval: 20000, timeout: 5000 })
  ws.close()

  const c = await connect(t, url)
  c.send({ type: 'ping', id: 1 })
  t.same(await c.nextOfType('pong'), { type: 'pong', id: 1 })
  c.send({ type: 'ping' })
  t.same(await c.nextOfType('pong'), { type: 'pong' })

  const cases: Array<[string | Buffer, RegExp, boolean?]> = [
    ['not json', /not valid JSON/],
    ['[1,2]', /JSON object/],
    ['"text"', /JSON object/],
    ['null', /JSON object/],
    ['{"id":1}', /"type"/, true],
    ['{"type":5,"id":2}', /"type"/, true],
    ['{"type":"echo","id":{"x":1}}', /"id"/],
    ['{"type":"echo","id":1.5}', /"id"/],
    [`{"type":"echo","id":"${'x'.repeat(129)}"}`, /"id"/],
    ['{"type":"echo","id":3,"data":{"__proto__":{"polluted":true}}}', /prototype/],
    ['{"type":"echo","id":4,"data":{"constructor":{"prototype":{"polluted":true}}}}', /prototype/]
  ]
  for (const [raw, message, hasId] of cases) {
    c.send(raw)
    const err = await c.nextOfType('error')
    t.equal(err.error?.code, 'BAD_REQUEST', `${String(raw).slice(0, 40)} is BAD_REQUEST`)
    t.match(err.error?.message, message)
    t.equal('id' in err, hasId === true)
  }
  c.ws.send(Buffer.from('{"type":"echo"}'), { binary: true })
  t.match((await c.nextOfType('error')).error, { code: 'BAD_REQUEST', message: /Binary/ })
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype untouched')
  t.same((await c.request('echo', { ok: 1 })).data, { ok: 1 }, 'still serving')
  t.equal((await c.request('auth', { token: 'x' })).error?.code, 'BAD_REQUEST', 'auth without an authenticate option')
})

t.test('frames over maxPayload close with 1009', async (t) => {
  const { url } = await build(t, { maxPayload: 1024 })
  const c = await connect(t, url)
  const neighbour = await connect(t, url)
  c.send(JSON.stringify({ type: 'ping', pad: 'x'.repeat(1000) }).slice(0, 1024))
  c.send({ type: 'ping', pad: 'x'.repeat(1100) })
  t.equal((await c.closed).code, 1009)
  neighbour.send({ type: 'ping', id: 1 })
  t.equal((await neighbour.nextOfType('pong')).id, 1, 'the neighbour carries on')
})

t.test('the registry: iterate, get, by user, per-connection figures, disconnect, stats', async (t) => {
  const { app, url } = await build(t, {}, (app) => {
    app.addHook('onRequest', async (request) => {
      const name = request.headers['x-user']
      if (name !== undefined) (request as unknown as { user: unknown }).user = { id: name, role: 'member' }
    })
    app.realtime.topic('t', { message: Type.Object({}) })
  })
  const a1 = await connect(t, url, { headers: { 'x-user': 'ann' } })
  const a2 = await connect(t, url, { headers: { 'x-user': 'ann' } })
  const b = await connect(t, url, { headers: { 'x-user': 'bob' } })
  const anon = await connect(t, url)
  const rt = app.realtime
  t.equal(rt.connections.size, 4)
  t.equal([...rt.connections].length, 4)
  const anns = rt.connections.byUser('ann')
  t.equal(anns.length, 2, 'a user with two tabs is two connections')
  t.equal(rt.connections.byUser('nobody').length, 0)
  const bob = rt.connections.byUser('bob')[0]
  t.same(bob.user, { id: 'bob', role: 'member' }, 'the user of Fastify hooks on the upgrade request')
  t.equal(rt.connections.get(bob.id), bob)
  await b.request('subscribe', { topic: 't' })
  const info = bob.toJSON()
  t.match(info, { id: bob.id, userId: 'bob', state: 'open', subscriptions: ['t'], messagesIn: 1, messagesOut: 2, bufferedAmount: 0 })
  t.ok(info.connectedAt <= info.lastSeen && info.lastSeen <= Date.now())
  t.equal(bob.request.headers['x-user'], 'bob')

  const stats = rt.stats()
  t.same(stats.connections, { active: 4, total: 4, authenticating: 0 })
  t.same(stats.topics, { t: 1 })
  t.ok(stats.messages.in >= 1 && stats.messages.out >= 5)

  t.equal(rt.disconnect(bob.id, 4503, 'kicked'), true)
  t.same(await b.closed, { code: 4503, reason: 'kicked' })
  await until(() => rt.connections.size === 3)
  t.same(rt.stats().topics, {}, 'a closed connection leaves its topics')
  t.equal(rt.disconnect('missing'), false)
  t.equal(rt.disconnect(anns[0].id), true)
  t.equal((await a1.closed).code, 4503, 'the default disconnect code is 4503')
  t.equal(rt.stats().connections.total, 4)
  a2.close()
  anon.close()
  await until(() => rt.connections.size === 0)
})

t.test('events: send, broadcast with except, schemas and declarations', async (t) => {
  let notice!: EventHandle<{ text: string }>
  const { app, url } = await build(t, {}, (app) => {
    notice = app.realtime.event('notice', Type.Object({ text: Type.String() }))
  })
  const a = await connect(t, url)
  const b = await connect(t, url)
  const [ca, cb] = [...app.realtime.connections]
  t.equal(app.realtime.send(ca.id, 'notice', { text: 'to a', extra: 1 }), true)
  t.same(await a.nextOfType('notice'), { type: 'notice', data: { text: 'to a' } })
  t.equal(app.realtime.send('missing', 'notice', { text: 'x' }), false)
  t.equal(notice.broadcast({ text: 'all but b' }, { except: cb.id }), 1)
  t.same((await a.nextOfType('notice')).data, { text: 'all but b' })
  t.equal(notice.broadcast({ text: 'all' }), 2)
  t.same((await b.nextOfType('notice')).data, { text: 'all' })
  t.equal(notice.send(cb.id, { text: 'handle' }), true)
  t.same((await b.nextOfType('notice')).data, { text: 'handle' })
  t.throws(() => app.realtime.send(ca.id, 'undeclared', {}), { code: 'FST_REALTIME_UNKNOWN_EVENT' })
  t.throws(() => app.realtime.broadcast('notice', {}), { code: 'FST_REALTIME_INVALID_DATA' })
  t.throws(() => app.realtime.event('notice', Type.Object({})), { code: 'FST_REALTIME_DUPLICATE_EVENT' })
  t.throws(() => app.realtime.event('welcome', Type.Object({})), { code: 'FST_REALTIME_RESERVED_TYPE' })
  t.throws(() => app.realtime.event('9bad', Type.Object({})), { code: 'FST_REALTIME_INVALID_NAME' })
  t.throws(() => app.realtime.event('x', undefined as never), { code: 'FST_REALTIME_SCHEMA' })
})

t.test('disconnectUser closes every connection of that user with 4503', async (t) => {
  const { app, url } = await build(t, {}, (app) => {
    app.addHook('onRequest', async (request) => {
      const name = request.headers['x-user']
      if (name !== undefined) (request as unknown as { user: unknown }).user = { id: name }
    })
  })
  const tab1 = await connect(t, url, { headers: { 'x-user': 'eve' } })
  const tab2 = await connect(t, url, { headers: { 'x-user': 'eve' } })
  const other = await connect(t, url, { headers: { 'x-user': 'bob' } })
  await app.realtime.disconnectUser('eve')
  t.same(await tab1.closed, { code: 4503, reason: 'disconnected by the server' })
  t.equal((await tab2.closed).code, 4503)
  other.send({ type: 'ping', id: 1 })
  t.equal((await other.nextOfType('pong')).id, 1, 'other users stay')
  await app.realtime.disconnectUser('bob', 4011, 'please reconnect')
  t.same(await other.closed, { code: 4011, reason: 'please reconnect' })
})

t.test('connection.subscriptions reads like a Map, from one subscription to many and back', async (t) => {
  const { app, url } = await build(t, {}, (app) => {
    app.realtime.topic('room/:name', { message: Type.Object({ text: Type.String() }) })
  })
  const c = await connect(t, url)
  const [connection] = [...app.realtime.connections]
  const topics = () => [...connection.subscriptions.keys()]
  t.equal(connection.subscriptions.size, 0)
  await c.request('subscribe', { topic: 'room/a' })
  t.same(topics(), ['room/a'])
  t.equal(connection.subscriptions.get('room/a')?.pattern, 'room/:name')
  t.equal(connection.subscriptions.get('room/b'), undefined)
  for (const name of ['b', 'c']) await c.request('subscribe', { topic: `room/${name}` })
  t.same(topics(), ['room/a', 'room/b', 'room/c'], 'in the order subscribed')
  t.equal(connection.subscriptions.size, 3)
  await c.request('unsubscribe', { topic: 'room/b' })
  t.same([...connection.subscriptions].map(([topic, s]) => [topic, s.topic]), [['room/a', 'room/a'], ['room/c', 'room/c']], 'entries')
  t.notOk(connection.subscriptions.has('room/b'))
  t.same(connection.toJSON().subscriptions, ['room/a', 'room/c'])
  await app.realtime.publish('room/c', { text: 'still here' })
  t.equal((await c.nextOfType('message')).data.text, 'still here', 'delivery finds the subscription')
  for (const name of ['a', 'c']) await c.request('unsubscribe', { topic: `room/${name}` })
  t.equal(connection.subscriptions.size, 0)
  const seen: string[] = []
  connection.subscriptions.forEach((_s, topic) => seen.push(topic))
  t.same(seen, [])
  await c.request('subscribe', { topic: 'room/d' })
  t.same([...connection.subscriptions.values()].map((s) => s.topic), ['room/d'])
  t.ok(connection.isSubscribed('room/d'))
})

// ------------------------------------------------------------------ a server close answers first (issue 21)

t.test('a kick (disconnect, disconnectUser) answers the requests in flight before its close frame; later frames are not run', async (t) => {
  let runs = 0
  const { app, url } = await build(t, { authenticate: (token) => ({ user: { id: token } }) }, (app) => {
    app.realtime.route({
      type: 'slow',
      schema: { data: Type.Object({ ms: Type.Integer() }), reply: Type.Object({ ms: Type.Integer() }) },
      handler: async (data) => {
        runs++
        await new Promise((resolve) => setTimeout(resolve, data.ms))
        return data
      }
    })
  })
  const signIn = async (user: string): Promise<Awaited<ReturnType<typeof connect>>> => {
    const client = await connect(t, url, { welcome: false })
    t.equal((await client.request('auth', { token: user })).type, 'reply')
    await client.nextOfType('welcome')
    return client
  }
  const answers = (client: Awaited<ReturnType<typeof connect>>): unknown[] => client.frames.filter((f) => f.type === 'reply' || f.type === 'error')

  const c = await signIn('ann')
  c.send({ type: 'slow', id: 1, data: { ms: 100 } })
  await until(() => runs === 1)
  const [connection] = [...app.realtime.connections]
  t.equal(app.realtime.disconnect(connection.id, 4503, 'kicked'), true)
  c.send({ type: 'slow', id: 2, data: { ms: 0 } })
  t.same(await c.closed, { code: 4503, reason: 'kicked' })
  t.same(answers(c), [{ type: 'reply', id: 1, data: { ms: 100 } }], 'the request in flight was answered before the close frame')
  t.equal(runs, 1, 'the one sent after the kick did not run')

  // disconnectUser goes the same way (through the broker's command, on every node).
  const d = await signIn('bob')
  d.send({ type: 'slow', id: 3, data: { ms: 100 } })
  await until(() => runs === 2)
  await app.realtime.disconnectUser('bob')
  d.send({ type: 'slow', id: 4, data: { ms: 0 } })
  t.same(await d.closed, { code: 4503, reason: 'disconnected by the server' })
  t.same(answers(d), [{ type: 'reply', id: 3, data: { ms: 100 } }])
  t.equal(runs, 2)
})

t.test('a request still running when the close\'s wait (closeGrace) ends is answered INTERNAL before the close frame', async (t) => {
  let entered!: () => void
  const hanging = new Promise<void>((resolve) => { entered = resolve })
  const { app, url } = await build(t, { closeGrace: 100 }, (app) => {
    app.realtime.route({ type: 'hang', handler: () => { entered(); return new Promise<void>(() => {}) } })
  })
  const c = await connect(t, url)
  c.send({ type: 'hang', id: 'h' })
  await hanging
  const [connection] = [...app.realtime.connections]
  const started = Date.now()
  app.realtime.disconnect(connection.id, 4503, 'kicked')
  t.match(await c.next((f) => f.id === 'h'), { type: 'error', error: { code: 'INTERNAL', temporary: true, message: /may have run/ } })
  t.equal((await c.closed).code, 4503)
  t.ok(Date.now() - started >= 90, 'after the wait')
})
