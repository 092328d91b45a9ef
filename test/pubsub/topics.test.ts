import t from 'tap'
import { Type } from '@sinclair/typebox'
import { build, connect, until } from '../fixtures/helpers.js'
import { MemoryBroker } from '../../lib/index.js'
import type { Connection as InternalConnection } from '../../lib/connection/connection.js'

const Message = Type.Object({ text: Type.String() })

t.test('subscribe, receive publications with offsets, unsubscribe', async (t) => {
  const { app, url } = await build(t, {}, (app) => {
    app.realtime.topic('room/:name', { message: Message })
  })
  const c = await connect(t, url)
  const sub = await c.request('subscribe', { topic: 'room/general' })
  t.equal(sub.type, 'reply')
  t.equal(sub.data.topic, 'room/general')
  t.equal(sub.data.offset, 0)
  t.type(sub.data.epoch, 'string')
  t.notOk('recovered' in sub.data, 'no recovered flag without since')

  const outBefore = app.realtime.stats().messages.out
  const first = await app.realtime.publish('room/general', { text: 'one', hidden: true } as never)
  t.same(first, { topic: 'room/general', offset: 1, epoch: sub.data.epoch })
  await app.realtime.publish('room/general', { text: 'two' })
  await app.realtime.publish('room/other', { text: 'not for us' })
  const m1 = await c.nextOfType('message')
  const m2 = await c.nextOfType('message')
  t.same(m1, { type: 'message', topic: 'room/general', offset: 1, epoch: sub.data.epoch, data: { text: 'one' } }, 'serialised by the message schema')
  t.equal(m2.offset, 2)
  t.equal(app.realtime.stats().messages.out, outBefore + 2, 'deliveries count as messages out')

  t.same((await c.request('unsubscribe', { topic: 'room/general' })).data, {})
  await app.realtime.publish('room/general', { text: 'after' })
  t.equal((await c.request('unsubscribe', { topic: 'room/general' })).error?.code, 'NOT_SUBSCRIBED')
  t.equal(c.frames.filter((f) => f.type === 'message').length, 0, 'nothing after unsubscribe')
  t.same(app.realtime.stats().topics, {})
})

t.test('undeclared topics, invalid params and refused authorization are all FORBIDDEN alike', async (t) => {
  const calls: unknown[] = []
  const { url } = await build(t, {}, (app) => {
    app.realtime.topic('user/:id/inbox', {
      params: Type.Object({ id: Type.Integer({ minimum: 1 }) }),
      message: Message,
      authorize: ({ params, action, topic, connection }) => {
        calls.push({ params, action, topic, hasConnection: connection !== undefined })
        return params.id === 7
      }
    })
  })
  const c = await connect(t, url)
  for (const topic of ['nope', 'user/x/inbox', 'user/0/inbox', 'user/8/inbox', 'user/7/inbox/extra', 'user//inbox']) {
    const res = await c.request('subscribe', { topic })
    t.same(res.error, { code: 'FORBIDDEN', message: 'Forbidden' }, `${topic} refused without saying why`)
  }
  for (const alias of ['user/07/inbox', 'user/7.0/inbox', 'user/+7/inbox', 'user/7e0/inbox']) {
    t.equal((await c.request('subscribe', { topic: alias })).error?.code, 'FORBIDDEN', `${alias}: only the canonical spelling of a coerced param is that topic`)
  }
  const ok = await c.request('subscribe', { topic: 'user/7/inbox' })
  t.equal(ok.type, 'reply')
  t.same(calls, [
    { params: { id: 8 }, action: 'subscribe', topic: 'user/8/inbox', hasConnection: true },
    { params: { id: 7 }, action: 'subscribe', topic: 'user/7/inbox', hasConnection: true }
  ], 'authorize gets typed (coerced) params, only for names that match')
  t.equal((await c.request('subscribe', { topic: 'user/7/inbox' })).error?.code, 'ALREADY_SUBSCRIBED')
  t.equal((await c.request('subscribe', {})).error?.code, 'VALIDATION_FAILED')
  t.equal((await c.request('subscribe', { topic: 5 })).error?.code, 'VALIDATION_FAILED')
})

