// Lifecycle hooks: what each is told and when, what a refusal does, that hooks which
// throw crash nothing, and that every connection that passed onConnect gets exactly
// one onDisconnect, whatever closed it.
import t from 'tap'
import { Type } from '@sinclair/typebox'
import { WebSocket } from 'ws'
import Fastify, { type FastifyInstance } from 'fastify'
import realtime, { RealtimeError } from '../../lib/index.js'
import { build, connect, logCapture, TestClient, until, watchCrashes } from '../fixtures/helpers.js'
import { HeldBroker, hold } from '../fixtures/held-broker.js'
import { Op, rawConnect } from '../fixtures/raw-ws.js'

const Message = Type.Object({ text: Type.String() })

t.test('addHook refuses unknown hooks and non-functions, by name', async (t) => {
  const app = Fastify()
  await app.register(realtime)
  t.teardown(() => app.close())
  const untyped = app.realtime.addHook.bind(app.realtime) as (name: string, fn: unknown) => unknown
  t.throws(() => untyped('onConect', () => {}), { code: 'FST_REALTIME_HOOK_INVALID_TYPE', message: /"onConect"/ })
  t.throws(() => untyped('onConnect', 'x'), { code: 'FST_REALTIME_HOOK_INVALID_HANDLER', message: /onConnect hook should be a function/ })
  t.throws(() => app.realtime.route({ type: 'r', schema: { data: Type.Unknown() }, preHandler: [5 as never], handler: () => {} }), { code: 'FST_REALTIME_HOOK_INVALID_HANDLER', message: /route "r" preHandler/ })
  t.equal(app.realtime.addHook('onConnect', () => {}), app.realtime, 'chains like Fastify')
})

t.test('onConnect runs before welcome, may set connection.data, and frames sent meanwhile wait for it', async (t) => {
  const order: string[] = []
  const { url } = await build(t, {}, (app) => {
    app.realtime.addHook('onConnect', async (connection) => {
      order.push('first')
      await new Promise((resolve) => setTimeout(resolve, 30))
      ;(connection.data as { name?: string }).name = 'ann'
    })
    app.realtime.addHook('onConnect', (connection) => {
      order.push(`second saw ${(connection.data as { name?: string }).name}`)
    })
    app.realtime.route({ type: 'whoami', schema: { data: Type.Unknown(), reply: Type.String() }, handler: (_d, ctx) => (ctx.connection.data as { name: string }).name })
  })
  const ws = new WebSocket(url, 'realtime.v1')
  const c = new TestClient(ws)
  t.teardown(() => ws.terminate())
  await new Promise((resolve) => ws.once('open', resolve))
  // Sent before onConnect is done: answered after welcome, with the state it set.
  c.send({ type: 'whoami', id: 1 })
  const first = await c.next()
  t.equal(first.type, 'welcome', 'welcome is still the first frame')
  t.same((await c.next()).data, 'ann')
  t.same(order, ['first', 'second saw ann'], 'in the order added, each awaited')
})

t.test('a refusing onConnect closes with 4503 or the error\'s close code, sends no welcome, and has no onDisconnect', async (t) => {
  let disconnects = 0
  const { app, url } = await build(t, {}, (app) => {
    app.realtime.addHook('onConnect', (connection) => {
      const how = connection.request.headers['x-refuse']
      if (how === 'plain') throw new Error('database down')
      if (how === 'coded') throw new RealtimeError('BANNED', 'you are banned', { closeCode: 4507 })
    })
    app.realtime.addHook('onDisconnect', () => { disconnects++ })
  })
  for (const [how, code, reason] of [['plain', 4503, 'connection refused'], ['coded', 4507, 'you are banned']] as const) {
    const c = await connect(t, url, { headers: { 'x-refuse': how }, welcome: false })
    const closed = await c.closed
    t.same(closed, { code, reason }, how)
    t.equal(c.frames.length, 0, 'no welcome, no frame at all')
  }
  const ok = await connect(t, url)
  ok.close()
  await until(() => disconnects === 1)
  t.equal(app.realtime.stats().connections.active, 0)
  t.equal(disconnects, 1, 'only the accepted connection was told')
})

