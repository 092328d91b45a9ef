// The one delivery rule (lib/pubsub/delivery.ts), applied alike to live fan-out, to the
// publications held while a subscribe was pending and to those a subscribe with `since`
// recovered: a held publication of another epoch is a gap, told with 2500; a held or
// recovered one on a volatile topic that a full queue cannot take is dropped and
// counted, never a reason to close.
import t from 'tap'
import { Type } from '@sinclair/typebox'
import { build, connect, until } from '../fixtures/helpers.js'
import { HeldBroker, hold } from '../fixtures/held-broker.js'

t.test('a publication of another epoch held during the subscribe is a gap: 2500, not a silent jump', async (t) => {
  const broker = new HeldBroker()
  const { app, url } = await build(t, { broker }, (app) => {
    app.realtime.topic('feed', { message: Type.Object({ n: Type.Integer() }) })
  })
  await app.realtime.publish('feed', { n: 1 })
  const c = await connect(t, url)
  const gate = hold(broker)
  c.send({ type: 'subscribe', id: 1, data: { topic: 'feed' } })
  await gate.entered
  broker.inject('feed', 2, 'another-epoch', '{"n":2}')
  gate.release()
  const reply = await c.next()
  t.equal(reply.type, 'reply')
  t.equal(reply.data.offset, 1)
  t.same(await c.next(), { type: 'unsubscribed', topic: 'feed', code: 2500, reason: 'insufficient state: resubscribe with since' })
  t.same(app.realtime.stats().topics, {}, 'the subscription ended')
  t.equal(c.frames.filter((f) => f.type === 'message').length, 0, 'nothing of the other epoch was sent')
})

t.test('a held publication on a volatile topic that the queue cannot take is dropped and counted, not closed', async (t) => {
  const broker = new HeldBroker()
  const { app, url } = await build(t, { broker, maxQueue: 1024 }, (app) => {
    app.realtime.topic('ticks', { message: Type.Object({ n: Type.Integer(), pad: Type.String() }), volatile: true })
  })
  const c = await connect(t, url)
  const gate = hold(broker)
  c.send({ type: 'subscribe', id: 1, data: { topic: 'ticks' } })
  await gate.entered
  // Larger than maxQueue: no queue can take it.
  await app.realtime.publish('ticks', { n: 1, pad: 'x'.repeat(2000) })
  gate.release()
  t.equal((await c.next()).type, 'reply')
  await until(() => app.realtime.stats().messages.dropped === 1)
  await app.realtime.publish('ticks', { n: 2, pad: '' })
  const next = await c.nextOfType('message')
  t.equal(next.offset, 2, 'the next one arrives: a volatile topic skips what was dropped')
  t.equal(app.realtime.stats().connections.active, 1, 'still connected')
  c.send({ type: 'ping', id: 'p' })
  t.equal((await c.nextOfType('pong')).id, 'p')
})

t.test('held presence and ephemeral frames keep their own rules after the reply', async (t) => {
  const broker = new HeldBroker()
  const { app, url } = await build(t, { broker, maxQueue: 1024 }, (app) => {
    app.realtime.topic('room', { message: Type.Object({ text: Type.String() }), presence: true })
  })
  const other = await connect(t, url)
  await other.request('subscribe', { topic: 'room' })
  const c = await connect(t, url)
  const gate = hold(broker)
  c.send({ type: 'subscribe', id: 1, data: { topic: 'room' } })
  await gate.entered
  // An ephemeral publication (typing) too large for the queue is dropped while held...
  await app.realtime.publish('room', { text: 'x'.repeat(2000) }, { ephemeral: true })
  await app.realtime.publish('room', { text: 'typing' }, { ephemeral: true })
  gate.release()
  t.equal((await c.next()).type, 'reply')
  const typing = await c.next()
  t.same(typing, { type: 'message', topic: 'room', ephemeral: true, data: { text: 'typing' } }, '...and the next one still arrives')
  t.equal(app.realtime.stats().messages.dropped, 2, 'dropped and counted for each subscriber, the held one included')
  t.equal((await other.nextOfType('join')).topic, 'room', 'the other member hears the join')
})

t.test('a recovered publication on a volatile topic that the queue cannot take is dropped and counted, not closed', async (t) => {
  const { app, url } = await build(t, { maxQueue: 1024 }, (app) => {
    app.realtime.topic('ticks', { message: Type.Object({ n: Type.Integer(), pad: Type.String() }), volatile: true })
  })
  const c = await connect(t, url)
  const sub = await c.request('subscribe', { topic: 'ticks' })
  await c.request('unsubscribe', { topic: 'ticks' })
  // Missed while away: the first larger than maxQueue (no queue can take it), then a small one.
  await app.realtime.publish('ticks', { n: 1, pad: 'x'.repeat(2000) })
  await app.realtime.publish('ticks', { n: 2, pad: '' })
  const reply = await c.request('subscribe', { topic: 'ticks', since: { offset: 0, epoch: sub.data.epoch } })
  t.same(reply.data, { topic: 'ticks', offset: 2, epoch: sub.data.epoch, recovered: true })
  const next = await c.nextOfType('message')
  t.same([next.offset, next.data.n], [2, 2], 'the one after it is recovered: a volatile topic skips what was dropped')
  t.equal(app.realtime.stats().messages.dropped, 1, 'the dropped one is counted, as a live one is')
  c.send({ type: 'ping', id: 'p' })
  t.equal((await c.nextOfType('pong')).id, 'p', 'still connected: not closed with 4008')
  t.equal(app.realtime.stats().connections.active, 1)
  await app.realtime.publish('ticks', { n: 3, pad: '' })
  t.equal((await c.nextOfType('message')).offset, 3, 'live delivery goes on')
})

t.test('a recovered publication on an ordinary topic that the queue cannot take closes with 4008, as a live one does', async (t) => {
  const { app, url } = await build(t, { maxQueue: 1024 }, (app) => {
    app.realtime.topic('feed', { message: Type.Object({ n: Type.Integer(), pad: Type.String() }) })
  })
  const c = await connect(t, url)
  const sub = await c.request('subscribe', { topic: 'feed' })
  await c.request('unsubscribe', { topic: 'feed' })
  await app.realtime.publish('feed', { n: 1, pad: 'x'.repeat(2000) })
  c.send({ type: 'subscribe', id: 'r', data: { topic: 'feed', since: { offset: 0, epoch: sub.data.epoch } } })
  t.equal((await c.closed).code, 4008, 'never a silent gap: the slow consumer is closed')
  t.equal(c.frames.filter((f) => f.type === 'message').length, 0)
})

t.test('a connection left out with `except` moves past that publication: the next one is no gap', async (t) => {
  const { app, url } = await build(t, {}, (app) => {
    app.realtime.topic('feed', { message: Type.Object({ n: Type.Integer() }) })
  })
  const c = await connect(t, url)
  await c.request('subscribe', { topic: 'feed' })
  const [id] = [...app.realtime.connections].map((connection) => connection.id)
  await app.realtime.publish('feed', { n: 1 }, { except: id })
  await app.realtime.publish('feed', { n: 2 })
  const next = await c.nextOfType('message')
  t.equal(next.offset, 2, 'the next publication arrives')
  t.same(next.data, { n: 2 })
  t.notOk(c.frames.some((f) => f.type === 'unsubscribed'), 'no 2500: leaving one out is not a gap')
  t.equal(c.frames.filter((f) => f.type === 'message').length, 0, 'the left-out publication was not sent')
})
