import t from 'tap'
import { Type } from '@sinclair/typebox'
import { build, connect } from '../fixtures/helpers.js'

const Send = {
  data: Type.Object({ room: Type.String(), text: Type.String({ minLength: 1, maxLength: 20 }) }),
  reply: Type.Object({ id: Type.String(), length: Type.Integer() }),
  errors: { ROOM_FULL: Type.Object({ capacity: Type.Integer() }) }
}

t.test('a route validates data, runs its handler and replies by its schema', async (t) => {
  const seen: unknown[] = []
  const { url } = await build(t, {}, (app) => {
    app.realtime.route({
      type: 'chat.send',
      schema: Send,
      handler: (data) => {
        seen.push(data)
        // `secret` is not in the reply schema: it must not reach the wire.
        return { id: 'm-1', length: data.text.length, secret: 'hunter2' } as { id: string, length: number }
      }
    })
  })
  const c = await connect(t, url)
  const ok = await c.request('chat.send', { room: 'general', text: 'hi' })
  t.same(ok, { type: 'reply', id: ok.id, data: { id: 'm-1', length: 2 } })
  t.notOk('secret' in ok.data, 'properties outside the reply schema are not sent')

  const bad = await c.request('chat.send', { room: 'general', text: '' })
  t.equal(bad.type, 'error')
  t.equal(bad.error?.code, 'VALIDATION_FAILED')
  t.same(bad.error?.details, [{ path: '/text', message: 'must NOT have fewer than 1 characters' }])

  const missing = await c.request('chat.send', { text: 'x' })
  t.same(missing.error?.details, [{ path: '/room', message: "must have required property 'room'" }])

  const noData = await c.request('chat.send')
  t.equal(noData.error?.code, 'VALIDATION_FAILED')
  t.same(seen, [{ room: 'general', text: 'hi' }], 'the handler never saw invalid data')
})

t.test('string ids are echoed, fire-and-forget gets no reply but does get errors', async (t) => {
  let calls = 0
  const { url } = await build(t, {}, (app) => {
    app.realtime.route({ type: 'count', schema: { data: Type.Object({ n: Type.Integer() }) }, handler: () => { calls++ } })
  })
  const c = await connect(t, url)
  c.send({ type: 'count', id: 'abc', data: { n: 1 } })
  t.same(await c.nextOfType('reply'), { type: 'reply', id: 'abc' }, 'a route without reply schema answers with an empty reply')
  c.send({ type: 'count', data: { n: 2 } })
  c.send({ type: 'count', data: { n: 'x' } })
  const err = await c.nextOfType('error')
  t.equal(err.error?.code, 'VALIDATION_FAILED')
  t.notOk('id' in err, 'an error for a message without id carries no id')
  c.send({ type: 'ping', id: 'p' })
  await c.nextOfType('pong')
  t.equal(calls, 2)
  t.equal(c.frames.filter((f) => f.type === 'reply').length, 0, 'no reply for fire-and-forget messages')
})

t.test('async handlers, ctx.reply and declared error codes', async (t) => {
  const { url } = await build(t, {}, (app) => {
    app.realtime.route({
      type: 'chat.send',
      schema: Send,
      handler: async (data, ctx) => {
        await new Promise((resolve) => setImmediate(resolve))
        if (data.room === 'full') throw ctx.error('ROOM_FULL', { capacity: 3 }, 'The room is full')
        if (data.room === 'early') {
          ctx.reply({ id: 'early', length: 0 })
          return { id: 'ignored', length: 1 }
        }
        return { id: ctx.connection.id, length: data.text.length }
      }
    })
  })
  const c = await connect(t, url)
  const full = await c.request('chat.send', { room: 'full', text: 'x' })
  t.same(full.error, { code: 'ROOM_FULL', message: 'The room is full', details: { capacity: 3 } })
  const early = await c.request('chat.send', { room: 'early', text: 'x' })
  t.same(early.data, { id: 'early', length: 0 }, 'the first reply wins')
  c.send({ type: 'ping', id: 'p' })
  await c.nextOfType('pong')
  t.equal(c.frames.filter((f) => f.type === 'reply').length, 0, 'exactly one answer per id')
})

