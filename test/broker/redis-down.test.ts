// The Redis broker while Redis is down (lib/broker/redis.ts, `localWhileDown`), through
// the plugin: two chat nodes on one redis-server of the test's own (append-only file, so
// the history outlives the kill), a subscriber on each, Redis killed, then a route
// handler that publishes. By default the post is refused (UNAVAILABLE), delivered
// nowhere, and the history has no hole once Redis is back. Opted in, the local node's
// subscribers get it marked `local`, and no recovery counts it.
import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import type { RedisBrokerOptions } from '../../lib/broker/redis.js'
import { connect, until, type Frame, type TestClient, type TestContext } from '../fixtures/helpers.js'
import { FeedClient, hasRedisServer, requireOrSkip, sleep, startNode, startRedisServer, uniquePrefix, type Node, type RedisServer } from '../fixtures/redis.js'

const ROOM = 'room/general'

function chat (app: FastifyInstance): void {
  app.realtime.topic('room/:name', { message: Type.Object({ text: Type.String() }), history: { size: 100, ttl: 0 } })
  app.realtime.route({
    type: 'chat.send',
    schema: { data: Type.Object({ room: Type.String(), text: Type.String() }), reply: Type.Object({ offset: Type.Integer() }) },
    async handler (data, ctx) {
      const { offset } = await ctx.publish(`room/${data.room}`, { text: data.text })
      return { offset }
    }
  })
}

interface Setup {
  server: RedisServer
  a: Node
  b: Node
  /** Sends chat.send on node a. */
  sender: TestClient
  /** A subscriber on each node that checks offsets as they come (and resubscribes with `since` when told). */
  feedA: FeedClient
  feedB: FeedClient
}

