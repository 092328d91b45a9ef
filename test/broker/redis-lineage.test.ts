// A Redis that may lack publications it acknowledged: a promoted replica (replication is
// asynchronous) or a restarted server. Its offsets must never be handed out again under
// the epoch subscribers saw them in. The topic forks into a new epoch at what the stream
// holds: a position at or before the fork recovers across it, a later one is told.
//
// The promotion is staged on a redis-server of the test's own, exactly: the stream and
// meta are cut back to what a replica that missed the last publications holds, and the
// replication id changes as a promotion changes it (DEBUG CHANGE-REPL-ID). A real
// failover on a cluster is in redis-shard-cluster.test.ts.
import t from 'tap'
import { Redis } from 'ioredis'
import { RedisBroker } from '../../lib/broker/redis.js'
import type { Publication } from '../../lib/broker/types.js'
import { hasRedisServer, requireOrSkip, startRedisServer } from '../fixtures/redis.js'
import { until, type TestContext } from '../fixtures/helpers.js'

const history = { size: 100, ttl: 0 }

if (requireOrSkip(t, hasRedisServer(), 'redis-server is not installed')) {
  async function setup (t: TestContext) {
    const server = await startRedisServer(t, ['--enable-debug-command', 'local'])
    const probe = new Redis(server.url)
    t.teardown(() => probe.quit())
    const node = async () => {
      const broker = new RedisBroker({ redis: server.url })
      const delivered: Publication[] = []
      const resyncs: string[] = []
      await broker.start((p) => delivered.push(p), undefined, undefined, (topic) => resyncs.push(topic))
      t.teardown(() => broker.close())
      return { broker, delivered, resyncs }
    }
    /** What a replica that missed every publication after `kept` holds once promoted. */
    const promote = async (broker: RedisBroker, topic: string, kept: number) => {
      // Rebuilt, not XDELed: the replica's stream never had the later ids at all.
      const stream = broker.keys.stream(topic)
      const entries = await probe.xrange(stream, '-', `${kept}-0`)
      await probe.del(stream)
      for (const [id, fields] of entries) await probe.xadd(stream, id, ...fields)
      await probe.hset(broker.keys.meta(topic), 'offset', kept)
      await probe.call('DEBUG', 'CHANGE-REPL-ID')
    }
    return { node, promote, probe }
  }

  t.test('publications lost in a failover: the next publish forks; clients past the fork are told, the others recover across it', async (t) => {
    const { node, promote } = await setup(t)
    const a = await node()
    const b = await node()
    await a.broker.subscribe('lost/1')
    for (let i = 1; i <= 5; i++) await b.broker.publish('lost/1', `{"old":${i}}`, { history })
    await until(() => a.delivered.length === 5)
    const before = a.delivered[4]
    await promote(b.broker, 'lost/1', 3)

    const next = [1, 2, 3].map((i) => `{"new":${i}}`)
    const positions = []
    for (const data of next) positions.push(await b.broker.publish('lost/1', data, { history }))
    const epoch = positions[0].epoch
    t.not(epoch, before.epoch, 'a new epoch: offsets 4 and 5 now mean other publications')
    t.same(positions.map((p) => p.offset), [4, 5, 6], 'going on from what the stream holds')
    t.ok(positions.every((p) => p.epoch === epoch), 'one fork, not one per publication')

    await until(() => a.resyncs.length > 0)
    t.same(a.resyncs, ['lost/1'], 'the subscribing node tells its subscribers at the new epoch')

    const past = await a.broker.recover('lost/1', { offset: 5, epoch: before.epoch }, 100)
    t.equal(past.recovered, false, 'a client that saw the lost 4 and 5 cannot recover: it would silently miss the new 4 and 5')
    t.same(past.publications.map((p) => [p.offset, p.epoch, p.data]), [[4, epoch, next[0]], [5, epoch, next[1]], [6, epoch, next[2]]], 'but it gets the new epoch past the fork, which it cannot have seen')
    const atFork = await a.broker.recover('lost/1', { offset: 3, epoch: before.epoch }, 100)
    t.equal(atFork.recovered, true, 'a client at the fork recovers across it')
    t.same(atFork.publications.map((p) => [p.offset, p.epoch, p.data]), [[4, epoch, next[0]], [5, epoch, next[1]], [6, epoch, next[2]]])
    const early = await a.broker.recover('lost/1', { offset: 2, epoch: before.epoch }, 100)
    t.same(early.publications.map((p) => [p.offset, p.data]), [[3, '{"old":3}'], [4, next[0]], [5, next[1]], [6, next[2]]], 'what both epochs share, then the new one')
    t.equal((await a.broker.recover('lost/1', { offset: 6, epoch }, 100)).recovered, true, 'the new epoch recovers as any')
    const unrelated = await a.broker.recover('lost/1', { offset: 3, epoch: 'some-other-epoch' }, 100)
    t.equal(unrelated.recovered, false, 'an unrelated epoch does not')
    t.same(unrelated.publications.map((p) => [p.offset, p.epoch]), [1, 2, 3, 4, 5, 6].map((o) => [o, epoch]), 'and gets the whole stream of the current epoch')
  })

  t.test('the stream found behind what a node delivered: the node forks the topic at once and tells its subscribers', async (t) => {
    const { node, promote, probe } = await setup(t)
    const a = await node()
    await a.broker.subscribe('behind/1')
    for (let i = 1; i <= 5; i++) await a.broker.publish('behind/1', `{"i":${i}}`, { history })
    const seen = await a.broker.position('behind/1')
    await promote(a.broker, 'behind/1', 3)
    // The subscriber connection breaks, as it does when its master dies: the node resyncs.
    await probe.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
    await until(() => a.resyncs.length > 0, 10_000)
    const now = await a.broker.position('behind/1')
    t.not(now.epoch, seen.epoch)
    t.equal(now.offset, 3)
    t.equal((await a.broker.recover('behind/1', seen, 100)).recovered, false)
    const fromTwo = await a.broker.recover('behind/1', { offset: 2, epoch: seen.epoch }, 100)
    t.same(fromTwo.publications.map((p) => [p.offset, p.epoch, p.data]), [[3, now.epoch, '{"i":3}']], 'the history both share is kept')
    const next = await a.broker.publish('behind/1', '{"i":"new"}', { history })
    t.same(next, { offset: 4, epoch: now.epoch }, 'the fork recorded the new Redis: publishing does not fork again')
  })

  t.test('a Redis that lost nothing (a clean promotion, a restart from disk): everyone recovers across the fork', async (t) => {
    const { node, probe } = await setup(t)
    const a = await node()
    await a.broker.subscribe('kept/1')
    const last = await a.broker.publish('kept/1', '{"i":1}', { history })
    await probe.call('DEBUG', 'CHANGE-REPL-ID')
    const next = await a.broker.publish('kept/1', '{"i":2}', { history })
    t.not(next.epoch, last.epoch, 'it cannot tell that nothing was lost: a new epoch')
    t.equal(next.offset, 2)
    const r = await a.broker.recover('kept/1', last, 100)
    t.equal(r.recovered, true, 'but the last position anyone saw is at the fork')
    t.same(r.publications.map((p) => [p.offset, p.epoch]), [[2, next.epoch]])
    const again = await a.broker.publish('kept/1', '{"i":3}', { history })
    t.same(again, { offset: 3, epoch: next.epoch }, 'then the epoch holds')
  })

  t.test('a Redis user that may not run INFO (it is in @dangerous) publishes as before, without the fork', async (t) => {
    const { probe } = await setup(t)
    await probe.call('ACL', 'SETUSER', 'app', 'on', 'nopass', '~*', '&*', '+@all', '-info')
    const broker = new RedisBroker({ redis: `redis://app@127.0.0.1:${probe.options.port}` })
    t.teardown(() => broker.close())
    const first = await broker.publish('acl/1', '{"i":1}', { history })
    await probe.call('DEBUG', 'CHANGE-REPL-ID')
    const second = await broker.publish('acl/1', '{"i":2}', { history })
    t.same(second, { offset: 2, epoch: first.epoch }, 'published, in the same epoch: a change of Redis goes unseen')
    t.equal((await broker.recover('acl/1', first, 10)).publications.length, 1)
  })
}