t.test('with auth by message, a refusing onConnect answers the auth with the error', async (t) => {
  const { url } = await build(t, { authenticate: (token) => ({ user: { id: token } }) }, (app) => {
    app.realtime.addHook('onConnect', (connection) => {
      if (connection.userId === 'mallory') throw new RealtimeError('FORBIDDEN', 'Not today')
    })
  })
  const bad = await connect(t, url, { welcome: false })
  const answer = await bad.request('auth', { token: 'mallory' })
  t.same(answer.error, { code: 'FORBIDDEN', message: 'Not today' })
  t.equal((await bad.closed).code, 4503)
  const good = await connect(t, url, { welcome: false })
  const reply = await good.request('auth', { token: 'ann' })
  t.same(reply.data, { user: { id: 'ann' } })
  t.equal((await good.next()).type, 'welcome', 'the auth reply, then welcome')
})

t.test('onSubscribe sees params and recovery, can refuse, and holds frames sent meanwhile', async (t) => {
  const seen: unknown[] = []
  const { app, url } = await build(t, {}, (app) => {
    app.realtime.topic('room/:name', { message: Message })
    app.realtime.addHook('onSubscribe', async (connection, info) => {
      seen.push(info)
      await new Promise((resolve) => setTimeout(resolve, 20))
      if (info.params.name === 'vip') throw new RealtimeError('FORBIDDEN', 'members only')
      if (info.params.name === 'broken') throw new Error('bug')
      ;(connection.data as { room?: string }).room = String(info.params.name)
    })
    app.realtime.route({ type: 'room', schema: { data: Type.Unknown(), reply: Type.Unknown() }, handler: (_d, ctx) => (ctx.connection.data as { room?: string }).room ?? null })
  })
  const c = await connect(t, url)
  c.send({ type: 'subscribe', id: 's', data: { topic: 'room/a' } })
  c.send({ type: 'room', id: 'r' })
  const sub = await c.next()
  t.equal(sub.id, 's')
  t.equal((await c.next()).data, 'a', 'the route ran after onSubscribe, seeing what it set')
  t.same(seen[0], { topic: 'room/a', params: { name: 'a' } })
  t.same((await c.request('subscribe', { topic: 'room/vip' })).error, { code: 'FORBIDDEN', message: 'members only' })
  t.same((await c.request('subscribe', { topic: 'room/broken' })).error, { code: 'FORBIDDEN', message: 'Forbidden' }, 'a plain error refuses as FORBIDDEN')
  t.same(app.realtime.stats().topics, { 'room/a': 1 }, 'refused subscriptions are not kept')
  await app.realtime.publish('room/a', { text: 'x' })
  await c.request('unsubscribe', { topic: 'room/a' })
  const again = await c.request('subscribe', { topic: 'room/a', since: { offset: 0, epoch: sub.data.epoch } })
  t.equal(again.data.recovered, true)
  t.same(seen.at(-1), { topic: 'room/a', params: { name: 'a' }, recovered: true })
})

t.test('onUnsubscribe: once per confirmed subscription, with the reason that ended it', async (t) => {
  const ends: Array<{ topic: string, reason: string, params: unknown }> = []
  const { app, url } = await build(t, {}, (app) => {
    app.realtime.topic('room/:id', { message: Message, params: Type.Object({ id: Type.Integer() }) })
    app.realtime.addHook('onUnsubscribe', (_c, info) => { ends.push(info) })
  })
  const c = await connect(t, url)
  for (const id of [1, 2, 3]) await c.request('subscribe', { topic: `room/${id}` })
  await c.request('unsubscribe', { topic: 'room/1' })
  const [connection] = [...app.realtime.connections]
  t.equal(app.realtime.unsubscribe(connection.id, 'room/2', 'room closed'), true)
  t.same(await c.nextOfType('unsubscribed'), { type: 'unsubscribed', topic: 'room/2', code: 2000, reason: 'room closed' })
  t.equal(app.realtime.unsubscribe(connection.id, 'room/2'), false, 'not subscribed any more')
  t.equal(app.realtime.unsubscribe('nobody', 'room/3'), false)
  c.close()
  await until(() => ends.length === 3)
  t.same(ends, [
    { topic: 'room/1', params: { id: 1 }, reason: 'client' },
    { topic: 'room/2', params: { id: 2 }, reason: 'server' },
    { topic: 'room/3', params: { id: 3 }, reason: 'disconnect' }
  ], 'typed params, as authorize sees them')
})

