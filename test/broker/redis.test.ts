// The Redis broker against the shared Redis (REDIS_URL, default 127.0.0.1:6379): the
// broker contract, unchanged, then what only a networked broker has: several nodes on
// one topic, connections it owns or borrows, Redis going away.
import t from 'tap'
import { Redis } from 'ioredis'
import { RedisBroker } from '../../lib/broker/redis.js'
import type { Publication, PresenceEvent, BrokerCommand } from '../../lib/broker/types.js'
import { brokerContract, idempotencyContract } from '../fixtures/broker-contract.js'
import { REDIS_URL, dropKeys, reachable, requireOrSkip, sleep, uniquePrefix } from '../fixtures/redis.js'
import { CLAIM } from '../../lib/broker/redis-scripts.js'
import { until } from '../fixtures/helpers.js'

if (requireOrSkip(t, await reachable(), `Redis is not reachable at ${REDIS_URL}`)) {
  const prefix = uniquePrefix('broker')
  t.teardown(() => dropKeys(REDIS_URL, prefix))

  t.test('the broker contract', async (t) => {
    brokerContract(t, {
      prefix: 'c/',
      make: async (clock) => new RedisBroker({ redis: REDIS_URL, prefix, now: clock.now })
    })
  })

  t.test('the idempotency contract', async (t) => {
    idempotencyContract(t, {
      prefix: 'c/',
      make: async (clock) => new RedisBroker({ redis: REDIS_URL, prefix, now: clock.now })
    })
  })

  async function node (t: any, options: ConstructorParameters<typeof RedisBroker>[0] = {}) {
    const broker = new RedisBroker({ redis: REDIS_URL, prefix, ...options })
    const delivered: Publication[] = []
    const presence: PresenceEvent[] = []
    const commands: BrokerCommand[] = []
    const resyncs: string[] = []
    await broker.start((p) => delivered.push(p), (e) => presence.push(e), (c) => commands.push(c), (topic) => resyncs.push(topic))
    t.teardown(() => broker.close())
    return { broker, delivered, presence, commands, resyncs }
  }

  t.test('two nodes publishing to one topic: one sequence of offsets, the same on every node', async (t) => {
    const a = await node(t)
    const b = await node(t)
    const c = await node(t)
    const topic = 'fan/1'
    await Promise.all([a, b, c].map((n) => n.broker.subscribe(topic)))
    const history = { size: 1000, ttl: 0 }
    const sent: Array<Promise<unknown>> = []
    for (let i = 0; i < 300; i++) {
      sent.push(a.broker.publish(topic, `{"a":${i}}`, { history }))
      sent.push(b.broker.publish(topic, `{"b":${i}}`, { history }))
    }
    const positions = await Promise.all(sent) as Array<{ offset: number }>
    t.same(positions.map((p) => p.offset).sort((x, y) => x - y), Array.from({ length: 600 }, (_, i) => i + 1), 'no offset twice, none skipped')
    // Each publisher has its own publications by now, not yet necessarily the other's last ones.
    await until(() => [a, b, c].every((n) => n.delivered.length >= 600), 10_000)
    for (const n of [a, b, c]) {
      t.same(n.delivered.map((p) => p.offset), Array.from({ length: 600 }, (_, i) => i + 1), 'every node delivers in offset order')
    }
    t.same(a.delivered.map((p) => p.data), c.delivered.map((p) => p.data), 'with the same data')
    const r = await c.broker.recover(topic, { offset: 0, epoch: a.delivered[0].epoch }, 1000)
    t.same(r.publications.map((p) => p.data), a.delivered.map((p) => p.data), 'and the history agrees')
  })

  t.test('a node with no subscriber publishes; ephemeral publications reach other nodes without an offset', async (t) => {
    const publisher = await node(t)
    const listener = await node(t)
    await listener.broker.subscribe('quiet/1')
    const first = await publisher.broker.publish('quiet/1', '{"n":1}', { history: { size: 10, ttl: 0 } })
    const typing = await publisher.broker.publish('quiet/1', '{"typing":true}', { ephemeral: true, except: ['c9'] })
    t.same(typing, first, 'ephemeral: the position does not move')
    await until(() => listener.delivered.length === 2)
    t.same(listener.delivered, [
      { topic: 'quiet/1', offset: 1, epoch: first.epoch, data: '{"n":1}' },
      { topic: 'quiet/1', offset: 0, epoch: first.epoch, data: '{"typing":true}', except: ['c9'] }
    ])
    t.same(publisher.delivered, [], 'nothing delivered where nobody subscribes')
    t.equal((await publisher.broker.history('quiet/1', 10)).publications.length, 1, 'no history for the ephemeral one')
  })

  t.test('unsubscribe stops delivery; subscribe again resumes it', async (t) => {
    const a = await node(t)
    const b = await node(t)
    await a.broker.subscribe('u/1')
    await b.broker.publish('u/1', '{}')
    await until(() => a.delivered.length === 1)
    await a.broker.unsubscribe('u/1')
    await a.broker.unsubscribe('u/1')
    await b.broker.publish('u/1', '{}')
    await a.broker.subscribe('u/1')
    await b.broker.publish('u/1', '{}')
    await until(() => a.delivered.length === 2)
    t.same(a.delivered.map((p) => p.offset), [1, 3])
  })

  t.test('presence across nodes; a node that closes takes its members with it, each leaving once', async (t) => {
    const a = await node(t)
    const b = await node(t)
    await a.broker.subscribe('p/1')
    await b.broker.subscribe('p/1')
    await a.broker.join('p/1', { connectionId: 'a1', data: '{"connectionId":"a1"}' })
    await a.broker.join('p/1', { connectionId: 'a2', data: '{"connectionId":"a2"}' })
    await b.broker.join('p/1', { connectionId: 'b1', data: '{"connectionId":"b1"}' })
    const ids = async (n: typeof a) => (await n.broker.members('p/1')).map((m) => m.connectionId).sort()
    t.same(await ids(b), ['a1', 'a2', 'b1'], 'members across nodes')
    await until(() => b.presence.length === 3)
    await a.broker.close()
    await until(() => b.presence.length === 5)
    t.same(b.presence.slice(3).map((e) => `${e.kind}:${e.member.connectionId}`).sort(), ['leave:a1', 'leave:a2'])
    t.same(await ids(b), ['b1'])
    await b.broker.leave('p/1', 'a1')
    t.equal(b.presence.length, 5, 'a member that left is not left again')
    await t.rejects(a.broker.members('p/1'), { code: 'FST_REALTIME_BROKER_CLOSED' }, 'a closed broker refuses')
    await t.rejects(a.broker.subscribe('p/1'), { code: 'FST_REALTIME_BROKER_CLOSED' })
    await t.rejects(a.broker.start(() => {}), { code: 'FST_REALTIME_BROKER_CLOSED' })
    await a.broker.close()
    await t.rejects(b.broker.join('p/1', { connectionId: 'x\ny', data: '{}' }), { code: 'FST_REALTIME_INVALID_DATA', message: /line break/ })
  })

  t.test('commands reach every node', async (t) => {
    const a = await node(t)
    const b = await node(t)
    await a.broker.command({ kind: 'disconnect-user', userId: 'u', code: 4503, reason: 'bye' })
    await until(() => a.commands.length === 1 && b.commands.length === 1)
    t.same(b.commands, [{ kind: 'disconnect-user', userId: 'u', code: 4503, reason: 'bye' }])
  })

  t.test('Redis flushed: the topic gets a new epoch and subscribing nodes are asked to resync', async (t) => {
    const own = uniquePrefix('flush')
    t.teardown(() => dropKeys(REDIS_URL, own))
    const a = await node(t, { prefix: own })
    await a.broker.subscribe('f/1')
    await a.broker.join('f/1', { connectionId: 'm1', data: '{"connectionId":"m1"}' })
    const before = await a.broker.publish('f/1', '{}', { history: { size: 10, ttl: 0 } })
    // Only this test's keys: FLUSHALL would disturb the others sharing this Redis.
    await dropKeys(REDIS_URL, own)
    const after = await a.broker.publish('f/1', '{}', { history: { size: 10, ttl: 0 } })
    t.not(after.epoch, before.epoch, 'another epoch')
    t.equal(after.offset, 1)
    t.same(a.resyncs, ['f/1'], 'the node was told before delivering the new epoch')
    const r = await a.broker.recover('f/1', before, 100)
    t.equal(r.recovered, false, 'the old position cannot be recovered')
    // The next join finds the node forgotten: the members Redis lost are added back.
    await a.broker.join('f/1', { connectionId: 'm2', data: '{"connectionId":"m2"}' })
    await until(() => a.presence.filter((e) => e.kind === 'join').length === 3)
    t.same(a.presence.map((e) => e.member.connectionId), ['m1', 'm2', 'm1'])
    t.same((await a.broker.members('f/1')).map((m) => m.connectionId).sort(), ['m1', 'm2'])
  })

  t.test('throwing listeners, stray messages and Redis errors are contained', async (t) => {
    const own = uniquePrefix('faults')
    t.teardown(() => dropKeys(REDIS_URL, own))
    const logged: string[] = []
    const log = { warn: (_o: object, m?: string) => logged.push(String(m)), error: (_o: object, m?: string) => logged.push(String(m)) }
    const subscriber = new Redis(REDIS_URL)
    const probe = new Redis(REDIS_URL)
    t.teardown(() => Promise.all([subscriber.quit(), probe.quit()]))
    const broker = new RedisBroker({ redis: REDIS_URL, subscriber, prefix: own, log, presenceTtl: 30 })
    t.teardown(() => broker.close())
    await broker.start(() => { throw new Error('listener bug') }, undefined, () => {}, () => { throw new Error('resync bug') })
    await broker.subscribe('t/1')
    await broker.publish('t/1', '{}')
    t.ok(logged.includes('publication listener failed'), 'a throwing listener is logged')

    await probe.publish(`${own}control`, 'not json')
    await subscriber.subscribe('elsewhere', `${own}ch:ghost`)
    await probe.publish('elsewhere', 'x')
    await probe.publish(`${own}ch:ghost`, 'm\n1\ne\n\n\n{}')
    await until(() => logged.includes('failed handling a message from redis'))

    await dropKeys(REDIS_URL, own)
    await broker.publish('t/1', '{}')
    t.ok(logged.includes('resync listener failed'), 'a throwing resync listener is logged')

    // A pending publish resolves when its topic is dropped before its echo comes back.
    const pending = broker.publish('t/1', '{}')
    await broker.unsubscribe('t/1')
    t.equal((await pending).offset, 2, 'after the reset above: the second of the new epoch')

    await probe.script('FLUSH')
    t.equal((await broker.publish('t/2', '{}')).offset, 1, 'scripts are loaded again after SCRIPT FLUSH')

    await probe.set(`${own}{t/3}:meta`, 'not a hash')
    await t.rejects(broker.publish('t/3', '{}'), { name: 'ReplyError', message: /WRONGTYPE/ }, 'errors from Redis itself pass through')
    await probe.set(`${own}{nodes}`, 'not a zset')
    await until(() => logged.includes('presence upkeep failed'))
    await probe.del(`${own}{nodes}`)

    const quiet = new RedisBroker({ redis: REDIS_URL, prefix: own, log })
    t.teardown(() => quiet.close())
    await quiet.start(() => {})
    await quiet.subscribe('t/4')
    await quiet.publish('t/4', '{}')
    await dropKeys(REDIS_URL, own)
    await quiet.publish('t/4', '{}')
    t.ok(logged.includes('continuity lost on a topic and no resync listener to tell its subscribers'))

    const ended = new Redis(REDIS_URL)
    await ended.quit()
    await until(() => ended.status === 'end')
    const late = new RedisBroker({ redis: ended, prefix: own })
    await t.rejects(late.start(() => {}), { code: 'FST_REALTIME_BROKER_UNAVAILABLE', message: /connection ended/ })
    await late.close()
  })

  t.test('resync while commands cannot reach Redis: retried, and when it cannot be done, the subscribers are told', async (t) => {
    const options = { enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null }
    const redis = new Redis(REDIS_URL, options)
    const subscriber = new Redis(REDIS_URL, { retryStrategy: () => null, autoResubscribe: false })
    t.teardown(() => Promise.all([redis.quit().catch(() => {}), subscriber.quit().catch(() => {})]))
    const delivered: Publication[] = []
    const resyncs: string[] = []
    const broker = new RedisBroker({ redis, subscriber, prefix })
    t.teardown(() => broker.close())
    await broker.start((p) => delivered.push(p), undefined, undefined, (topic) => resyncs.push(topic))
    await broker.subscribe('r/1')
    const other = await node(t)
    const history = { size: 10, ttl: 0 }
    await other.broker.publish('r/1', '{"n":1}', { history })
    await until(() => delivered.length === 1)

    const cut = async () => {
      redis.disconnect()
      subscriber.disconnect()
      await until(() => redis.status === 'end' && subscriber.status === 'end')
    }
    // Only the subscriber comes back: the missed publication cannot be read yet.
    await cut()
    await other.broker.publish('r/1', '{"n":2}', { history })
    await subscriber.connect()
    await until(() => delivered.length === 1 && subscriber.status === 'ready')
    await new Promise((resolve) => setTimeout(resolve, 100))
    await other.broker.publish('r/1', '{"n":3}', { history })
    await new Promise((resolve) => setTimeout(resolve, 300))
    t.equal(delivered.length, 1, 'held while the gap is open')
    await redis.connect()
    await until(() => delivered.length === 3)
    t.same(delivered.map((p) => p.offset), [1, 2, 3], 'filled, then the held one, once')

    // This time commands stay away past every retry.
    await cut()
    await subscriber.connect()
    await until(() => resyncs.length === 1, 5000)
    t.same(resyncs, ['r/1'], 'told once retries are exhausted')
    await redis.connect()
  })

  t.test('history size 0 keeps offsets but no history; recovery across it fails', async (t) => {
    const a = await node(t)
    await a.broker.publish('h/1', '{"n":1}', { history: { size: 5, ttl: 0 } })
    await a.broker.publish('h/1', '{"n":2}', { history: { size: 0, ttl: 0 } })
    const p = await a.broker.publish('h/1', '{"n":3}', { history: { size: 5, ttl: 0 } })
    t.equal(p.offset, 3)
    t.equal((await a.broker.recover('h/1', { offset: 1, epoch: p.epoch }, 100)).recovered, false, 'offset 2 is not held')
    t.same((await a.broker.recover('h/1', { offset: 2, epoch: p.epoch }, 100)).publications.map((x) => x.data), ['{"n":3}'])
    t.same((await a.broker.history('h/1', 10)).publications.map((x) => x.offset), [1, 3])
    await a.broker.publish('h/2', '{}')
    t.same((await a.broker.history('h/2', 10)).publications, [], 'no history options: none kept')
    t.equal((await a.broker.recover('h/1', { offset: 0, epoch: p.epoch }, Infinity)).recovered, false)
  })

  t.test('history with real time and a ttl; keys expire', async (t) => {
    const a = await node(t, { metaTtl: 60_000 })
    const p = await a.broker.publish('ttl/1', '{}', { history: { size: 5, ttl: 200 } })
    const client = new Redis(REDIS_URL)
    t.teardown(() => client.quit())
    const pttl = await client.pttl(`${prefix}{ttl/1}:stream`)
    t.ok(pttl > 0 && pttl <= 200, 'the stream expires with its newest entry')
    const meta = await client.pttl(`${prefix}{ttl/1}:meta`)
    t.ok(meta > 59_000 && meta <= 60_000, 'the meta after metaTtl')
    t.equal((await a.broker.recover('ttl/1', { offset: 0, epoch: p.epoch }, 10)).recovered, true)
    await new Promise((resolve) => setTimeout(resolve, 250))
    t.equal((await a.broker.recover('ttl/1', { offset: 0, epoch: p.epoch }, 10)).recovered, false, 'expired by Redis time')
    const forever = await node(t, { metaTtl: 0 })
    await forever.broker.publish('ttl/2', '{}')
    t.equal(await client.pttl(`${prefix}{ttl/2}:meta`), -1, 'metaTtl 0: no expiry')
  })

  t.test('connections: owned ones are closed, borrowed ones are not', async (t) => {
    const redis = new Redis(REDIS_URL)
    const subscriber = new Redis(REDIS_URL)
    t.teardown(() => Promise.all([redis.quit(), subscriber.quit()]))
    const borrowed = new RedisBroker({ redis, subscriber, prefix })
    await borrowed.start(() => {})
    t.equal(borrowed.connected, true)
    await borrowed.subscribe('b/1')
    await borrowed.publish('b/1', '{}')
    await borrowed.close()
    t.equal(redis.status, 'ready', 'the command client is still open')
    t.equal(subscriber.status, 'ready', 'and so is the subscriber')

    const fromClient = new RedisBroker({ redis, prefix })
    await fromClient.start(() => {})
    await fromClient.close()
    t.equal(redis.status, 'ready', 'its duplicate for subscribing was closed, not the client')

    const fromOptions = new RedisBroker({ redis: { host: '127.0.0.1', port: Number(new URL(REDIS_URL).port || 6379) }, prefix })
    await fromOptions.start(() => {})
    t.equal(fromOptions.connected, true)
    await fromOptions.close()
    t.equal(fromOptions.connected, false)
  })

  t.test('a publisher-only broker connects on first use; bad options are refused', async (t) => {
    const broker = new RedisBroker({ redis: REDIS_URL, prefix })
    t.teardown(() => broker.close())
    const [x, y] = await Promise.all([broker.publish('w/1', '{}'), broker.publish('w/1', '{}')])
    t.same([x.offset, y.offset].sort(), [1, 2])
    await t.rejects(broker.subscribe('w/1'), { code: 'FST_REALTIME_BROKER_NOT_STARTED', message: /start\(\) comes before subscribe\(\)/ })
    t.throws(() => new RedisBroker({ presenceTtl: 0 }), { code: 'FST_REALTIME_INVALID_BROKER_OPTION', message: /"presenceTtl"/ })
    t.throws(() => new RedisBroker({ metaTtl: 1.5 }), { code: 'FST_REALTIME_INVALID_BROKER_OPTION', message: /"metaTtl"/ })
  })

  t.test('Redis unreachable: calls fail with FST_REALTIME_BROKER_UNAVAILABLE, stream publications too; ephemeral ones stay local', async (t) => {
    const warnings: string[] = []
    const log = { warn: (_o: object, m?: string) => warnings.push(String(m)), error: (_o: object, m?: string) => warnings.push(String(m)) }
    const dead = new RedisBroker({ redis: { host: '127.0.0.1', port: 1, retryStrategy: () => null }, prefix, log })
    t.teardown(() => dead.close())
    await t.rejects(dead.start(() => {}), { code: 'FST_REALTIME_BROKER_UNAVAILABLE', statusCode: 503 })
    await t.rejects(dead.publish('x', '{}'), { code: 'FST_REALTIME_BROKER_UNAVAILABLE' })
    t.same(warnings, ['redis command connection error'], 'the connection error was logged')

    // A broker that was connected, and then lost Redis.
    const redis = new Redis(REDIS_URL, { enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null })
    const subscriber = new Redis(REDIS_URL, { retryStrategy: () => null })
    t.teardown(() => Promise.all([redis.quit(), subscriber.quit()]))
    const delivered: Publication[] = []
    const resyncs: string[] = []
    const broker = new RedisBroker({ redis, subscriber, prefix })
    t.teardown(() => broker.close())
    await broker.start((p) => delivered.push(p), undefined, undefined, (topic) => resyncs.push(topic))
    await broker.subscribe('down/1')
    const { epoch } = await broker.publish('down/1', '{"n":1}', { history: { size: 10, ttl: 0 } })
    await broker.join('down/1', { connectionId: 'm1', data: '{}' })
    redis.disconnect()
    subscriber.disconnect()
    await until(() => redis.status === 'end' && subscriber.status === 'end')
    t.equal(broker.connected, false)
    const deliveredBefore = delivered.length
    await t.rejects(broker.publish('down/1', '{"n":2}', { history: { size: 10, ttl: 0 } }), { code: 'FST_REALTIME_BROKER_UNAVAILABLE', statusCode: 503 },
      'a stream publication Redis cannot take fails (localWhileDown is off by default)')
    t.equal(delivered.length, deliveredBefore, 'and is delivered nowhere')
    await t.rejects(broker.position('down/1'), { code: 'FST_REALTIME_BROKER_UNAVAILABLE' })
    await t.rejects(broker.members('down/1'), { code: 'FST_REALTIME_BROKER_UNAVAILABLE' })
    await t.rejects(broker.command({ kind: 'disconnect-user', userId: 'u', code: 4503, reason: '' }), { code: 'FST_REALTIME_BROKER_UNAVAILABLE' })
    await t.rejects(broker.subscribe('down/2'), { code: 'FST_REALTIME_BROKER_UNAVAILABLE' })
    await broker.unsubscribe('down/2')
    await t.rejects(broker.join('down/1', { connectionId: 'm2', data: '{}' }), { code: 'FST_REALTIME_BROKER_UNAVAILABLE' })
    await t.rejects(broker.leave('down/1', 'm1'), { code: 'FST_REALTIME_BROKER_UNAVAILABLE' }, 'the leave is kept for later')
    const typing = await broker.publish('down/1', '{"typing":true}', { ephemeral: true, except: ['c1'] })
    t.same(typing, { offset: 1, epoch }, 'ephemeral: delivered here, at the last known position')
    t.same(delivered.at(-1), { topic: 'down/1', offset: 0, epoch, data: '{"typing":true}', except: ['c1'] })
    const nowhere = await broker.publish('down/3', '{}', { ephemeral: true })
    t.same(nowhere, { offset: 0, epoch: '' })

    // Reconnect both: the node subscribes again, finds nothing missed, and the pending leave goes out.
    const observer = await node(t)
    await observer.broker.subscribe('down/1')
    await redis.connect()
    await subscriber.connect()
    await until(() => observer.presence.some((e) => e.kind === 'leave' && e.member.connectionId === 'm1'), 5000)
    await observer.broker.publish('down/1', '{"n":3}', { history: { size: 10, ttl: 0 } })
    await until(() => delivered.some((p) => p.data === '{"n":3}'))
    t.equal(delivered.find((p) => p.data === '{"n":3}')?.offset, 2, 'the refused publication took no offset: no hole')
    t.same(resyncs, [], 'nothing was missed, nothing to tell')
  })

  t.test('publications missed while the subscriber was away are replayed from history, in order', async (t) => {
    const subscriber = new Redis(REDIS_URL, { retryStrategy: () => null, autoResubscribe: false })
    const delivered: Publication[] = []
    const resyncs: string[] = []
    const broker = new RedisBroker({ redis: REDIS_URL, subscriber, prefix })
    t.teardown(() => broker.close())
    t.teardown(() => subscriber.quit().catch(() => {}))
    await broker.start((p) => delivered.push(p), undefined, undefined, (topic) => resyncs.push(topic))
    await broker.subscribe('gap/1')
    await broker.subscribe('gap/2')
    await broker.subscribe('gap/3')
    const history = { size: 3, ttl: 0 }
    const other = await node(t)
    await other.broker.publish('gap/1', '{"n":1}', { history })
    await other.broker.publish('gap/2', '{"n":1}', { history })
    await until(() => delivered.length === 2)
    subscriber.disconnect()
    await until(() => subscriber.status === 'end')
    // While away: two on gap/1 (history covers them), five on gap/2 (it does not).
    await broker.publish('gap/1', '{"n":2}', { history })
    await other.broker.publish('gap/1', '{"n":3}', { history })
    for (let i = 2; i <= 6; i++) await other.broker.publish('gap/2', `{"n":${i}}`, { history })
    await subscriber.connect()
    await until(() => delivered.length === 4 && resyncs.length === 1)
    t.same(delivered.slice(2).map((p) => [p.topic, p.offset]), [['gap/1', 2], ['gap/1', 3]], 'gap/1 filled from history')
    t.same(resyncs, ['gap/2'], 'gap/2 could not be: its subscribers are to be told')
    await other.broker.publish('gap/1', '{"n":4}', { history })
    await other.broker.publish('gap/3', '{"n":1}', { history })
    await until(() => delivered.length === 6)
    t.same(delivered.slice(4).map((p) => [p.topic, p.offset]), [['gap/1', 4], ['gap/3', 1]], 'live again after the resync')
  })

  t.test('a node swept while it was away adds its members back', async (t) => {
    const redis = new Redis(REDIS_URL, { enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null })
    const away = new RedisBroker({ redis, prefix, presenceTtl: 150 })
    t.teardown(() => away.close())
    t.teardown(() => redis.quit().catch(() => {}))
    await away.start(() => {})
    const watcher = await node(t, { presenceTtl: 150 })
    await watcher.broker.subscribe('sweep/1')
    await away.join('sweep/1', { connectionId: 's1', data: '{"connectionId":"s1"}' })
    await until(() => watcher.presence.length === 1)
    redis.disconnect()
    await until(() => watcher.presence.length === 2, 3000)
    t.same(watcher.presence.map((e) => `${e.kind}:${e.member.connectionId}`), ['join:s1', 'leave:s1'], 'swept by the live node')
    t.same(await watcher.broker.members('sweep/1'), [])
    await redis.connect()
    await until(() => watcher.presence.length === 3, 3000)
    t.same(watcher.presence[2].kind, 'join', 'back: the member is added again')
    t.same((await watcher.broker.members('sweep/1')).map((m) => m.connectionId), ['s1'])
  })

  t.test('a member that leaves while its node adds it back (Redis had forgotten the node) stays gone, its leave told once', async (t) => {
    const redis = new Redis(REDIS_URL)
    t.teardown(() => redis.quit().catch(() => {}))
    const broker = new RedisBroker({ redis, prefix })
    t.teardown(() => broker.close())
    await broker.start(() => {})
    const watcher = await node(t)
    await watcher.broker.subscribe('back/1')
    await broker.join('back/1', { connectionId: 'b1', data: '{"connectionId":"b1"}' })
    await until(() => watcher.presence.length === 1)
    // The node forgotten, as after a failover that lost its heartbeats; the next join finds
    // out and adds its members back. b1's connection closes just as its claim goes out.
    await redis.zrem(broker.keys.nodes, broker.id)
    const evalsha = redis.evalsha.bind(redis) as (...args: unknown[]) => Promise<unknown>
    let left: Promise<void> | undefined
    ;(redis as unknown as { evalsha: (...args: unknown[]) => Promise<unknown> }).evalsha = (...args: unknown[]) => {
      if (left === undefined && args[0] === CLAIM.sha && args.includes('b1\nback/1')) left = broker.leave('back/1', 'b1')
      return evalsha(...args)
    }
    await broker.join('back/1', { connectionId: 'b2', data: '{"connectionId":"b2"}' })
    await left
    await until(() => watcher.presence.length >= 3)
    await sleep(100)
    t.same(watcher.presence.map((e) => `${e.kind}:${e.member.connectionId}`), ['join:b1', 'join:b2', 'leave:b1'], 'b1 left once, and was not added back')
    t.same((await watcher.broker.members('back/1')).map((m) => m.connectionId), ['b2'])
  })
}