t.test('an authorize that throws or is slow', async (t) => {
  let release!: (v: boolean) => void
  const { app, url } = await build(t, {}, (app) => {
    app.realtime.topic('boom', { message: Message, authorize: () => { throw new Error('authz backend down') } })
    app.realtime.topic('slow', { message: Message, authorize: () => new Promise<boolean>((resolve) => { release = resolve }) })
  })
  const c = await connect(t, url)
  t.equal((await c.request('subscribe', { topic: 'boom' })).error?.code, 'INTERNAL')
  c.send({ type: 'subscribe', id: 's', data: { topic: 'slow' } })
  await until(() => release !== undefined)
  // Frames behind a pending subscribe wait for it and then run in order.
  c.send({ type: 'subscribe', id: 's2', data: { topic: 'slow' } })
  c.send({ type: 'ping', id: 'p' })
  // The backlog is internal state (connection.ts), read through the internal class.
  const connection = [...app.realtime.connections][0] as InternalConnection
  await until(() => (connection.backlog?.length ?? 0) === 2)
  t.equal(connection.isSubscribed('slow'), false, 'not subscribed while authorize is pending')
  t.equal(c.frames.length, 0, 'nothing answered yet')
  release(true)
  t.equal((await c.next((f) => f.id === 's')).type, 'reply')
  t.equal((await c.next((f) => f.id === 's2')).error?.code, 'ALREADY_SUBSCRIBED', 'the second subscribe ran after the first')
  t.equal((await c.nextOfType('pong')).id, 'p')
  t.equal(connection.isSubscribed('slow'), true, 'subscribed once confirmed')
  t.equal(connection.isSubscribed('other'), false)
  await app.realtime.publish('slow', { text: 'x' })
  t.equal((await c.nextOfType('message')).data.text, 'x')
})

t.test('publications made while a subscribe is pending never overtake its reply', async (t) => {
  // A broker whose position() answers late, as a network store would: whatever is
  // published between reading the position and sending the reply must follow the reply.
  let gate!: () => void
  let reading!: () => void
  const positionRead = new Promise<void>((resolve) => { reading = resolve })
  class SlowBroker extends MemoryBroker {
    override async position (topic: string) {
      const position = await super.position(topic)
      reading()
      await new Promise<void>((resolve) => { gate = resolve })
      return position
    }
  }
  const { app, url } = await build(t, { broker: new SlowBroker() }, (app) => {
    app.realtime.topic('feed', { message: Message })
  })
  const c = await connect(t, url)
  c.send({ type: 'subscribe', id: 2, data: { topic: 'feed' } })
  await positionRead
  await app.realtime.publish('feed', { text: 'during' })
  gate()
  await app.realtime.publish('feed', { text: 'after' })
  await until(() => c.frames.length >= 3)
  t.same(c.frames.map((f) => f.type), ['reply', 'message', 'message'], 'the reply comes first')
  t.equal(c.frames[0].data.offset, 0, 'the reply names the position read at subscription')
  t.same(c.frames.slice(1).map((f) => [f.offset, f.data.text]), [[1, 'during'], [2, 'after']], 'then every later publication, in order')
})

t.test('a message sent right behind a subscribe sees the subscription; the backlog is bounded', async (t) => {
  let release!: (v: boolean) => void
  const { url } = await build(t, { rateLimit: { rate: 1e6, burst: 1e6 } }, (app) => {
    app.realtime.topic('room', { message: Message, authorize: () => new Promise<boolean>((resolve) => { release = resolve }) })
    app.realtime.route({ type: 'check', schema: { data: Type.Any(), reply: Type.Boolean() }, handler: (_d, ctx) => ctx.connection.isSubscribed('room') })
  })
  const c = await connect(t, url)
  c.send({ type: 'subscribe', id: 's', data: { topic: 'room' } })
  c.send({ type: 'check', id: 'c' })
  for (let i = 0; i < 256; i++) c.send({ type: 'check' })
  c.send({ type: 'check', id: 'over' })
  const over = await c.next((f) => f.id === 'over')
  t.equal(over.error?.code, 'LIMIT_EXCEEDED', 'one frame past the backlog limit is refused, not dropped')
  await until(() => release !== undefined)
  release(true)
  t.equal((await c.next((f) => f.id === 's')).type, 'reply')
  t.equal((await c.next((f) => f.id === 'c')).data, true, 'the route ran after the subscribe completed')
})

