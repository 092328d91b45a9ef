// Plugin nodes on a Redis Cluster of three masters, each with a replica, that this file
// starts (test/fixtures/redis-cluster.ts): fan-out of 10,000 publications from two nodes
// to subscribers on three, a node that dies (its members swept once), and last, a
// master killed with SIGKILL while two nodes publish (its replica takes over).
import t from 'tap'
import { Cluster } from 'ioredis'
import { connect, until, type TestClient } from './fixtures/helpers.js'
import { feedTopics, openFeeds, tenThousandFromTwoNodes, sleep, startNodes, hasRedisServer, requireOrSkip, startNode, uniquePrefix, type Node } from './fixtures/redis.js'
import { clusterProbe, hasRedisCli, startRedisCluster } from './fixtures/redis-cluster.js'

if (requireOrSkip(t, hasRedisServer() && hasRedisCli(), 'redis-server and redis-cli are not installed')) {
  const cluster = await startRedisCluster(t, { masters: 3, replicas: 1 })

  t.test('10,000 publications from two nodes reach every subscriber on three nodes, in offset order, none twice', async (t) => {
    const [a, b, c] = await startNodes(t, { cluster: cluster.nodes }, 3)
    const clients = await openFeeds(t, [a, b, c], 2, 'feed/big', false)
    await tenThousandFromTwoNodes(t, [a, b, c], clients, 'over a cluster')
  })

  t.test('a node that dies without cleaning up: its members leave within 2 × presence ttl, once each', async (t) => {
    const presenceTtl = 1000
    const prefix = uniquePrefix('shard-death')
    // The doomed node borrows its cluster clients, so the test can cut them abruptly
    // (disconnect() by hand never reconnects). Until then they retry as any client
    // would: a busy machine can miss the first slots refresh, and without a retry the
    // node would fail to start instead of dying later.
    const retry = (times: number): number | null => times > 20 ? null : 100
    const redis = new Cluster(cluster.nodes, { enableOfflineQueue: false, clusterRetryStrategy: retry })
    const subscriber = new Cluster(cluster.nodes, { shardedSubscribers: true, clusterRetryStrategy: retry })
    for (const client of [redis, subscriber]) client.on('error', () => {})
    t.teardown(() => { redis.disconnect(); subscriber.disconnect() })
    const doomed = await startNode(t, { redis, subscriber, prefix, presenceTtl }, feedTopics)
    const b = await startNode(t, { cluster: cluster.nodes, prefix, presenceTtl }, feedTopics)
    const c = await startNode(t, { cluster: cluster.nodes, prefix, presenceTtl }, feedTopics)
    const join = async (node: Node, name: string, room: string): Promise<TestClient> => {
      const client = await connect(t, node.url, { headers: { 'x-user': name } })
      t.equal((await client.request('subscribe', { topic: room })).type, 'reply')
      return client
    }
    // Two rooms, most likely on two shards: the sweep reaches each room's own shard.
    const bea = await join(b, 'bea', 'room/x')
    const cal = await join(c, 'cal', 'room/y')
    await join(doomed, 'dora', 'room/x')
    await join(doomed, 'dan', 'room/y')
    const doomedIds = [...doomed.app.realtime.connections].map((conn) => conn.id)
    await until(() => bea.frames.some((f) => f.type === 'join') && cal.frames.some((f) => f.type === 'join'))

    redis.disconnect()
    subscriber.disconnect()
    const died = Date.now()
    const leaveOf = async (client: TestClient) => ((await client.next((f) => f.type === 'leave', 2 * presenceTtl + 1000)).member as { connectionId: string }).connectionId
    const gone = [await leaveOf(bea), await leaveOf(cal)]
    const elapsed = Date.now() - died
    t.ok(elapsed <= 2 * presenceTtl + 1000, `both members left ${elapsed} ms after the node died (ttl ${presenceTtl} ms)`)
    t.same(gone.sort(), doomedIds.sort(), 'one leave in each room, for its member')
    await sleep(presenceTtl)
    t.same([...bea.frames, ...cal.frames].filter((f) => f.type === 'leave'), [], 'never twice')
    const members = await bea.request('presence', { topic: 'room/x' })
    t.same(members.data.members.map((m: { user: { id: string } }) => m.user.id), ['bea'], 'presence no longer lists them')
  })

  t.test('a promoted replica that lacks delivered publications: subscribers told 2500, a new epoch, no silent reuse of offsets', async (t) => {
    const list = await startNodes(t, { cluster: cluster.nodes }, 2)
    const [a] = list
    const topic = 'feed/rewind'
    const clients = await openFeeds(t, list, 1, topic, true)
    for (let n = 0; n < 5; n++) await a.app.realtime.publish(topic, { n, from: 'a' })
    await until(() => clients.every((c) => c.position?.offset === 5))
    const old = clients[0].position as { offset: number, epoch: string }
    // What a replica that had not yet received publications 4 and 5 holds once promoted;
    // then the nodes' subscriptions on that shard drop, as they do in a failover.
    const probe = clusterProbe(t, cluster)
    await probe.connect()
    await probe.hset(a.broker.keys.meta(topic), 'offset', 3)
    await probe.xtrim(a.broker.keys.stream(topic), 'MAXLEN', 3)
    const owner = cluster.masterOf(a.broker.keys.meta(topic))
    await probe.nodes('master').find((n) => n.options.port === owner)?.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
    await until(() => clients.every((c) => c.told.includes('unsubscribed 2500') && c.settled), 10_000)
    const next = await a.app.realtime.publish(topic, { n: 5, from: 'a' })
    t.not(next.epoch, old.epoch, 'the topic went on in a new epoch')
    await until(() => clients.every((c) => c.position?.epoch === next.epoch && c.position.offset === next.offset))
    for (const [i, client] of clients.entries()) {
      t.same(client.violations, [], `subscriber ${i}: never a silent gap, never an offset twice`)
      t.same(client.subscribes.at(-1), { recovered: false, offset: 3, epoch: next.epoch }, `subscriber ${i}: resubscribed with since, recovered: false`)
    }
    t.same(list.map((n) => n.resyncs.includes(topic)), [true, true], 'each node told its subscribers')
  })

  // Last: it leaves the cluster with a master fewer.
  t.test('a master killed with SIGKILL while two nodes publish: its replica takes over, no crash, never a silent gap', async (t) => {
    const unhandled: unknown[] = []
    const onUnhandled = (err: unknown) => { unhandled.push(err) }
    process.on('unhandledRejection', onUnhandled)
    process.on('uncaughtException', onUnhandled)
    t.teardown(() => { process.off('unhandledRejection', onUnhandled); process.off('uncaughtException', onUnhandled) })

    const list = await startNodes(t, { cluster: cluster.nodes }, 3)
    const [a, b] = list
    const topic = 'feed/failover'
    const clients = await openFeeds(t, list, 2, topic, true)
    const load = { running: true }
    const acked: Array<{ offset: number, epoch: string, key: string }> = []
    const counts = { failed: 0, codes: new Set<string>() }
    const publishing = async (node: Node, from: string) => {
      for (let n = 0; load.running; n++) {
        try {
          const { offset, epoch } = await node.app.realtime.publish(topic, { n, from })
          acked.push({ offset, epoch, key: `${from}${n}` })
        } catch (err) {
          counts.failed++
          counts.codes.add((err as { code?: string }).code ?? String(err))
          await sleep(20)
        }
        await sleep(1)
      }
    }
    const loads = [publishing(a, 'a'), publishing(b, 'b')]
    await sleep(400)
    const master = cluster.masterOf(a.broker.keys.meta(topic))
    await cluster.kill(master)
    const killed = Date.now()
    await cluster.failedOver(3)
    t.comment(`replica promoted, cluster_state:ok ${Date.now() - killed} ms after the kill`)
    const ackedBefore = acked.length
    await until(() => acked.length > ackedBefore + 50, 15_000)
    t.comment(`publishing again ${Date.now() - killed} ms after the kill`)
    load.running = false
    await Promise.all(loads)

    t.ok(counts.failed > 0, `publications failed while the shard had no master (${counts.failed})`)
    t.same([...counts.codes], ['FST_REALTIME_BROKER_UNAVAILABLE'], 'with the documented, temporary code')
    const final = await a.broker.position(topic)
    await until(() => clients.every((c) => c.settled && c.position?.epoch === final.epoch && c.position.offset === final.offset), 15_000)
    const rewound = list.some((n) => n.resyncs.includes(topic))
    for (const [i, client] of clients.entries()) {
      t.same(client.violations, [], `subscriber ${i}: never a silent gap`)
      if (rewound) {
        t.ok(client.told.includes('unsubscribed 2500'), `subscriber ${i}: told that the promoted replica lacks publications it had`)
      } else {
        const seen = new Set(client.received.map((r) => `${r.data.from}${r.data.n}`))
        t.ok(acked.every((p) => seen.has(p.key)), `subscriber ${i}: every acknowledged publication arrived, across the failover`)
      }
    }
    t.comment(rewound ? 'the promoted replica had lost publications: a new epoch, subscribers told' : 'the promoted replica had every publication: nodes filled their gaps from its history')
    t.same(unhandled, [], 'no unhandled rejection, no uncaught exception')
  })
}