t.test('onUnsubscribe with reason gap: once per subscription a gap ended, none more at the close; onDisconnect once', async (t) => {
  const crashes = watchCrashes(t)
  const broker = new HeldBroker()
  const ends: Array<{ topic: string, reason: string }> = []
  const disconnects: Array<{ code: number, endsBefore: number }> = []
  const { app, url } = await build(t, { broker }, (app) => {
    app.realtime.topic('feed/:name', { message: Type.Object({ n: Type.Integer() }) })
    app.realtime.addHook('onUnsubscribe', (_c, { topic, reason }) => { ends.push({ topic, reason }) })
    app.realtime.addHook('onDisconnect', (_c, { code }) => { disconnects.push({ code, endsBefore: ends.length }) })
  })
  const c = await connect(t, url)
  for (const name of ['live', 'resync', 'kept']) await c.request('subscribe', { topic: `feed/${name}` })
  // The three ways a gap comes: a publication of another epoch held while the subscribe
  // waited (the gap follows its reply), one arriving live, and a resync from the broker.
  const gate = hold(broker)
  c.send({ type: 'subscribe', id: 'held', data: { topic: 'feed/held' } })
  await gate.entered
  broker.inject('feed/held', 1, 'another-epoch', '{"n":1}')
  gate.release()
  t.equal((await c.next((f) => f.id === 'held')).type, 'reply', 'feed/held was confirmed before its gap')
  broker.inject('feed/live', 1, 'another-epoch', '{"n":1}')
  broker.resync('feed/resync')
  const told = await Promise.all([1, 2, 3].map(() => c.nextOfType('unsubscribed')))
  t.same(told.map((f) => [f.topic, f.code]).sort(), [['feed/held', 2500], ['feed/live', 2500], ['feed/resync', 2500]])
  await until(() => ends.length === 3)
  t.same([...ends].sort((a, b) => a.topic.localeCompare(b.topic)), [
    { topic: 'feed/held', reason: 'gap' },
    { topic: 'feed/live', reason: 'gap' },
    { topic: 'feed/resync', reason: 'gap' }
  ], 'one gap each')
  t.same(app.realtime.stats().topics, { 'feed/kept': 1 }, 'the gapped subscriptions are gone; the other stays')
  // More trouble on a topic already gapped reaches no subscription: no second call.
  broker.inject('feed/live', 2, 'yet-another-epoch', '{"n":2}')
  broker.resync('feed/resync')

  c.close()
  await until(() => disconnects.length === 1)
  t.same(ends.slice(3), [{ topic: 'feed/kept', reason: 'disconnect' }], 'the close ends only the subscription still there')
  t.same(disconnects, [{ code: 1005, endsBefore: 4 }], 'onDisconnect once, after every onUnsubscribe')
  // Later still: a shutdown finds nothing more to tell.
  await app.close()
  t.equal(ends.length, 4)
  t.equal(disconnects.length, 1)
  t.equal(crashes.uncaught + crashes.unhandled, 0)
})