t.test('a failing handler answers INTERNAL, logs with the connection id, and disturbs nothing else', async (t) => {
  const logs: any[] = []
  const stream = { write: (line: string) => { logs.push(JSON.parse(line)) } }
  const { url } = await build(t, {}, (app) => {
    app.realtime.route({ type: 'boom', schema: { data: Type.Any() }, handler: () => { throw new Error('db password is hunter2') } })
    app.realtime.route({ type: 'reject', schema: { data: Type.Any() }, handler: async () => { throw new Error('async failure') } })
    app.realtime.route({ type: 'undeclared', schema: { data: Type.Any() }, handler: (_d, ctx) => { throw ctx.error('NOPE' as never, {} as never) } })
    app.realtime.route({ type: 'badreply', schema: { data: Type.Any(), reply: Type.Object({ n: Type.Integer() }) }, handler: () => ({}) as { n: number } })
    app.realtime.route({ type: 'ok', schema: { data: Type.Any(), reply: Type.Object({ ok: Type.Boolean() }) }, handler: () => ({ ok: true }) })
  }, { logger: { level: 'info', stream } })
  const a = await connect(t, url)
  const b = await connect(t, url)
  for (const type of ['boom', 'reject', 'undeclared', 'badreply']) {
    const res = await a.request(type, {})
    t.same(res.error, { code: 'INTERNAL', message: 'Internal error', temporary: true }, `${type}: INTERNAL, revealing nothing`)
  }
  t.same((await a.request('ok', {})).data, { ok: true }, 'the same connection carries on')
  t.same((await b.request('ok', {})).data, { ok: true }, 'its neighbours carry on')
  const errors = logs.filter((l) => l.level >= 50)
  t.equal(errors.length, 4)
  for (const entry of errors) t.match(entry.connectionId, /^[0-9a-f-]{36}$/, 'logged with the connection id')
  t.ok(errors.some((e) => e.err?.message === 'db password is hunter2'), 'the cause is in the log, not on the wire')
})

t.test('route declarations are checked at registration', async (t) => {
  const { app } = await build(t)
  const data = Type.Object({})
  const handler = () => {}
  app.realtime.route({ type: 'a.b', schema: { data }, handler })
  t.throws(() => app.realtime.route({ type: 'a.b', schema: { data }, handler }), { code: 'FST_REALTIME_DUPLICATE_ROUTE' })
  for (const type of ['subscribe', 'ping', 'auth', 'publish', 'presence', 'unsubscribe', 'reply', 'message']) {
    t.throws(() => app.realtime.route({ type, schema: { data }, handler }), { code: 'FST_REALTIME_RESERVED_TYPE' }, `${type} is reserved`)
  }
  t.throws(() => app.realtime.route({ type: '', schema: { data }, handler }), { code: 'FST_REALTIME_INVALID_NAME' })
  t.throws(() => app.realtime.route({ type: 'x', schema: { data }, handler: 1 as never }), { code: 'FST_REALTIME_INVALID_NAME' })
  t.throws(() => app.realtime.route({ type: 'x', schema: 5 as never, handler }), { code: 'FST_REALTIME_SCHEMA', message: /schema must be an object/ })
  t.throws(() => app.realtime.route({ type: 'x', schema: { data, errors: { FORBIDDEN: data } }, handler }), { code: 'FST_REALTIME_RESERVED_TYPE' })
  t.throws(() => app.realtime.route({ type: 'x', schema: { data, errors: { lower: data } }, handler }), { code: 'FST_REALTIME_INVALID_NAME' })
  t.throws(() => app.realtime.route({ type: 'x', schema: { data: { type: 'nope' } as never }, handler }), { code: 'FST_REALTIME_SCHEMA', message: /route "x"/ })
})

t.test('ctx holds what README documents: the runner\'s own state (compiled route, answered, the idempotent capture) is not on it', async (t) => {
  const seen: object[] = []
  const { url } = await build(t, {}, (app) => {
    app.realtime.route({
      type: 'look',
      idempotent: true,
      schema: { reply: Type.String() },
      handler: (_data, ctx) => {
        seen.push(ctx)
        return ctx.type
      }
    })
  })
  const c = await connect(t, url)
  t.equal((await c.request('look')).data, 'look', 'a plain run')
  c.send({ type: 'look', id: 'k', key: 'key-1' })
  t.equal((await c.next((f) => f.id === 'k')).data, 'look', 'an idempotent run with a key')
  t.equal(seen.length, 2)
  for (const ctx of seen) {
    t.same(Object.keys(ctx).sort(), ['connection', 'id', 'publish', 'reply'], 'own fields: the documented ones')
    for (const internal of ['route', 'replied', 'capture']) t.notOk(internal in ctx, `no ctx.${internal}`)
  }
})
