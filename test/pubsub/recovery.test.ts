// Recovery after a reconnect: every missed publication, in order, no duplicate,
// between the reply and the next live one; or recovered: false and none; or, across a
// new epoch (a restart), recovered: false and the new epoch from its first publication.
import t from 'tap'
import { Socket } from 'node:net'
import { Type } from '@sinclair/typebox'
import { MemoryBroker, type Broker, type StreamPosition } from '../../lib/index.js'
import { build, connect, until, type Frame, type TestClient, type TestContext } from '../fixtures/helpers.js'
import { RedisBroker } from '../../lib/broker/redis.js'
import { REDIS_URL, dropKeys, reachable, requireOrSkip, uniquePrefix } from '../fixtures/redis.js'
import { SchemaCompiler } from '../../lib/wire/schema-compiler.js'

const Message = Type.Object({ n: Type.Integer() })

/** A memory broker whose recover() can be held open before or after it reads. */
class GatedBroker extends MemoryBroker {
  gate: 'before' | 'after' | null = null
  entered!: () => void
  release!: () => void
  override async recover (topic: string, since: StreamPosition, limit: number) {
    const wait = () => new Promise<void>((resolve) => { this.release = resolve; this.entered() })
    if (this.gate === 'before') await wait()
    const result = await super.recover(topic, since, limit)
    if (this.gate === 'after') await wait()
    return result
  }
}

for (const gate of ['before', 'after'] as const) {
  t.test(`a publication racing the history read (${gate} it) is neither lost nor sent twice`, async (t) => {
    const broker = new GatedBroker()
    const { app, url } = await build(t, { broker }, (app) => {
      app.realtime.topic('feed', { message: Message })
    })
    const c = await connect(t, url)
    const sub = await c.request('subscribe', { topic: 'feed' })
    for (let n = 1; n <= 3; n++) await app.realtime.publish('feed', { n })
    await until(() => c.frames.length === 3)
    c.frames.length = 0
    await c.request('unsubscribe', { topic: 'feed' })
    for (let n = 4; n <= 6; n++) await app.realtime.publish('feed', { n }) // missed while away

    broker.gate = gate
    const entered = new Promise<void>((resolve) => { broker.entered = resolve })
    c.send({ type: 'subscribe', id: 'r', data: { topic: 'feed', since: { offset: 3, epoch: sub.data.epoch } } })
    await entered
    await app.realtime.publish('feed', { n: 7 }) // races the read
    broker.release()
    await app.realtime.publish('feed', { n: 8 })
    await until(() => c.frames.length >= 6)
    const frames: Frame[] = c.frames
    t.equal(frames[0].type, 'reply')
    t.equal(frames[0].data.recovered, true)
    const offsets = frames.slice(1).map((f) => f.offset)
    t.same(offsets, [4, 5, 6, 7, 8], 'every publication after since, in order, exactly once')
    t.same(frames.slice(1).map((f) => f.data.n), [4, 5, 6, 7, 8])
  })
}

t.test('recovery runs authorize again: access lost while away means nothing is replayed', async (t) => {
  let allowed = true
  const { app, url } = await build(t, {}, (app) => {
    app.realtime.topic('secret', { message: Message, authorize: () => allowed })
  })
  const c = await connect(t, url)
  const sub = await c.request('subscribe', { topic: 'secret' })
  await c.request('unsubscribe', { topic: 'secret' })
  await app.realtime.publish('secret', { n: 1 })
  allowed = false
  const res = await c.request('subscribe', { topic: 'secret', since: { offset: 0, epoch: sub.data.epoch } })
  t.equal(res.error?.code, 'FORBIDDEN')
  c.send({ type: 'ping', id: 'p' })
  await c.nextOfType('pong')
  t.equal(c.frames.filter((f) => f.type === 'message').length, 0)
})