t.test('preHandler hooks run after validation, plugin-wide then per route, and may refuse', async (t) => {
  const calls: string[] = []
  let handled = 0
  const { url } = await build(t, {}, (app) => {
    app.realtime.addHook('preHandler', async (data, ctx) => {
      calls.push(`global ${ctx.type} ${JSON.stringify(data)}`)
      if ((data as { n?: number })?.n === 13) throw new RealtimeError('FORBIDDEN', 'unlucky')
    })
    app.realtime.route({
      type: 'count',
      schema: { data: Type.Object({ n: Type.Integer() }), reply: Type.Integer() },
      preHandler: [(data) => { calls.push(`route ${data.n}`) }, async (data) => { if (data.n === 7) throw new Error('boom') }],
      handler: (data) => { handled++; return data.n }
    })
  })
  const c = await connect(t, url)
  t.equal((await c.request('count', { n: 1 })).data, 1)
  t.same(calls, ['global count {"n":1}', 'route 1'])
  t.equal((await c.request('count', { n: 'x' })).error?.code, 'VALIDATION_FAILED')
  t.equal(calls.length, 2, 'invalid data never reaches a preHandler')
  t.same((await c.request('count', { n: 13 })).error, { code: 'FORBIDDEN', message: 'unlucky' })
  t.same((await c.request('count', { n: 7 })).error, { code: 'INTERNAL', message: 'Internal error', temporary: true })
  t.equal(handled, 1, 'the handler ran only when every preHandler passed')
})

t.test('onHandlerError hears unexpected failures, not declared errors; a throwing hook crashes nothing', async (t) => {
  const crashes = watchCrashes(t)
  const reported: Array<{ message: string, type: string, connectionId: string }> = []
  const { url } = await build(t, {}, (app) => {
    app.realtime.addHook('onHandlerError', () => { throw new Error('the reporter itself fails') })
    app.realtime.addHook('onHandlerError', (err, ctx) => { reported.push({ message: (err as Error).message, type: ctx.type, connectionId: ctx.connection.id }) })
    app.realtime.route({
      type: 'r',
      schema: { data: Type.String(), errors: { NOPE: Type.Object({}) } },
      handler: async (data, ctx) => {
        if (data === 'declared') throw ctx.error('NOPE', {})
        if (data === 'sync') throw new TypeError('sync bug')
        throw new Error('async bug')
      }
    })
  })
  const c = await connect(t, url)
  t.equal((await c.request('r', 'declared')).error?.code, 'NOPE')
  t.equal((await c.request('r', 'sync')).error?.code, 'INTERNAL')
  t.equal((await c.request('r', 'async')).error?.code, 'INTERNAL')
  await until(() => reported.length === 2)
  t.same(reported.map((r) => [r.message, r.type]), [['sync bug', 'r'], ['async bug', 'r']], 'the second hook ran although the first threw')
  t.equal(crashes.uncaught + crashes.unhandled, 0)
})

t.test('a throwing onUnsubscribe, onDisconnect or onHandlerError is logged with the connection id and the hook', async (t) => {
  const crashes = watchCrashes(t)
  const log = logCapture()
  const ran: string[] = []
  const { url } = await build(t, {}, (app) => {
    app.realtime.topic('room', { message: Message })
    app.realtime.route({ type: 'bug', handler: () => { throw new Error('handler bug') } })
    app.realtime.addHook('onHandlerError', () => { ran.push('onHandlerError'); throw new Error('onHandlerError broke') })
    app.realtime.addHook('onUnsubscribe', () => { ran.push('onUnsubscribe'); throw new Error('onUnsubscribe broke') })
    // Rejecting rather than throwing: an async hook fails that way.
    app.realtime.addHook('onDisconnect', async () => { ran.push('onDisconnect'); throw new Error('onDisconnect broke') })
  }, { logger: { level: 'error', stream: log.stream } })
  const c = await connect(t, url, { welcome: false })
  const id = (await c.nextOfType('welcome')).data.connectionId as string
  await c.request('subscribe', { topic: 'room' })
  t.equal((await c.request('bug')).error?.code, 'INTERNAL')
  c.close()
  const names = ['onHandlerError', 'onUnsubscribe', 'onDisconnect']
  await until(() => names.every((name) => log.lines.some((l) => l.hook === name)))
  for (const name of names) {
    const lines = log.lines.filter((l) => l.hook === name)
    t.equal(lines.length, 1, `${name}: logged once`)
    t.match(lines[0], { level: 50, connectionId: id, hook: name, msg: `${name} hook failed`, err: { message: `${name} broke` } }, `${name}: the connection, the hook and its error`)
  }
  t.same(ran, names, 'onDisconnect still ran after the throwing onUnsubscribe')
  t.equal(crashes.uncaught + crashes.unhandled, 0)
})

