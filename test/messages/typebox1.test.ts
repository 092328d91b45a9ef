// TypeBox 1.x (the `typebox` package) at run time: its schemas validate a route's data,
// serialise its reply and error details, check and serialise a topic's publications and an
// event's data, exactly as TypeBox 0.34's do (route-runner.test.ts, topics.test.ts).
// Its `'~kind'` and `'~optional'` keys are not enumerable: the schema compiler sees JSON Schema.
import t from 'tap'
import { Type } from 'typebox'
import { build, connect } from '../fixtures/helpers.js'
import { defineContract } from '../../lib/index.js'

const contract = defineContract({
  routes: {
    'chat.send': {
      data: Type.Object({ room: Type.String(), text: Type.String({ minLength: 1 }), tags: Type.Optional(Type.Array(Type.String())) }),
      reply: Type.Object({ id: Type.String(), length: Type.Integer() }),
      errors: { ROOM_FULL: Type.Object({ capacity: Type.Integer() }) }
    }
  },
  topics: {
    'room/:name': { params: Type.Object({ name: Type.String({ maxLength: 8 }) }), message: Type.Object({ text: Type.String() }) }
  },
  events: { notice: Type.Object({ text: Type.String() }) }
})

t.test('a route with TypeBox 1 schemas validates, replies and answers its errors by them', async (t) => {
  const seen: unknown[] = []
  const { url } = await build(t, {}, (app) => {
    app.realtime.route({
      type: 'chat.send',
      schema: contract.routes['chat.send'],
      handler: (data, ctx) => {
        seen.push(data)
        if (data.room === 'full') throw ctx.error('ROOM_FULL', { capacity: 3 })
        return { id: 'm-1', length: data.text.length, secret: 'x' } as { id: string, length: number }
      }
    })
  })
  const c = await connect(t, url)
  const ok = await c.request('chat.send', { room: 'general', text: 'hi', tags: ['a'] })
  t.same(ok, { type: 'reply', id: ok.id, data: { id: 'm-1', length: 2 } }, 'serialised by the reply schema')
  t.notOk('secret' in ok.data)

  const noTags = await c.request('chat.send', { room: 'general', text: 'yo' })
  t.equal(noTags.type, 'reply', 'an Optional property may be left out')

  const bad = await c.request('chat.send', { room: 'general', text: '' })
  t.equal(bad.error?.code, 'VALIDATION_FAILED')
  t.same(bad.error?.details, [{ path: '/text', message: 'must NOT have fewer than 1 characters' }])
  const missing = await c.request('chat.send', { text: 'x' })
  t.same(missing.error?.details, [{ path: '/room', message: "must have required property 'room'" }])
  const wrongTags = await c.request('chat.send', { room: 'general', text: 'x', tags: [1] })
  t.equal(wrongTags.error?.code, 'VALIDATION_FAILED')

  const full = await c.request('chat.send', { room: 'full', text: 'x' })
  t.equal(full.error?.code, 'ROOM_FULL')
  t.same(full.error?.details, { capacity: 3 })
  t.same(seen, [{ room: 'general', text: 'hi', tags: ['a'] }, { room: 'general', text: 'yo' }, { room: 'full', text: 'x' }])
})

t.test('a topic and an event with TypeBox 1 schemas check and serialise what is sent', async (t) => {
  const { app, url } = await build(t, {}, (app) => {
    app.realtime.topic('room/:name', contract.topics['room/:name'])
    app.realtime.event('notice', contract.events.notice)
  })
  const c = await connect(t, url)
  const sub = await c.request('subscribe', { topic: 'room/general' })
  t.equal(sub.type, 'reply')
  const tooLong = await c.request('subscribe', { topic: 'room/much-too-long' })
  t.equal(tooLong.error?.code, 'FORBIDDEN', 'params checked by their schema')

  await app.realtime.publish('room/general', { text: 'one', hidden: true } as never)
  const m = await c.nextOfType('message')
  t.same(m.data, { text: 'one' }, 'serialised by the message schema')
  await t.rejects(app.realtime.publish('room/general', { text: 1 } as never), 'refused by the message schema')

  t.throws(() => app.realtime.broadcast('notice', { text: 1 } as never), { code: 'FST_REALTIME_INVALID_DATA' })
  app.realtime.broadcast('notice', { text: 'hello', extra: 1 } as never)
  const e = await c.nextOfType('notice')
  t.same(e.data, { text: 'hello' }, 'serialised by the event schema')
})