async function setup (t: TestContext, brokerOptions: RedisBrokerOptions = {}): Promise<Setup> {
  const dir = await mkdtemp(join(tmpdir(), 'rt-redis-down-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  // Registered before the nodes, so it is killed after them (teardowns run last first).
  const server = await startRedisServer(t, ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir])
  const prefix = uniquePrefix('down')
  const a = await startNode(t, { redis: server.url, prefix, ...brokerOptions }, chat)
  const b = await startNode(t, { redis: server.url, prefix, ...brokerOptions }, chat)
  const feedA = new FeedClient(a.url, ROOM)
  const feedB = new FeedClient(b.url, ROOM)
  t.teardown(() => Promise.all([feedA.close(), feedB.close()]))
  await Promise.all([feedA.open(), feedB.open()])
  await until(() => feedA.settled && feedB.settled)
  const sender = await connect(t, a.url)
  return { server, a, b, sender, feedA, feedB }
}

/** Texts of the posts answered as sent (a `reply`), per sender. */
const answered = new WeakMap<TestClient, string[]>()

async function post (sender: TestClient, text: string): Promise<Frame> {
  const answer = await sender.request('chat.send', { room: 'general', text })
  if (answer.type === 'reply') {
    if (!answered.has(sender)) answered.set(sender, [])
    answered.get(sender)?.push(text)
  }
  return answer
}

/** Once Redis is back: the post is retried (as a client would on UNAVAILABLE) until it is taken. */
async function postWhenBack (sender: TestClient, text: string): Promise<Frame> {
  let answer: Frame | null = null
  await until(async () => {
    answer = await post(sender, text)
    if (answer.type === 'error' && answer.error?.code === 'UNAVAILABLE') await sleep(50)
    return answer.type !== 'error' || answer.error?.code !== 'UNAVAILABLE'
  }, 15_000)
  return answer as unknown as Frame
}

async function down (s: Setup): Promise<void> {
  await s.server.kill()
  await until(() => !s.a.broker.connected && !s.b.broker.connected, 10_000)
}

async function back (s: Setup): Promise<void> {
  await s.server.start()
  await until(() => s.a.broker.connected && s.b.broker.connected, 10_000)
}

const texts = (list: Array<{ data: any }>): string[] => list.map((p) => p.data.text)

if (requireOrSkip(t, hasRedisServer(), 'redis-server is not installed')) {
  t.test('Redis down: a handler\'s publish is answered UNAVAILABLE, delivered nowhere, and the history has no hole once Redis is back', async (t) => {
    const s = await setup(t)
    const first = await post(s.sender, 'before')
    t.same(first.data, { offset: 1 })
    await until(() => s.feedA.received.length === 1 && s.feedB.received.length === 1)

    await down(s)
    const during = await post(s.sender, 'during')
    t.equal(during.type, 'error', 'not answered as sent: the broker did not take it')
    t.equal(during.error?.code, 'UNAVAILABLE')
    t.equal(during.error?.temporary, true, 'temporary: send it again later')
    t.type(during.error?.retryAfterMs, 'number')
    await t.rejects(s.a.app.realtime.publish(ROOM, { text: 'from the app' }), { code: 'FST_REALTIME_BROKER_UNAVAILABLE', statusCode: 503 },
      'app.realtime.publish rejects too')
    const typing = await s.a.app.realtime.publish(ROOM, { text: 'typing' }, { ephemeral: true })
    t.equal(typing.offset, 0, 'an ephemeral publication still reaches this node\'s subscribers...')
    await until(() => s.feedA.local.length === 1)
    t.same(s.feedA.local, [{ text: 'typing' }])

    await back(s)
    const after = await postWhenBack(s.sender, 'after')
    t.equal(after.type, 'reply', 'publishing works again once Redis is back')
    t.equal(after.data.offset, 2, 'the next offset: the refused post took none')
    await until(() => s.feedA.received.length === 2 && s.feedB.received.length === 2, 10_000)
    for (const [name, feed] of [['a', s.feedA], ['b', s.feedB]] as const) {
      t.same(feed.violations, [], `node ${name}'s subscriber: no gap, no duplicate`)
      t.same(texts(feed.received), ['before', 'after'], `node ${name}'s subscriber: the refused post is in no stream`)
    }
    t.same(s.feedB.local, [], '...and no other node\'s; nothing stream-worthy was delivered outside the stream')
    t.same(s.feedA.local, [{ text: 'typing' }])

    const history = await s.b.app.realtime.history(ROOM)
    t.same(history.publications.map((p) => (p.data as { text: string }).text), answered.get(s.sender), 'the history holds every post answered as sent')
    t.same(history.publications.map((p) => p.offset), [1, 2], 'no hole')
  })

  t.test('localWhileDown: true: the local node\'s subscribers get the post marked local, outside the stream; no recovery counts it', async (t) => {
    const s = await setup(t, { localWhileDown: true })
    const raw = await connect(t, s.a.url)
    const subscribed = await raw.request('subscribe', { topic: ROOM })
    t.equal(subscribed.type, 'reply')
    t.equal((await post(s.sender, 'before')).data.offset, 1)
    const before = await raw.next((f) => f.type === 'message')
    t.equal(before.offset, 1)
    await until(() => s.feedA.received.length === 1 && s.feedB.received.length === 1)
    const since = { offset: 1, epoch: before.epoch as string }

    await down(s)
    const during = await post(s.sender, 'during')
    t.equal(during.type, 'reply', 'opted in: answered')
    t.same(during.data, { offset: 0 }, 'with offset 0: the caller can tell it is in no stream')
    t.same(await raw.next((f) => f.type === 'message'), { type: 'message', topic: ROOM, ephemeral: true, local: true, data: { text: 'during' } },
      'on the wire: no offset or epoch, marked ephemeral and local')
    await until(() => s.feedA.local.length === 1)

    await back(s)
    const after = await postWhenBack(s.sender, 'after')
    t.equal(after.data.offset, 2, 'the local post took no offset')
    await until(() => s.feedA.received.length === 2 && s.feedB.received.length === 2, 10_000)
    t.same(s.feedA.violations, [], 'the local post did not move the subscriber\'s position: no gap, no duplicate after it')
    t.same(texts(s.feedA.received), ['before', 'after'])
    t.same(s.feedA.local, [{ text: 'during' }], 'node a\'s subscriber saw it once, outside the stream')
    t.same(s.feedB.violations, [])
    t.same(texts(s.feedB.received), ['before', 'after'])
    t.same(s.feedB.local, [], 'node b\'s subscriber never got it')

    // A client that saw the local post comes back with the position it had before it:
    // recovery replays the stream only, and does not count the local post.
    const again = await connect(t, s.a.url)
    const recovered = await again.request('subscribe', { topic: ROOM, since })
    t.equal(recovered.data.recovered, true, 'recovered: the local post is no hole')
    const replayed = await again.next((f) => f.type === 'message')
    t.same([replayed.offset, replayed.data], [2, { text: 'after' }], 'only the stream is replayed, offsets going on by one')
    t.notOk(again.frames.some((f) => f.type === 'message'), 'nothing else')
    const history = await s.a.app.realtime.history(ROOM)
    t.same(history.publications.map((p) => [p.offset, (p.data as { text: string }).text]), [[1, 'before'], [2, 'after']], 'the local post is not in the history')
  })
}