t.test('more missed than recoveryLimit is recovered: false, never a partial replay', async (t) => {
  const { app, url } = await build(t, { recoveryLimit: 2 }, (app) => {
    app.realtime.topic('feed', { message: Message })
  })
  const c = await connect(t, url)
  const sub = await c.request('subscribe', { topic: 'feed' })
  await c.request('unsubscribe', { topic: 'feed' })
  for (let n = 1; n <= 3; n++) await app.realtime.publish('feed', { n })
  const res = await c.request('subscribe', { topic: 'feed', since: { offset: 0, epoch: sub.data.epoch } })
  t.same(res.data, { topic: 'feed', offset: 3, epoch: sub.data.epoch, recovered: false })
  await app.realtime.publish('feed', { n: 4 })
  t.equal((await c.nextOfType('message')).offset, 4, 'live delivery resumes after the reply')
  t.equal(c.frames.filter((f) => f.type === 'message').length, 0, 'nothing replayed')
  const ok = await (async () => {
    await c.request('unsubscribe', { topic: 'feed' })
    return c.request('subscribe', { topic: 'feed', since: { offset: 2, epoch: sub.data.epoch } })
  })()
  t.equal(ok.data.recovered, true, 'exactly the limit is replayed')
  t.same([(await c.nextOfType('message')).offset, (await c.nextOfType('message')).offset], [3, 4])
})

t.test('a live subscriber that would miss publications is told with unsubscribed 2500', async (t) => {
  // A broker that loses a publication on the way to this node, as a network broker can.
  class LossyBroker extends MemoryBroker {
    drop = false
    override start (listener: Parameters<MemoryBroker['start']>[0]) {
      super.start((p) => { if (!(this.drop && p.offset === 2)) listener(p) })
    }
  }
  const broker = new LossyBroker()
  const { app, url } = await build(t, { broker }, (app) => {
    app.realtime.topic('feed', { message: Message })
  })
  const c = await connect(t, url)
  await c.request('subscribe', { topic: 'feed' })
  broker.drop = true
  for (let n = 1; n <= 3; n++) await app.realtime.publish('feed', { n })
  t.equal((await c.nextOfType('message')).offset, 1)
  t.same(await c.nextOfType('unsubscribed'), { type: 'unsubscribed', topic: 'feed', code: 2500, reason: 'insufficient state: resubscribe with since' })
  t.equal(c.frames.filter((f) => f.type === 'message').length, 0, 'offset 3 was not sent over the gap')
  t.same(app.realtime.stats().topics, {}, 'the subscription is gone')
  const again = await c.request('subscribe', { topic: 'feed', since: { offset: 1, epoch: (await broker.position('feed')).epoch } })
  t.equal(again.data.recovered, true)
  t.same([(await c.nextOfType('message')).offset, (await c.nextOfType('message')).offset], [2, 3], 'resubscribing with since fills the gap')
})

t.test('a publication is serialised once, framed once and written as that one Buffer to 1,000 subscribers', async (t) => {
  // Count calls of the serializer compiled for the topic's message schema.
  let serialised = 0
  const compile = SchemaCompiler.prototype.serializer
  SchemaCompiler.prototype.serializer = function (this: SchemaCompiler, schema, what, owner) {
    const serialize = compile.call(this, schema, what, owner)
    if (owner !== 'topic "wide"') return serialize
    return (data: unknown) => { serialised++; return serialize(data) }
  }
  t.teardown(() => { SchemaCompiler.prototype.serializer = compile })
  const { app, url } = await build(t, {}, (app) => {
    app.realtime.topic('wide', { message: Message })
  })
  const all = await Promise.all(Array.from({ length: 1000 }, () => connect(t, url)))
  await Promise.all(all.map((c) => c.request('subscribe', { topic: 'wide' })))
  // Every write to a socket during the publication: the one frame Buffer, written as it is.
  const write = Socket.prototype.write
  const written: unknown[] = []
  Socket.prototype.write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
    written.push(chunk)
    return (write as any).call(this, chunk, ...rest)
  } as typeof write
  let received
  try {
    await app.realtime.publish('wide', { n: 1 })
    // Over two event-loop turns (fanOutSlice 500): watched until the last subscriber has it.
    received = await Promise.all(all.map((c) => c.nextOfType('message')))
  } finally {
    Socket.prototype.write = write
  }
  t.ok(received.every((m) => m.data.n === 1 && m.offset === 1), 'all 1,000 got it')
  t.equal(serialised, 1, 'the message schema serialised it once')
  t.equal(written.length, 1000, 'one write per subscriber: header and payload in one chunk')
  t.equal(new Set(written).size, 1, 'the same frame Buffer for 1,000 subscribers')
  t.ok(Buffer.isBuffer(written[0]) && (written[0] as Buffer)[0] === 0x81, 'a whole text frame, built once')
})

