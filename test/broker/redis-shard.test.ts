// The Redis broker on a Redis Cluster of three masters that this file starts (fixture:
// test/fixtures/redis-cluster.ts): the broker contract unchanged, the key layout (every
// topic on one slot, its fan-out on its own shard, topic names with braces included),
// several nodes on one topic, presence of a node that dies, commands across shards, and
// the options that pick the mode.
import t from 'tap'
import { Cluster } from 'ioredis'
import { RedisBroker } from '../../lib/broker/redis.js'
import { RedisKeys } from '../../lib/broker/redis-keys.js'
import type { BrokerCommand, PresenceEvent, Publication } from '../../lib/broker/types.js'
import { brokerContract } from '../fixtures/broker-contract.js'
import { until } from '../fixtures/helpers.js'
import { hasRedisServer, requireOrSkip, uniquePrefix } from '../fixtures/redis.js'
import { clusterProbe, hasRedisCli, startRedisCluster } from '../fixtures/redis-cluster.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

if (requireOrSkip(t, hasRedisServer() && hasRedisCli(), 'redis-server and redis-cli are not installed')) {
  const cluster = await startRedisCluster(t, { masters: 3 })
  const prefix = uniquePrefix('shard')

  t.test('the broker contract, on a cluster', async (t) => {
    brokerContract(t, {
      prefix: 'c/',
      make: async (clock) => new RedisBroker({ cluster: cluster.nodes, prefix, now: clock.now })
    })
  })

  async function node (t: any, options: ConstructorParameters<typeof RedisBroker>[0] = {}) {
    const broker = new RedisBroker({ cluster: cluster.nodes, prefix, ...options })
    const delivered: Publication[] = []
    const presence: PresenceEvent[] = []
    const commands: BrokerCommand[] = []
    const resyncs: string[] = []
    await broker.start((p) => delivered.push(p), (e) => presence.push(e), (c) => commands.push(c), (topic) => resyncs.push(topic))
    t.teardown(() => broker.close())
    return { broker, delivered, presence, commands, resyncs }
  }

  t.test('topics spread over the shards; each one\'s fan-out stays on its shard (sharded pub/sub)', async (t) => {
    const a = await node(t)
    const b = await node(t)
    const topics = Array.from({ length: 12 }, (_, i) => `spread/${i}`)
    await Promise.all(topics.flatMap((topic) => [a.broker.subscribe(topic), b.broker.subscribe(topic)]))
    const history = { size: 100, ttl: 0 }
    for (const topic of topics) {
      for (let i = 0; i < 5; i++) await a.broker.publish(topic, `{"i":${i}}`, { history })
    }
    await until(() => b.delivered.length === 60)
    for (const topic of topics) {
      t.same(b.delivered.filter((p) => p.topic === topic).map((p) => p.offset), [1, 2, 3, 4, 5], `${topic}: in order on the other node`)
    }
    const owners = new Set(topics.map((topic) => cluster.masterOf(a.broker.keys.meta(topic))))
    t.equal(owners.size, 3, 'the topics live on all three masters')
    for (const topic of topics.slice(0, 3)) {
      const keys = [a.broker.keys.meta(topic), a.broker.keys.stream(topic), a.broker.keys.presence(topic), a.broker.keys.channel(topic)]
      t.equal(new Set(keys.map((key) => cluster.masterOf(key))).size, 1, `${topic}: meta, stream, presence and channel on one shard`)
    }
    // Sharded channels are counted by the shard that serves them, and only there.
    const topic = topics[0]
    const owner = cluster.masterOf(a.broker.keys.meta(topic))
    const probe = clusterProbe(t, cluster)
    await probe.connect()
    const counts = await Promise.all(probe.nodes('master').map(async (n) => [n.options.port, Number(((await n.call('PUBSUB', 'SHARDNUMSUB', a.broker.keys.channel(topic))) as [string, number])[1])]))
    t.same(counts.filter(([, n]) => n as number > 0), [[owner, 2]], 'two node subscriptions, on the owning shard only')
  })

  t.test('a topic name starting with "}" is escaped inside its hash tag on a cluster, one to one; every other name keeps its keys', async (t) => {
    const keys = new RedisKeys('p:', true)
    const kinds = (k: RedisKeys, topic: string) => [k.meta(topic), k.stream(topic), k.presence(topic), k.channel(topic)]
    for (const topic of ['a', 'chat/1', 'a}b', '{x}', '{', '{}', 'x}', 'x{y}z']) {
      t.same(kinds(keys, topic), ['meta', 'stream', 'presence', 'ch'].map((kind) => `p:{${topic}}:${kind}`), `${topic}: the layout it always had`)
    }
    t.same(kinds(keys, '}x'), ['meta', 'stream', 'presence', 'ch'].map((kind) => `p:{\u0001}x}:${kind}`), '}x: a control character first, so the tag is not empty')
    t.same(kinds(new RedisKeys('p:', false), '}x'), ['p:{}x}:meta', 'p:{}x}:stream', 'p:{}x}:presence', 'p:ch:}x'], 'on one Redis (no slots) nothing changes')

    // Names no topic can have (a control character first) still map apart: a broker
    // used directly checks no names.
    const tricky = ['}x', '\u0001}x', '\u0001\u0001}x', '}', '\u0001}', '\u0001', '\u0001\u0001', 'x', '\u0001x', '}}', '}{', '}x}', '{}x', 'a}b', 'a}c', '{x}', '{x']
    const owner = new Map<string, string>()
    for (const topic of tricky) {
      for (const key of kinds(keys, topic)) {
        if (owner.has(key)) t.fail(`${JSON.stringify(topic)} and ${JSON.stringify(owner.get(key))} share ${JSON.stringify(key)}`)
        owner.set(key, topic)
      }
      t.equal(keys.topicOf(keys.channel(topic)), topic, `${JSON.stringify(topic)}: its channel names it back`)
    }
    t.equal(owner.size, 4 * tricky.length, 'no two names share a key or a channel')
    t.equal(keys.topicOf('p:{}x}:ch'), null, 'an unescaped "}" tag is no channel of ours')
    t.equal(keys.topicOf('p:{\u0001x}:ch'), null, 'nor an escape before a name that needs none')
  })

  t.test('topic names with braces on a cluster: all keys and the channel of each in one slot, and publish, subscribe, history, recovery and presence work', async (t) => {
    const a = await node(t)
    const b = await node(t)
    const topics = ['}x', 'a}b', '{x}', '}', '}}', '{}', '}{', '{', 'x}', '}x/y']
    const keyslot = async (key: string) => Number(await cluster.call(cluster.ports[0], 'CLUSTER', 'KEYSLOT', key))
    const old = new RedisKeys(prefix, false)
    t.not(await keyslot(old.meta('}x')), await keyslot(old.stream('}x')), 'unescaped, the keys of "}x" would hash whole, to two slots (CROSSSLOT)')
    for (const topic of topics) {
      const slots = await Promise.all([a.broker.keys.meta(topic), a.broker.keys.stream(topic), a.broker.keys.presence(topic), a.broker.keys.channel(topic)].map(keyslot))
      t.equal(new Set(slots).size, 1, `${JSON.stringify(topic)}: meta, stream, presence and channel in slot ${slots[0]}`)
    }

    await Promise.all(topics.map((topic) => b.broker.subscribe(topic)))
    const history = { size: 100, ttl: 0 }
    for (const topic of topics) {
      for (let i = 1; i <= 3; i++) t.equal((await a.broker.publish(topic, JSON.stringify({ topic, i }), { history })).offset, i)
    }
    await until(() => b.delivered.length === 3 * topics.length)
    for (const topic of topics) {
      const mine = b.delivered.filter((p) => p.topic === topic)
      t.same(mine.map((p) => [p.offset, JSON.parse(p.data)]), [1, 2, 3].map((i) => [i, { topic, i }]), `${JSON.stringify(topic)}: its own publications, in order, on the other node`)
      const { publications } = await b.broker.history(topic, 10)
      t.same(publications.map((p) => p.offset), [1, 2, 3], `${JSON.stringify(topic)}: history`)
      const r = await b.broker.recover(topic, { offset: 1, epoch: mine[0].epoch }, 10)
      t.same([r.recovered, r.publications.map((p) => JSON.parse(p.data).i)], [true, [2, 3]], `${JSON.stringify(topic)}: recovery`)
      await a.broker.join(topic, { connectionId: `c${topic}`, data: '{}' })
      t.same((await b.broker.members(topic)).map((m) => m.connectionId), [`c${topic}`], `${JSON.stringify(topic)}: presence`)
    }
    await until(() => b.presence.length === topics.length)
    t.same(b.presence.map((e) => [e.kind, e.topic]), topics.map((topic) => ['join', topic]), 'each join announced on its own topic')
  })

  t.test('two nodes publishing to one topic: one offset sequence, the same order everywhere', async (t) => {
    const [a, b, c] = [await node(t), await node(t), await node(t)]
    const topic = 'fan/1'
    await Promise.all([a, b, c].map((n) => n.broker.subscribe(topic)))
    const history = { size: 1000, ttl: 0 }
    const sent: Array<Promise<{ offset: number }>> = []
    for (let i = 0; i < 300; i++) {
      sent.push(a.broker.publish(topic, `{"a":${i}}`, { history }))
      sent.push(b.broker.publish(topic, `{"b":${i}}`, { history }))
    }
    const offsets = (await Promise.all(sent)).map((p) => p.offset).sort((x, y) => x - y)
    t.same(offsets, Array.from({ length: 600 }, (_, i) => i + 1), 'no offset twice, none skipped')
    await until(() => [a, b, c].every((n) => n.delivered.length >= 600), 10_000)
    for (const n of [a, b, c]) t.same(n.delivered.map((p) => p.offset), offsets, 'every node delivers in offset order')
    t.same(a.delivered.map((p) => p.data), c.delivered.map((p) => p.data))
  })

  t.test('commands reach every node whatever shard each listens on', async (t) => {
    const list = [await node(t), await node(t), await node(t)]
    await list[1].broker.command({ kind: 'disconnect-user', userId: 'u', code: 4503, reason: 'bye' })
    await until(() => list.every((n) => n.commands.length === 1))
    t.same(list.map((n) => { const c = n.commands[0]; return c.kind === 'disconnect-user' ? c.userId : c.kind }), ['u', 'u', 'u'])
  })

  t.test('presence across shards: a node that stops beating has its members swept, each leave announced once', async (t) => {
    const presenceTtl = 600
    const doomedClient = new Cluster(cluster.nodes, { lazyConnect: true })
    doomedClient.on('error', () => {})
    const doomed = new RedisBroker({ cluster: doomedClient, prefix, presenceTtl })
    t.teardown(async () => { await doomed.close(); doomedClient.disconnect() })
    await doomed.start(() => {})
    const a = await node(t, { presenceTtl })
    const b = await node(t, { presenceTtl })
    const topics = ['room/1', 'room/2', 'room/3', 'room/4']
    await Promise.all(topics.flatMap((topic) => [a.broker.subscribe(topic), b.broker.subscribe(topic)]))
    for (const topic of topics) {
      await doomed.join(topic, { connectionId: `d-${topic}`, data: `{"who":"${topic}"}` })
      await a.broker.join(topic, { connectionId: `a-${topic}`, data: '{}' })
    }
    t.same((await b.broker.members('room/3')).map((m) => m.connectionId).sort(), ['a-room/3', 'd-room/3'], 'members of two nodes')
    // It dies: its connections drop without a word, its heartbeat stops.
    doomedClient.disconnect()
    const died = Date.now()
    await until(() => [a, b].every((n) => n.presence.filter((e) => e.kind === 'leave').length === 4), 4 * presenceTtl)
    t.ok(Date.now() - died <= 2 * presenceTtl + 500, `swept ${Date.now() - died} ms after it died (ttl ${presenceTtl} ms)`)
    await sleep(2 * presenceTtl)
    for (const n of [a, b]) {
      const leaves = n.presence.filter((e) => e.kind === 'leave').map((e) => e.member.connectionId).sort()
      t.same(leaves, topics.map((topic) => `d-${topic}`).sort(), 'each of its members left once, on every topic\'s shard')
    }
    t.same((await a.broker.members('room/3')).map((m) => m.connectionId), ['a-room/3'], 'presence no longer lists them')
    const probe = clusterProbe(t, cluster)
    await probe.connect()
    t.equal(await probe.zscore(a.broker.keys.nodes, doomed.id), null, 'and the dead node is forgotten')
  })

  t.test('a shard\'s subscriber connection cut: the node subscribes again and fills the gap from the history', async (t) => {
    const a = await node(t)
    const b = await node(t)
    const topic = 'cut/1'
    await a.broker.subscribe(topic)
    const history = { size: 100, ttl: 0 }
    for (let i = 0; i < 3; i++) await b.broker.publish(topic, `{"i":${i}}`, { history })
    await until(() => a.delivered.length === 3)
    const owner = cluster.masterOf(a.broker.keys.meta(topic))
    const probe = clusterProbe(t, cluster)
    await probe.connect()
    const master = probe.nodes('master').find((n) => n.options.port === owner)
    await master?.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
    // Published while node a has no subscription on that shard.
    for (let i = 3; i < 20; i++) await b.broker.publish(topic, `{"i":${i}}`, { history })
    await until(() => a.delivered.length >= 20, 10_000)
    await sleep(100)
    t.same(a.delivered.map((p) => p.offset), Array.from({ length: 20 }, (_, i) => i + 1), 'every publication once, in order')
    t.same(a.resyncs, [], 'filled by the node itself: its subscribers need not be told')
  })

  t.test('a promoted replica behind what was delivered: the topic starts a new epoch and its subscribers are told', async (t) => {
    const a = await node(t)
    const topic = 'rewind/1'
    await a.broker.subscribe(topic)
    const history = { size: 100, ttl: 0 }
    for (let i = 0; i < 5; i++) await a.broker.publish(topic, `{"i":${i}}`, { history })
    const seen = await a.broker.position(topic)
    // What a replica that missed the last two publications holds once promoted.
    const probe = clusterProbe(t, cluster)
    await probe.connect()
    await probe.hset(a.broker.keys.meta(topic), 'offset', 3)
    await probe.xtrim(a.broker.keys.stream(topic), 'MAXLEN', 3)
    const owner = cluster.masterOf(a.broker.keys.meta(topic))
    await probe.nodes('master').find((n) => n.options.port === owner)?.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
    await until(() => a.resyncs.includes(topic), 10_000)
    const now = await a.broker.position(topic)
    t.not(now.epoch, seen.epoch, 'a new epoch')
    t.equal(now.offset, 3, 'going on from what the replica has')
    const r = await a.broker.recover(topic, seen, 100)
    t.equal(r.recovered, false, 'a client at offset 5 of the old epoch cannot recover: offsets 4 and 5 will mean other publications')
    const next = await a.broker.publish(topic, '{"i":"new"}', { history })
    t.same(next, { offset: 4, epoch: now.epoch })
  })

  t.test('the mode comes from the options', async (t) => {
    t.throws(() => new RedisBroker({ cluster: cluster.nodes, redis: 'redis://127.0.0.1:6379' }), /exclude each other/)
    t.throws(() => new RedisBroker({ cluster: [] }), /non-empty list/)
    t.throws(() => new RedisBroker({ clusterOptions: {} }), /needs the "cluster" option/)
    const client = new Cluster(cluster.nodes, { lazyConnect: true })
    client.on('error', () => {})
    t.teardown(() => { client.disconnect() })
    const lent = new RedisBroker({ redis: client, prefix })
    t.equal(lent.keys.cluster, true, 'a Cluster client passed as `redis` is recognised')
    t.equal(lent.keys.channel('x'), `${prefix}{x}:ch`)
    await lent.start(() => {})
    t.equal((await lent.publish('mode/1', '{}')).offset, 1)
    await lent.close()
    t.equal(client.status, 'ready', 'a client you lend stays yours')
    // One node given as "host:port": the rest are discovered, and the first calls, on
    // nodes just discovered, do not fail.
    const byStrings = new RedisBroker({ cluster: [`127.0.0.1:${cluster.ports[0]}`], prefix })
    t.teardown(() => byStrings.close())
    const offsets = await Promise.all(['a', 'b', 'c', 'd', 'e', 'f'].map(async (name) => (await byStrings.publish(`mode/${name}`, '{}')).offset))
    t.same(offsets, [1, 1, 1, 1, 1, 1], 'a publisher connects through one node')
    const listener = new RedisBroker({ cluster: [`127.0.0.1:${cluster.ports[1]}`], prefix })
    t.teardown(() => listener.close())
    const heard: Publication[] = []
    await listener.start((p) => heard.push(p))
    await Promise.all(['a', 'b', 'c', 'd', 'e', 'f'].map((name) => listener.subscribe(`mode/${name}`)))
    await byStrings.publish('mode/f', '{}')
    await until(() => heard.length === 1)
    t.equal(heard[0].offset, 2, 'and so does a node')
    t.equal(new RedisBroker({ redis: 'redis://127.0.0.1:1', prefix }).keys.channel('x'), `${prefix}ch:x`, 'standalone channels keep their names')
  })
}