t.test('a hook that refuses by a bug (not a RealtimeError) is logged at error; a deliberate refusal at info', async (t) => {
  const log = logCapture()
  const { url } = await build(t, {}, (app) => {
    app.realtime.topic('room/:name', { message: Message })
    app.realtime.addHook('onConnect', (connection) => {
      const how = connection.request.headers['x-refuse']
      // A bug: what the README's Hooks example did, broadcasting an event nobody declared.
      if (how === 'bug') app.realtime.broadcast('nope' as never, {} as never)
      if (how === 'meant') throw new RealtimeError('BANNED', 'you are banned')
    })
    app.realtime.addHook('onSubscribe', (_connection, info) => {
      if (info.params.name === 'broken') throw new TypeError('cannot read properties of undefined')
      if (info.params.name === 'vip') throw new RealtimeError('FORBIDDEN', 'members only')
    })
  }, { logger: { level: 'info', stream: log.stream } })
  const bug = await connect(t, url, { headers: { 'x-refuse': 'bug' }, welcome: false })
  t.equal((await bug.closed).code, 4503)
  const meant = await connect(t, url, { headers: { 'x-refuse': 'meant' }, welcome: false })
  t.equal((await meant.closed).code, 4503)
  const c = await connect(t, url)
  t.equal((await c.request('subscribe', { topic: 'room/broken' })).error?.code, 'FORBIDDEN')
  t.equal((await c.request('subscribe', { topic: 'room/vip' })).error?.code, 'FORBIDDEN')
  await until(() => log.lines.some((l) => l.topic === 'room/broken'))
  const refusals = log.lines.filter((l) => typeof l.msg === 'string' && /^on(Connect|Subscribe)/.test(l.msg))
  t.match(refusals, [
    { level: 50, msg: 'onConnect hook failed; the connection is refused', err: { code: 'FST_REALTIME_UNKNOWN_EVENT' } },
    { level: 30, msg: 'onConnect refused the connection', err: { message: 'you are banned' } },
    { level: 50, msg: 'onSubscribe hook failed; the subscribe is refused', topic: 'room/broken', err: { type: 'TypeError' } }
  ])
  t.equal(refusals.length, 3, 'the deliberate onSubscribe refusal is answered, not logged as a failure')
})