t.test('history(): the latest publications of a topic, for history on join', async (t) => {
  const { app } = await build(t, {}, (app) => {
    app.realtime.topic('room/:name', { message: Message, history: { size: 3 } })
  })
  for (let n = 1; n <= 5; n++) await app.realtime.publish('room/a', { n })
  const h = await app.realtime.history('room/a', { limit: 2 })
  t.same(h.publications, [{ offset: 4, data: { n: 4 } }, { offset: 5, data: { n: 5 } }])
  t.equal(h.offset, 5)
  t.same((await app.realtime.history('room/a')).publications.map((p) => p.offset), [3, 4, 5])
  await t.rejects(app.realtime.history('nope'), { code: 'FST_REALTIME_UNKNOWN_TOPIC' })
})

t.test('a publication of another epoch, or a resync from the broker, is a gap told with 2500', async (t) => {
  class ResettingBroker extends MemoryBroker {
    epoch: string | null = null
    resync!: (topic: string) => void
    override start (...args: Parameters<MemoryBroker['start']>) {
      const [listener, presence, command, resync] = args
      this.resync = resync as (topic: string) => void
      super.start((p) => listener(this.epoch === null ? p : { ...p, epoch: this.epoch, offset: 1 }), presence, command)
    }
  }
  const broker = new ResettingBroker()
  const { app, url } = await build(t, { broker }, (app) => {
    app.realtime.topic('feed', { message: Message })
  })
  const c = await connect(t, url)
  await c.request('subscribe', { topic: 'feed' })
  await app.realtime.publish('feed', { n: 1 })
  await app.realtime.publish('feed', { n: 2 })
  t.same([(await c.nextOfType('message')).offset, (await c.nextOfType('message')).offset], [1, 2])
  broker.epoch = 'flushed' // the store came back empty: offsets restart under a new epoch
  await app.realtime.publish('feed', { n: 3 })
  t.equal((await c.nextOfType('unsubscribed')).code, 2500, 'offset 1 of a new epoch is not taken for a duplicate')
  t.equal(c.frames.filter((f) => f.type === 'message').length, 0)

  broker.epoch = null
  await c.request('subscribe', { topic: 'feed' })
  broker.resync('feed')
  t.same(await c.nextOfType('unsubscribed'), { type: 'unsubscribed', topic: 'feed', code: 2500, reason: 'insufficient state: resubscribe with since' })
  broker.resync('nobody-here')
  t.same(app.realtime.stats().topics, {})
})

/** A subscriber that saw offsets 1 and 2 of the topic `feed`, then went away: its position. */
async function sawTwo (t: TestContext): Promise<StreamPosition> {
  const { app, url } = await build(t, {}, (app) => { app.realtime.topic('feed', { message: Message }) })
  const c = await connect(t, url)
  await c.request('subscribe', { topic: 'feed' })
  for (let n = 1; n <= 2; n++) await app.realtime.publish('feed', { n })
  const last = await c.next((f) => f.type === 'message' && f.offset === 2)
  c.close()
  return { offset: 2, epoch: last.epoch as string }
}