t.test('publish from an HTTP route, except, and unknown topics', async (t) => {
  const { app, url } = await build(t, {}, (app) => {
    const room = app.realtime.topic('room/:name', { message: Message })
    app.post('/announce/:room', async (request) => {
      const { room: name } = request.params as { room: string }
      return room.publish({ name }, { text: (request.body as { text: string }).text })
    })
  })
  const a = await connect(t, url)
  const b = await connect(t, url)
  await a.request('subscribe', { topic: 'room/lobby' })
  await b.request('subscribe', { topic: 'room/lobby' })
  const res = await app.inject({ method: 'POST', url: '/announce/lobby', payload: { text: 'from http' } })
  t.equal(res.statusCode, 200)
  t.equal(res.json().offset, 1)
  t.equal((await a.nextOfType('message')).data.text, 'from http')
  t.equal((await b.nextOfType('message')).data.text, 'from http')

  const aId = app.realtime.connections.byUser('nobody').length === 0 ? [...app.realtime.connections][0].id : ''
  await app.realtime.publish('room/lobby', { text: 'not to a' }, { except: aId })
  const toB = await b.nextOfType('message')
  t.equal(toB.data.text, 'not to a')
  a.send({ type: 'ping', id: 'p' })
  await a.nextOfType('pong')
  t.equal(a.frames.filter((f) => f.type === 'message').length, 0, 'except skips that connection')

  await t.rejects(app.realtime.publish('nowhere', { text: 'x' }), { code: 'FST_REALTIME_UNKNOWN_TOPIC' })
  await t.rejects(app.realtime.publish('room/lobby', {} as never), { code: 'FST_REALTIME_INVALID_DATA' })
  t.throws(() => app.realtime.topic('room/:name', { message: Message }), { code: 'FST_REALTIME_DUPLICATE_TOPIC' })
  for (const bad of ['', 'a//b', 'a/:1x', 'a/:x/:x', 'a/:__proto__']) {
    t.throws(() => app.realtime.topic(bad, { message: Message }), { code: 'FST_REALTIME_INVALID_PATTERN' }, `pattern "${bad}" is refused`)
  }
  t.throws(() => app.realtime.topic('nomessage', {} as never), { code: 'FST_REALTIME_INVALID_PATTERN' })
  const handle = app.realtime.topic('t/:a/:b', { message: Message })
  t.equal(handle.name({ a: 'x', b: 2 }), 't/x/2')
  t.throws(() => handle.name({ a: 'x/y', b: 1 }), { code: 'FST_REALTIME_INVALID_DATA' })
})

t.test('client publish: only where allowed, validated, authorized', async (t) => {
  const { url } = await build(t, {}, (app) => {
    app.realtime.topic('open/:name', { message: Message, clientPublish: true, authorize: ({ action, params }) => action !== 'publish' || params.name !== 'ro' })
    app.realtime.topic('closed', { message: Message })
  })
  const a = await connect(t, url)
  const b = await connect(t, url)
  await b.request('subscribe', { topic: 'open/x' })
  const res = await a.request('publish', { topic: 'open/x', data: { text: 'hi' } })
  t.same(res.data, { offset: 1 })
  t.same((await b.nextOfType('message')).data, { text: 'hi' })
  t.equal((await a.request('publish', { topic: 'closed', data: { text: 'hi' } })).error?.code, 'FORBIDDEN')
  t.equal((await a.request('publish', { topic: 'open/ro', data: { text: 'hi' } })).error?.code, 'FORBIDDEN')
  const invalid = await a.request('publish', { topic: 'open/x', data: { text: 1 } })
  t.equal(invalid.error?.code, 'VALIDATION_FAILED')
  t.same(invalid.error?.details, [{ path: '/data/text', message: 'must be string' }])
  t.equal((await a.request('publish', { data: {} })).error?.code, 'VALIDATION_FAILED')
})