t.test('onDisconnect: exactly once, after the topics are left, whatever closed the connection', async (t) => {
  const crashes = watchCrashes(t)
  const told = new Map<string, Array<{ code: number, topicsLeft: boolean, unsubscribed: number }>>()
  const unsubscribed = new Map<string, number>()
  let connects = 0
  const options = {
    heartbeat: { interval: 150, timeout: 150 },
    maxQueue: 256 * 1024,
    errorBudget: { max: 2 },
    authenticate: (token: string) => ({ user: { id: token }, expiresAt: token === 'expiring' ? Date.now() + 200 : undefined })
  }
  const setup = (app: FastifyInstance): void => {
    app.realtime.topic('room', { message: Type.Object({ pad: Type.String() }), history: { size: 0 } })
    app.realtime.addHook('onConnect', () => { connects++ })
    app.realtime.addHook('onUnsubscribe', (connection) => { unsubscribed.set(connection.id, (unsubscribed.get(connection.id) ?? 0) + 1) })
    app.realtime.addHook('onDisconnect', (connection, info) => {
      const list = told.get(connection.userId as string) ?? []
      // Left: it has no subscription, and the node counts only the subscribers still registered.
      const stillSubscribed = [...app.realtime.connections].filter((c) => c.subscriptions.has('room')).length
      const topicsLeft = connection.subscriptions.size === 0 && (app.realtime.stats().topics.room ?? 0) === stillSubscribed
      list.push({ code: info.code, topicsLeft, unsubscribed: unsubscribed.get(connection.id) ?? 0 })
      told.set(connection.userId as string, list)
      throw new Error('a throwing onDisconnect is logged, nothing more')
    })
  }
  const { app, url } = await build(t, options, setup)
  // The slow consumer gets an app of its own with a long heartbeat: it is to be judged
  // by its queue, not by the pongs a paused socket cannot send.
  const slowApp = await build(t, { ...options, heartbeat: { interval: 60_000, timeout: 60_000 } }, setup)
  async function open (user: string, options: { autoPong?: boolean, url?: string } = {}): Promise<TestClient> {
    const ws = new WebSocket(options.url ?? url, 'realtime.v1', options)
    const c = new TestClient(ws)
    ws.on('error', () => {})
    t.teardown(() => ws.terminate())
    await new Promise((resolve) => ws.once('open', resolve))
    await c.request('auth', { token: user })
    await c.nextOfType('welcome')
    await c.request('subscribe', { topic: 'room' })
    return c
  }
  const byClient = await open('client')
  await open('heartbeat', { autoPong: false }) // never answers a ping
  const slow = await open('slow', { url: slowApp.url })
  await open('kicked')
  await open('kicked-user')
  await open('expiring')
  const rude = await open('rude')
  await open('shutdown')
  t.equal(connects, 8)

  byClient.close()
  app.realtime.disconnect([...app.realtime.connections].find((c) => c.userId === 'kicked')!.id)
  await app.realtime.disconnectUser('kicked-user')
  for (let i = 0; i < 3; i++) rude.send('not json')
  // A client that stops reading: its queue passes maxQueue (256 KiB) and it is
  // closed with 4008; it reads again so the close handshake can complete.
  const slowSocket = (slow.ws as unknown as { _socket: { pause: () => void, resume: () => void } })._socket
  slowSocket.pause()
  const [slowConnection] = slowApp.app.realtime.connections
  while (slowConnection.state === 'open') {
    await slowApp.app.realtime.publish('room', { pad: 'x'.repeat(100_000) })
    // The readers are in this process: they read only when the loop lets I/O run.
    await new Promise((resolve) => setImmediate(resolve))
  }
  slowSocket.resume()
  await until(() => told.size === 7, 5000)
  await app.close()
  await until(() => told.size === 8)
  const codes = Object.fromEntries([...told].map(([user, list]) => [user, list.map((e) => e.code)]))
  t.same(codes, {
    client: [1005],
    heartbeat: [4012],
    slow: [4008],
    kicked: [4503],
    'kicked-user': [4503],
    expiring: [4005],
    rude: [4501],
    shutdown: [1012]
  }, 'one onDisconnect each, with the code that ended it')
  for (const [user, [entry]] of told) {
    t.ok(entry.topicsLeft, `${user}: its topics were left first`)
    t.equal(entry.unsubscribed, 1, `${user}: onUnsubscribe (disconnect) came first, once`)
  }
  t.equal(crashes.uncaught + crashes.unhandled, 0)
})