/** Resubscribes `c` to `feed` with `since`: the reply, and the messages that follow it up to a live `{ n: 999 }` published after it. */
async function comeBack (app: Awaited<ReturnType<typeof build>>['app'], c: TestClient, since: StreamPosition): Promise<{ reply: Frame, messages: Frame[] }> {
  const reply = await c.request('subscribe', { topic: 'feed', since })
  await app.realtime.publish('feed', { n: 999 })
  await until(() => c.frames.some((f) => f.type === 'message' && f.data.n === 999))
  const messages = c.frames.filter((f) => f.type === 'message')
  return { reply, messages }
}

t.test('back after a restart (a new broker, a new epoch): told recovered: false, then the new epoch from its first publication', async (t) => {
  const old = await sawTwo(t)
  const { app, url } = await build(t, {}, (app) => { app.realtime.topic('feed', { message: Message }) })
  for (let n = 101; n <= 103; n++) await app.realtime.publish('feed', { n }) // before the client is back
  const { epoch } = await (app.realtime.broker as Broker).position('feed')
  t.not(epoch, old.epoch)
  const c = await connect(t, url)
  const { reply, messages } = await comeBack(app, c, old)
  t.same(reply.data, { topic: 'feed', offset: 0, epoch, recovered: false }, 'the gap is told; the reply names where what follows starts')
  t.same(messages.map((f) => [f.offset, f.epoch, f.data.n]), [[1, epoch, 101], [2, epoch, 102], [3, epoch, 103], [4, epoch, 999]], 'only what the restart lost is lost')
})

t.test('back after a restart whose history no longer holds the new epoch\'s start: recovered: false, live from now', async (t) => {
  for (const [what, options] of [['trimmed', { history: { size: 2 } }], ['more than recoveryLimit', { recoveryLimit: 2 }]] as const) {
    const old = await sawTwo(t)
    const { app, url } = await build(t, options, (app) => { app.realtime.topic('feed', { message: Message }) })
    for (let n = 101; n <= 103; n++) await app.realtime.publish('feed', { n })
    const { epoch } = await (app.realtime.broker as Broker).position('feed')
    const c = await connect(t, url)
    const { reply, messages } = await comeBack(app, c, old)
    t.same(reply.data, { topic: 'feed', offset: 3, epoch, recovered: false }, `${what}: from the topic's position`)
    t.same(messages.map((f) => f.offset), [4], `${what}: never a partial replay`)
  }
})

t.test('Redis restarted empty (its keys gone): a subscriber coming back gets recovered: false, then the new epoch from offset 1', async (t) => {
  // Skipped without Redis, except under CI=true where its absence is a failure.
  if (!requireOrSkip(t, await reachable(), `Redis is not reachable at ${REDIS_URL}`)) return
  const prefix = uniquePrefix('epoch-boundary')
  t.teardown(() => dropKeys(REDIS_URL, prefix))
  const broker = new RedisBroker({ redis: REDIS_URL, prefix })
  t.teardown(() => broker.close())
  const { app, url } = await build(t, { broker }, (app) => { app.realtime.topic('feed', { message: Message }) })
  const c = await connect(t, url)
  const first = await c.request('subscribe', { topic: 'feed' })
  for (let n = 1; n <= 2; n++) await app.realtime.publish('feed', { n })
  await until(() => c.frames.filter((f) => f.type === 'message').length === 2)
  await c.request('unsubscribe', { topic: 'feed' })
  c.frames.length = 0
  await dropKeys(REDIS_URL, prefix) // what a Redis restarted without persistence holds
  for (let n = 101; n <= 103; n++) await app.realtime.publish('feed', { n })
  const { epoch } = await broker.position('feed')
  t.not(epoch, first.data.epoch)
  const { reply, messages } = await comeBack(app, c, { offset: 2, epoch: first.data.epoch })
  t.same(reply.data, { topic: 'feed', offset: 0, epoch, recovered: false })
  t.same(messages.map((f) => [f.offset, f.epoch, f.data.n]), [[1, epoch, 101], [2, epoch, 102], [3, epoch, 103], [4, epoch, 999]])
})
