// The publisher for processes that are not servers: its publications join the same
// stream as a server's (one offset sequence, one history), serialised by the topic's
// schema, and reach the plugin's subscribers on every node.
import t from 'tap'
import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { createPublisher } from '../../lib/pubsub/publisher.js'
import { connect } from '../fixtures/helpers.js'
import { REDIS_URL, dropKeys, reachable, requireOrSkip, startNode, uniquePrefix } from '../fixtures/redis.js'

const Post = Type.Object({ text: Type.String(), by: Type.String() })
const Params = Type.Object({ id: Type.Integer({ minimum: 1 }) })

if (requireOrSkip(t, await reachable(), `Redis is not reachable at ${REDIS_URL}`)) {
  const prefix = uniquePrefix('publisher')
  t.teardown(() => dropKeys(REDIS_URL, prefix))

  const declare = (app: FastifyInstance) => {
    app.realtime.topic('news/:id', { params: Params, message: Post, history: { size: 10, ttl: 0 } })
  }
  const topics = { 'news/:id': { message: Post, params: Params, history: { size: 10, ttl: 0 } } }

  t.test('a worker publishes into a topic the server declares: same offsets, same history, schema applied', async (t) => {
    const node = await startNode(t, { redis: REDIS_URL, prefix }, declare)
    const publisher = createPublisher({ redis: REDIS_URL, prefix, topics })
    t.teardown(() => publisher.close())
    const client = await connect(t, node.url)
    const reply = await client.request('subscribe', { topic: 'news/1' })
    t.equal(reply.data.offset, 0)

    const first = await publisher.publish('news/1', { text: 'hello', by: 'cron', secret: 'dropped' })
    t.same(first, { topic: 'news/1', offset: 1, epoch: reply.data.epoch })
    const message = await client.nextOfType('message')
    t.same(message, { type: 'message', topic: 'news/1', offset: 1, epoch: reply.data.epoch, data: { text: 'hello', by: 'cron' } }, 'serialised by the schema')

    const fromServer = await node.app.realtime.publish('news/1', { text: 'from the server', by: 'node' })
    t.equal(fromServer.offset, 2, 'one offset sequence for both')
    await client.nextOfType('message')

    const handle = publisher.topic('news/:id')
    t.equal(handle.name({ id: 1 }), 'news/1')
    const third = await handle.publish({ id: 1 }, { text: 'typed', by: 'cron' })
    t.equal(third.offset, 3)
    t.equal((await client.nextOfType('message')).offset, 3)

    const typing = await publisher.publish('news/1', { text: '…', by: 'cron' }, { ephemeral: true, except: 'nobody' })
    t.same(typing, { topic: 'news/1', offset: 0, epoch: reply.data.epoch })
    t.same(await client.nextOfType('message'), { type: 'message', topic: 'news/1', ephemeral: true, data: { text: '…', by: 'cron' } })

    const history = await node.app.realtime.history('news/1')
    t.same(history.publications.map((p) => (p.data as { by: string }).by), ['cron', 'node', 'cron'], 'the server sees the worker\'s publications in history')
    t.same((await publisher.broker.history('news/1', 10)).publications.length, 3)
  })

  t.test('undeclared topics, params and data that fail their schemas are refused', async (t) => {
    const publisher = createPublisher({ redis: REDIS_URL, prefix, topics, history: { size: 5 } })
    t.teardown(() => publisher.close())
    await t.rejects(publisher.publish('other/1', { text: 'x', by: 'y' }), { code: 'FST_REALTIME_UNKNOWN_TOPIC' })
    await t.rejects(publisher.publish('news/abc', { text: 'x', by: 'y' }), { code: 'FST_REALTIME_UNKNOWN_TOPIC' }, 'params by their schema')
    await t.rejects(publisher.publish('news/1', { text: 'no author' }), { code: 'FST_REALTIME_INVALID_DATA', message: /topic "news\/1".*by/ }, 'naming the topic and what is wrong')
    await t.rejects(publisher.publish(42 as unknown as string, {}), { code: 'FST_REALTIME_UNKNOWN_TOPIC' })
    t.throws(() => publisher.topic('nope/:id' as 'news/:id'), { code: 'FST_REALTIME_UNKNOWN_TOPIC' })
    await t.rejects(publisher.topic('news/:id').publish({ id: 'a/b' }, { text: 'x', by: 'y' }), { code: 'FST_REALTIME_INVALID_DATA' })
  })

  t.test('maxTopicLength: a longer name is refused before Redis sees it, as on the server', async (t) => {
    t.throws(() => createPublisher({ redis: REDIS_URL, prefix, topics, maxTopicLength: 0 }), { code: 'FST_REALTIME_INVALID_OPTION' })
    t.throws(() => createPublisher({ redis: REDIS_URL, prefix, topics, maxTopicLength: 1.5 }), { code: 'FST_REALTIME_INVALID_OPTION' })
    const short = createPublisher({ redis: REDIS_URL, prefix, topics: { 'w/*path': { message: Post } }, maxTopicLength: 12 })
    t.teardown(() => short.close())
    t.equal((await short.publish('w/0123456789', { text: 'x', by: 'y' })).offset, 1, '12 characters: at the limit')
    await t.rejects(short.publish('w/0123456789a', { text: 'x', by: 'y' }), { code: 'FST_REALTIME_UNKNOWN_TOPIC' }, 'one more: no topic')
    t.throws(() => short.topic('w/*path').name({ path: '0123456789a' }), { code: 'FST_REALTIME_INVALID_DATA' }, 'name() refuses to build it')
    const byDefault = createPublisher({ redis: REDIS_URL, prefix, topics: { 'w/*path': { message: Post } } })
    t.teardown(() => byDefault.close())
    await t.rejects(byDefault.publish('w/' + 'a'.repeat(255), { text: 'x', by: 'y' }), { code: 'FST_REALTIME_UNKNOWN_TOPIC' }, '257 characters over the default 256')
  })

  t.test('defaults follow the server: history 100 publications, 5 minutes; its own connection is closed', async (t) => {
    const publisher = createPublisher({ redis: REDIS_URL, prefix, topics: { 'plain/:id': { message: Post } } })
    await publisher.publish('plain/1', { text: 'x', by: 'y' })
    const probe = new Redis(REDIS_URL)
    t.teardown(() => probe.quit())
    const ttl = await probe.pttl(`${prefix}{plain/1}:stream`)
    t.ok(ttl > 299_000 && ttl <= 300_000, 'stream kept 5 minutes')
    await publisher.close()
    t.equal(publisher.broker.connected, false)
    await t.rejects(publisher.publish('plain/1', { text: 'x', by: 'y' }), { code: 'FST_REALTIME_BROKER_CLOSED' })
  })

  t.test('Redis unreachable: publish rejects with FST_REALTIME_BROKER_UNAVAILABLE', async (t) => {
    const publisher = createPublisher({ redis: { port: 1, retryStrategy: () => null }, prefix, topics })
    t.teardown(() => publisher.close())
    await t.rejects(publisher.publish('news/1', { text: 'x', by: 'y' }), { code: 'FST_REALTIME_BROKER_UNAVAILABLE' })
  })
}
