// Outbound data is checked against its schema, never silently coerced: a reply that
// does not match answers INTERNAL (logged with the route and the problem); publish,
// send, broadcast and event handles throw FST_REALTIME_INVALID_DATA naming the topic
// or event and the path. And routes that take no data.
import t from 'tap'
import { Type } from '@sinclair/typebox'
import { build, connect, logCapture } from '../fixtures/helpers.js'

t.test('a reply of the wrong type answers INTERNAL and is logged, instead of being truncated or converted', async (t) => {
  const log = logCapture()
  const { url } = await build(t, {}, (app) => {
    app.realtime.route({ type: 'r', schema: { data: Type.Unknown(), reply: Type.Object({ n: Type.Integer() }) }, handler: () => ({ n: 1.5 }) })
    app.realtime.route({ type: 's', schema: { data: Type.Unknown(), reply: Type.Object({ s: Type.String() }) }, handler: () => ({ s: 5 } as never) })
    app.realtime.route({ type: 'ok', schema: { data: Type.Unknown(), reply: Type.Object({ n: Type.Integer() }) }, handler: () => ({ n: 2, extra: 'not sent' } as never) })
  }, { logger: { level: 'error', stream: log.stream } })
  const c = await connect(t, url)
  t.same((await c.request('r', null)).error, { code: 'INTERNAL', message: 'Internal error', temporary: true }, '{ n: 1.5 } for an integer')
  t.same((await c.request('s', null)).error?.code, 'INTERNAL', '{ s: 5 } for a string')
  t.same((await c.request('ok', null)).data, { n: 2 }, 'a matching reply is sent; unnamed properties are not')
  const logged = log.lines.filter((l) => typeof l.msg === 'string' && (l.msg as string).includes('does not match its schema'))
  t.equal(logged.length, 2)
  t.match(logged[0], { type: 'r', problem: '/n must be integer' }, 'the log names the route and the problem')
})

t.test('validateReplies: false sends what the serializer makes of it (measured teams only)', async (t) => {
  const { url } = await build(t, { validateReplies: false }, (app) => {
    app.realtime.route({ type: 'r', schema: { data: Type.Unknown(), reply: Type.Object({ n: Type.Integer() }) }, handler: () => ({ n: 1.5 }) })
  })
  const c = await connect(t, url)
  t.same((await c.request('r', null)).data, { n: 1 })
})

t.test('publish, send, broadcast and event handles refuse data that fails the schema, naming topic or event and path', async (t) => {
  const { app, url } = await build(t, {}, (app) => {
    app.realtime.topic('room/:name', { message: Type.Object({ text: Type.String(), n: Type.Optional(Type.Integer()) }) })
  })
  const notice = app.realtime.event('notice', Type.Object({ n: Type.Integer() }))
  const room = app.realtime.topic('plain', { message: Type.Object({ text: Type.String() }) })
  const c = await connect(t, url)
  await c.request('subscribe', { topic: 'room/a' })

  await t.rejects(app.realtime.publish('room/a', { text: 5 }), { code: 'FST_REALTIME_INVALID_DATA', message: 'Invalid data for topic "room/a": /text must be string' })
  await t.rejects(app.realtime.publish('room/a', { text: 'x', n: 1.5 }), { code: 'FST_REALTIME_INVALID_DATA', message: /topic "room\/a": \/n must be integer/ })
  await t.rejects(room.publish({}, { text: 5 } as never), { code: 'FST_REALTIME_INVALID_DATA', message: /topic "plain"/ })
  t.throws(() => notice.broadcast({ n: 1.5 }), { code: 'FST_REALTIME_INVALID_DATA', message: 'Invalid data for event "notice": /n must be integer' })
  t.throws(() => notice.send('someone', { n: 1.5 }), { code: 'FST_REALTIME_INVALID_DATA' })
  t.throws(() => app.realtime.broadcast('notice', { n: '1' }), { code: 'FST_REALTIME_INVALID_DATA', message: /\/n must be integer/ })
  t.throws(() => app.realtime.send('nobody', 'notice', {}), { code: 'FST_REALTIME_INVALID_DATA', message: /must have required property 'n'/ })

  const ok = await app.realtime.publish('room/a', { text: 'fine', n: 2 })
  t.equal(ok.offset, 1, 'refused publications took no offset')
  const first = await c.nextOfType('message')
  t.same([first.offset, first.data], [1, { text: 'fine', n: 2 }], 'nothing refused reached the client')
  t.equal(notice.broadcast({ n: 3 }), 1)
  t.same((await c.nextOfType('notice')).data, { n: 3 })
})

t.test('outbound data is checked once per publication or broadcast, never once per subscriber', async (t) => {
  let checks = 0
  // A format that counts its calls: every check of the schema runs it once.
  const ajv = { customOptions: { formats: { counted: { type: 'string' as const, validate: () => { checks++; return true } } } } }
  const { app, url } = await build(t, { ajv }, (app) => {
    app.realtime.topic('feed', { message: Type.Object({ text: Type.String({ format: 'counted' }) }) })
  })
  const notice = app.realtime.event('notice', Type.Object({ text: Type.String({ format: 'counted' }) }))
  const clients = await Promise.all([1, 2, 3, 4, 5].map(async () => await connect(t, url)))
  for (const c of clients) await c.request('subscribe', { topic: 'feed' })
  checks = 0
  await app.realtime.publish('feed', { text: 'to five subscribers' })
  for (const c of clients) t.equal((await c.nextOfType('message')).data.text, 'to five subscribers')
  t.equal(checks, 1, 'one publication, one check')
  checks = 0
  t.equal(notice.broadcast({ text: 'to five connections' }), 5)
  for (const c of clients) await c.nextOfType('notice')
  t.equal(checks, 1, 'one broadcast, one check')
})

t.test('a route without a data schema takes no data', async (t) => {
  const seen: unknown[] = []
  const { url } = await build(t, {}, (app) => {
    app.realtime.route({ type: 'get_status', schema: { reply: Type.Object({ up: Type.Boolean() }) }, handler: (data) => { seen.push(data); return { up: true } } })
    app.realtime.route({ type: 'poke', handler: (data) => { seen.push(data) } })
  })
  const c = await connect(t, url)
  t.same((await c.request('get_status')).data, { up: true }, 'a frame without data')
  t.same((await c.request('get_status', { verbose: true })).error, {
    code: 'VALIDATION_FAILED', message: 'data does not match the schema', details: [{ path: '', message: 'this route takes no data' }]
  }, 'a frame with data is refused')
  t.same((await c.request('get_status', null)).error?.code, 'VALIDATION_FAILED', 'null is data too')
  t.same(await c.request('poke'), { type: 'reply', id: 4 }, 'no schema at all: no data, a reply without data')
  t.same(seen, [undefined, undefined], 'the handler gets undefined')
})