t.test('onUnsubscribe and onDisconnect once each, after the topics are left, when the peer vanishes or breaks the protocol', async (t) => {
  const crashes = watchCrashes(t)
  const MAX_PAYLOAD = 1024
  const told = new Map<string, string[]>()
  const codes = new Map<string, number>()
  const tell = (id: string, what: string): void => { told.set(id, [...(told.get(id) ?? []), what]) }
  const { app, url } = await build(t, { maxPayload: MAX_PAYLOAD }, (app) => {
    app.realtime.topic('room', { message: Message })
    app.realtime.addHook('onUnsubscribe', (connection, { topic, reason }) => { tell(connection.id, `unsubscribe ${topic} ${reason}`) })
    app.realtime.addHook('onDisconnect', (connection, { code }) => {
      // Left: it has no subscription, and the node counts only the subscribers still registered.
      const stillSubscribed = [...app.realtime.connections].filter((c) => c.subscriptions.has('room')).length
      const left = connection.subscriptions.size === 0 && (app.realtime.stats().topics.room ?? 0) === stillSubscribed
      tell(connection.id, left ? 'disconnect, topics left' : 'disconnect, topics NOT left')
      codes.set(connection.id, code)
    })
  })
  const port = (app.server.address() as { port: number }).port
  // A bystander stays subscribed throughout: the count of subscribers must drop by the leaver only.
  const bystander = await connect(t, url)
  await bystander.request('subscribe', { topic: 'room' })
  async function open (): Promise<{ c: TestClient, id: string }> {
    const c = await connect(t, url, { welcome: false })
    const id = (await c.nextOfType('welcome')).data.connectionId as string
    t.equal((await c.request('subscribe', { topic: 'room' })).type, 'reply')
    return { c, id }
  }
  const gone = (id: string) => until(() => codes.has(id))

  // The peer vanishes without a close frame: the server sees 1006.
  const vanished = await open()
  vanished.c.ws.terminate()
  await gone(vanished.id)

  // A message over maxPayload: ws closes with 1009.
  const big = await open()
  big.c.send(JSON.stringify({ type: 'ping', pad: 'x'.repeat(MAX_PAYLOAD) }))
  t.equal((await big.c.closed).code, 1009, 'the peer over maxPayload is closed with 1009')
  await gone(big.id)

  // Invalid UTF-8 in a text frame, which no honest client can send: ws closes with 1007.
  const raw = await rawConnect(t, port, { welcome: false })
  const rawId = (await raw.nextJson((f) => f.type === 'welcome')).data.connectionId as string
  raw.sendText(JSON.stringify({ type: 'subscribe', id: 's', data: { topic: 'room' } }))
  t.equal((await raw.nextJson((f) => f.id === 's')).type, 'reply')
  raw.send({ opcode: Op.TEXT, payload: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]) })
  t.equal((await raw.closed).code, 1007, 'the peer sending invalid UTF-8 is closed with 1007')
  await gone(rawId)

  t.same(app.realtime.stats().topics, { room: 1 }, 'only the bystander is left subscribed')
  // Later: a shutdown tells nothing more about connections already gone.
  await app.close()
  for (const [what, id] of [['terminate', vanished.id], ['maxPayload', big.id], ['utf8', rawId]]) {
    t.same(told.get(id), ['unsubscribe room disconnect', 'disconnect, topics left'], `${what}: one onUnsubscribe, then one onDisconnect after the topics were left`)
  }
  t.equal(codes.get(vanished.id), 1006, 'terminate: onDisconnect hears 1006')
  // ws closes these itself and stops reading, so the socket reports 1006; the code the
  // peer was closed with is what onDisconnect is documented to hear (DisconnectInfo).
  t.equal(codes.get(big.id), 1009, 'maxPayload: onDisconnect hears the 1009 ws sent, not the 1006 of a close never answered')
  t.equal(codes.get(rawId), 1007, 'utf8: onDisconnect hears 1007')
  t.equal(crashes.uncaught + crashes.unhandled, 0)
})

t.test('1,000 connections opening and closing at once: every onConnect has its onDisconnect', async (t) => {
  const connected = new Set<string>()
  const disconnected = new Set<string>()
  let twice = 0
  const { app, url } = await build(t, {}, (app) => {
    app.realtime.addHook('onConnect', async (connection) => {
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 20))
      connected.add(connection.id)
    })
    app.realtime.addHook('onDisconnect', async (connection) => {
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 5))
      if (disconnected.has(connection.id)) twice++
      disconnected.add(connection.id)
    })
  })
  const sockets = await Promise.all(Array.from({ length: 1000 }, (_, i) => new Promise<WebSocket>((resolve) => {
    const ws = new WebSocket(url, 'realtime.v1')
    ws.on('error', () => {})
    // Half close the moment they open, racing their onConnect; the others after welcome.
    if (i % 2 === 0) ws.once('open', () => { ws.close(); resolve(ws) })
    else ws.once('message', () => { ws.close(); resolve(ws) })
  })))
  await until(() => app.realtime.stats().connections.active === 0 && app.realtime.stats().connections.authenticating === 0, 20_000)
  await until(() => disconnected.size === connected.size, 10_000)
  t.ok(connected.size >= 500, `onConnect passed for ${connected.size}`)
  t.same([...connected].sort(), [...disconnected].sort(), 'the same connections, each told once')
  t.equal(twice, 0)
  for (const ws of sockets) ws.terminate()
})