t.test('subscription limit and topic length limit', async (t) => {
  const { url } = await build(t, { maxSubscriptions: 2, maxTopicLength: 10 }, (app) => {
    app.realtime.topic('t/:n', { message: Message })
  })
  const c = await connect(t, url)
  t.equal((await c.request('subscribe', { topic: 't/1' })).type, 'reply')
  t.equal((await c.request('subscribe', { topic: 't/2' })).type, 'reply')
  const third = await c.request('subscribe', { topic: 't/3' })
  t.equal(third.error?.code, 'LIMIT_EXCEEDED', 'one past maxSubscriptions is refused')
  await c.request('unsubscribe', { topic: 't/1' })
  t.equal((await c.request('subscribe', { topic: 't/3' })).type, 'reply', 'room again after unsubscribing')
  t.equal((await c.request('subscribe', { topic: 't/12345678' })).error?.code, 'LIMIT_EXCEEDED', 'one past maxTopicLength')
  t.equal((await c.request('presence', { topic: 't/1' })).error?.code, 'FORBIDDEN', 'no topic has presence on')
  t.equal((await c.request('presence', {})).error?.code, 'VALIDATION_FAILED')
  t.equal((await c.request('unsubscribe', {})).error?.code, 'VALIDATION_FAILED')
})

t.test('resubscribing with since: recovered, or plainly not', async (t) => {
  const { app, url } = await build(t, {}, (app) => {
    app.realtime.topic('feed', { message: Message })
    app.realtime.topic('nohistory', { message: Message, history: { size: 0 } })
  })
  const c = await connect(t, url)
  const sub = await c.request('subscribe', { topic: 'feed' })
  await app.realtime.publish('feed', { text: '1' })
  const m = await c.nextOfType('message')
  await c.request('unsubscribe', { topic: 'feed' })
  const same = await c.request('subscribe', { topic: 'feed', since: { offset: m.offset, epoch: sub.data.epoch } })
  t.equal(same.data.recovered, true, 'same position, nothing published since')
  await c.request('unsubscribe', { topic: 'feed' })
  await app.realtime.publish('feed', { text: '2' })
  const missed = await c.request('subscribe', { topic: 'feed', since: { offset: m.offset, epoch: sub.data.epoch } })
  t.equal(missed.data.recovered, true, 'the missed publication is in the history')
  t.same(await c.nextOfType('message'), { type: 'message', topic: 'feed', offset: 2, epoch: sub.data.epoch, data: { text: '2' } }, 'and replayed right after the reply')
  await c.request('unsubscribe', { topic: 'feed' })
  const otherEpoch = await c.request('subscribe', { topic: 'feed', since: { offset: 2, epoch: 'old' } })
  t.equal(otherEpoch.data.recovered, false, 'another epoch is never recovered')
  const none = await c.request('subscribe', { topic: 'nohistory' })
  await app.realtime.publish('nohistory', { text: 'x' })
  await c.nextOfType('message')
  await c.request('unsubscribe', { topic: 'nohistory' })
  await app.realtime.publish('nohistory', { text: 'missed' })
  const lost = await c.request('subscribe', { topic: 'nohistory', since: { offset: 1, epoch: none.data.epoch } })
  t.same(lost.data, { topic: 'nohistory', offset: 2, epoch: none.data.epoch, recovered: false }, 'without history a miss is told, not hidden')
  t.throws(() => app.realtime.topic('bad', { message: Message, history: { size: -1 } }), { code: 'FST_REALTIME_INVALID_PATTERN' })
})
