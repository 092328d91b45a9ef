// Plugin nodes on a Redis Cluster of three masters, each with a replica, that this file
// starts (test/fixtures/redis-cluster.ts): fan-out of 10,000 publications from two nodes
// to subscribers on three, a node that dies (its members swept once), a topic's slot
// moved to another master while two nodes publish (at once, and left half done), and
// last, a master killed with SIGKILL while two nodes publish (its replica takes over).
import t, { type Test } from 'tap'
import { Cluster } from 'ioredis'
import { connect, until, watchCrashes, type TestClient } from '../fixtures/helpers.js'
import { feedTopics, openFeeds, tenThousandFromTwoNodes, sleep, startNodes, hasRedisServer, requireOrSkip, startNode, uniquePrefix, type FeedClient, type Node } from '../fixtures/redis.js'
import { clusterProbe, hasRedisCli, startRedisCluster } from '../fixtures/redis-cluster.js'

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

  /** Nodes publishing to a topic one after the other (1 ms apart, 20 ms after a failure) until stopped. */
  function publishSteadily (nodes: Node[], topic: string) {
    const load = { running: true }
    const acked: Array<{ offset: number, epoch: string, key: string }> = []
    const failures = { count: 0, codes: new Set<string>() }
    const loops = nodes.map(async (node, i) => {
      const from = String.fromCharCode(97 + i)
      for (let n = 0; load.running; n++) {
        try {
          const { offset, epoch } = await node.app.realtime.publish(topic, { n, from })
          acked.push({ offset, epoch, key: `${from}${n}` })
        } catch (err) {
          failures.count++
          failures.codes.add((err as { code?: string }).code ?? String(err))
          await sleep(20)
        }
        await sleep(1)
      }
    })
    return { acked, failures, stop: async () => { load.running = false; await Promise.all(loops) } }
  }

  /** Subscriptions to a sharded channel, as one master counts them (PUBSUB SHARDNUMSUB). */
  async function shardSubscriptions (port: number, channel: string): Promise<number> {
    const [, count] = await cluster.call(port, 'PUBSUB', 'SHARDNUMSUB', channel) as [string, number]
    return Number(count)
  }

  /** Waits until `count` more publications are acknowledged. */
  async function goesOn (load: ReturnType<typeof publishSteadily>, count: number): Promise<void> {
    const before = load.acked.length
    await until(() => load.acked.length >= before + count, 6000)
  }

  /**
   * Once publishing stopped, on a topic whose slot moved to the master on `owner`: every
   * node subscribes there (ioredis follows the slot; a stale map is corrected by the
   * periodic refresh within a second), and brings its subscribers to the topic's last
   * position with no gap, duplicate or disorder, and every acknowledged publication. A
   * slot move loses nothing: the topic forks on its new master (another Redis publishes
   * to it), so its subscribers are told 2500 and each resubscription recovers across it.
   */
  async function everyoneGotEverything (t: Test, list: Node[], clients: FeedClient[], topic: string, owner: number, acked: Array<{ key: string }>): Promise<void> {
    const channel = list[0].broker.keys.channel(topic)
    await until(async () => await shardSubscriptions(owner, channel) === list.length, 5000)
    t.pass(`the ${list.length} nodes listen where the topic now lives`)
    const final = await list[0].broker.position(topic)
    await until(() => clients.every((c) => c.settled && c.position?.epoch === final.epoch && c.position.offset === final.offset), 10_000)
    t.pass(`every subscriber reached the topic's last position (${JSON.stringify(final)})`)
    for (const [i, client] of clients.entries()) {
      t.same(client.violations, [], `subscriber ${i}: no gap, no duplicate, no disorder`)
      const seen = new Set(client.received.map((r) => `${r.data.from}${r.data.n}`))
      t.same(acked.filter((p) => !seen.has(p.key)), [], `subscriber ${i}: every acknowledged publication arrived`)
      const again = client.subscribes.slice(1).map((s) => s.recovered)
      t.ok(again.every((r) => r === true), `subscriber ${i}: every resubscription recovered (${again.join(', ')})`)
    }
    const epochs = new Set(clients[0].received.map((r) => r.epoch)).size
    t.comment(`${epochs > 1 ? 'the topic forked into a new epoch' : 'one epoch throughout'}; subscribers told 2500: ${clients.filter((c) => c.told.length > 0).length} of ${clients.length}`)
  }

  /**
   * Three nodes with two subscribers each to a topic (named by `topicOf` once the nodes
   * are up), the first two nodes publishing to it steadily, 50 publications in.
   */
  async function steadyTopic (t: Test, topicOf: (nodes: Node[]) => string) {
    const crashes = watchCrashes(t)
    const list = await startNodes(t, { cluster: cluster.nodes }, 3)
    const topic = topicOf(list)
    const clients = await openFeeds(t, list, 2, topic, true)
    const load = publishSteadily([list[0], list[1]], topic)
    await until(() => load.acked.length >= 50, 5000)
    return { crashes, list, a: list[0], topic, clients, load }
  }

  /** The slot of a topic's keys, its master, and another master to move it to. */
  function slotMove (node: Node, topic: string): { slot: number, from: number, to: number } {
    const slot = cluster.slotOf(node.broker.keys.meta(topic))
    const from = cluster.ownerOf(slot)
    return { slot, from, to: cluster.masters().find((port) => port !== from) as number }
  }

  t.test('a topic\'s slot moved to another master while two nodes publish: no crash, no gap, every acknowledged publication delivered', async (t) => {
    const { crashes, list, a, topic, clients, load } = await steadyTopic(t, () => 'feed/reshard')
    const { slot, from, to } = slotMove(a, topic)
    const started = Date.now()
    const move = await cluster.moveSlot(slot, to)
    t.comment(`slot ${slot} (${move.moved} keys) moved from ${from} to ${to} in ${Date.now() - started} ms`)
    t.equal(cluster.ownerOf(slot), to, 'the slot is served by the other master')
    await goesOn(load, 50)
    t.comment(`50 more publications acknowledged ${Date.now() - started} ms after the move began`)
    await load.stop()

    t.same([...load.failures.codes].filter((code) => code !== 'FST_REALTIME_BROKER_UNAVAILABLE'), [], `a publication that failed (${load.failures.count}) failed as temporary`)
    await everyoneGotEverything(t, list, clients, topic, to, load.acked)
    t.equal(await shardSubscriptions(from, a.broker.keys.channel(topic)), 0, 'no node listens where the topic was')
    t.same({ ...crashes }, { uncaught: 0, unhandled: 0 }, 'no unhandled rejection, no uncaught exception')
  })

  t.test('a slot move left half done while two nodes publish (keys on both masters, then all moved), then finished: no crash, no gap, nothing lost', async (t) => {
    const { crashes, list, a, topic, clients, load } = await steadyTopic(t, () => 'feed/halfway')
    const { slot, to } = slotMove(a, topic)
    const started = Date.now()

    // One of the topic's two keys moved: a script needs both, and gets TRYAGAIN.
    const move = await cluster.moveSlot(slot, to, { stopAfter: 1 })
    t.same(await move.counts(), [1, 1], 'meta and stream on two masters, the slot MIGRATING on one and IMPORTING on the other')
    const failedBefore = load.failures.count
    await until(() => load.failures.count > failedBefore, 10_000)
    t.comment(`a publication failed ${Date.now() - started} ms after the move began`)

    // Both moved, the slot not yet handed over: the old owner answers ASK.
    await move.migrate()
    t.same(await move.counts(), [0, 2], 'both keys on the new master, the slot still the old one\'s')
    const ackedHalf = load.acked.length
    const receivedHalf = clients[0].received.length
    await until(() => load.acked.length > ackedHalf, 10_000)
    t.comment(`publishing again (by ASK) ${Date.now() - started} ms after the move began`)
    t.comment(`live deliveries meanwhile: ${clients[0].received.length - receivedHalf}`)

    await move.finish()
    t.equal(cluster.ownerOf(slot), to, 'the slot is served by the other master')
    await goesOn(load, 50)
    t.comment(`50 more publications acknowledged ${Date.now() - started} ms after the move began`)
    await load.stop()

    t.same([...load.failures.codes], ['FST_REALTIME_BROKER_UNAVAILABLE'], `publications failed while the topic's keys were split (${load.failures.count}), with the documented, temporary code`)
    await everyoneGotEverything(t, list, clients, topic, to, load.acked)
    t.same({ ...crashes }, { uncaught: 0, unhandled: 0 }, 'no unhandled rejection, no uncaught exception')
  })

  // Last two: each leaves the cluster with a replica fewer.
  t.test('control traffic across a failover: the master holding the nodes\' control subscriptions dies, disconnectUser still reaches every node, heartbeats go on', async (t) => {
    const crashes = watchCrashes(t)
    // Longer than a failover (about 3 s) plus a beat: no node may be taken for dead meanwhile.
    const presenceTtl = 6000
    const list = await startNodes(t, { cluster: cluster.nodes }, 3, { presenceTtl })
    const keys = list[0].broker.keys
    const zed = await Promise.all(list.map(async (node) => await connect(t, node.url, { headers: { 'x-user': 'zed' } })))
    const bea = await connect(t, list[1].url, { headers: { 'x-user': 'bea' } })
    await bea.request('subscribe', { topic: 'room/lobby' })
    await zed[2].request('subscribe', { topic: 'room/lobby' })
    await bea.nextOfType('join')
    // Classic pub/sub, on whichever node each node's subscriber connection picked.
    const controlSubscribers = async () => {
      const counts = new Map<number, number>()
      for (const port of cluster.live()) counts.set(port, Number(((await cluster.call(port, 'PUBSUB', 'NUMSUB', keys.control)) as [string, number])[1]))
      return counts
    }
    const before = await controlSubscribers()
    t.equal([...before.values()].reduce((a, b) => a + b, 0), 3, 'each node listens for commands')
    // The master holding most of them (the liveness slot's when none does) that a replica can replace.
    const candidates = cluster.masters().filter((port) => cluster.hasReplica(port))
    const byHeld = candidates.sort((x, y) => (before.get(y) ?? 0) - (before.get(x) ?? 0))
    const victim = (before.get(byHeld[0]) ?? 0) > 0 ? byHeld[0] : (candidates.find((port) => port === cluster.masterOf(keys.nodes)) ?? byHeld[0])
    t.comment(`killing ${victim}: ${before.get(victim) ?? 0} control subscription(s)${victim === cluster.masterOf(keys.nodes) ? ', the liveness slot' : ''}`)
    await cluster.kill(victim)
    await cluster.failedOver(3)
    await until(async () => [...(await controlSubscribers()).values()].reduce((a, b) => a + b, 0) === 3, 10_000)
    t.pass('every node listens for commands again')

    await list[0].app.realtime.disconnectUser('zed')
    const closes = await Promise.all(zed.map(async (client) => await client.closed))
    t.same(closes.map((c) => c.code), [4503, 4503, 4503], 'the user is disconnected on every node, its own and the others')
    const leave = await bea.nextOfType('leave')
    t.equal((leave.member as { user: { id: string } }).user.id, 'zed', 'and leaves the room once')
    // Heartbeats go on: once a ttl has passed, a sweep removes no live node's members.
    await sleep(presenceTtl + 500)
    const members = await bea.request('presence', { topic: 'room/lobby' })
    t.same(members.data.members.map((m: { user: { id: string } }) => m.user.id), ['bea'], 'bea is still present: her node was not taken for dead')
    t.same(bea.frames.filter((f) => f.type === 'leave'), [], 'no other leave')
    t.same({ ...crashes }, { uncaught: 0, unhandled: 0 }, 'no unhandled rejection, no uncaught exception')
  })

  t.test('a master killed with SIGKILL while two nodes publish, its replica behind: the replica takes over, the topic forks, no crash, never a silent gap', async (t) => {
    // A topic on a shard that still has a replica (the test before took one away).
    const { crashes, a, topic, clients, load } = await steadyTopic(t, ([node]) => {
      let name = 'feed/failover'
      for (let i = 1; !cluster.hasReplica(cluster.masterOf(node.broker.keys.meta(name))); i++) name = `feed/failover-${i}`
      return name
    })
    const meta = a.broker.keys.meta(topic)
    const master = cluster.masterOf(meta)
    // Replication is asynchronous: what the master acknowledges once its replica fell
    // behind is lost when the replica takes over. That is the case to get right.
    await cluster.cutReplication(master)
    const ackedBeforeCut = load.acked.length
    await until(() => load.acked.length >= ackedBeforeCut + 30, 5000)
    const epoch = load.acked[0].epoch
    const lastAcked = Math.max(...load.acked.filter((p) => p.epoch === epoch).map((p) => p.offset))
    await cluster.kill(master)
    const killed = Date.now()
    await cluster.failedOver(3)
    t.comment(`replica promoted, cluster_state:ok ${Date.now() - killed} ms after the kill`)
    await goesOn(load, 50)
    t.comment(`publishing again ${Date.now() - killed} ms after the kill`)
    await load.stop()

    t.ok(load.failures.count > 0, `publications failed while the shard had no master (${load.failures.count})`)
    t.same([...load.failures.codes], ['FST_REALTIME_BROKER_UNAVAILABLE'], 'with the documented, temporary code')
    const final = await a.broker.position(topic)
    t.not(final.epoch, epoch, 'the topic forked on the promoted replica')
    const probe = clusterProbe(t, cluster)
    await probe.connect()
    const forkedAt = Number(await probe.hget(meta, 'fork'))
    t.ok(forkedAt < lastAcked, `the promoted replica held offsets up to ${forkedAt}; ${lastAcked - forkedAt} acknowledged ones were lost with the master`)
    await until(() => clients.every((c) => c.settled && c.position?.epoch === final.epoch && c.position.offset === final.offset), 15_000)
    for (const [i, client] of clients.entries()) {
      t.same(client.violations, [], `subscriber ${i}: never a silent gap, never an offset meaning two publications`)
      t.ok(client.told.includes('unsubscribed 2500'), `subscriber ${i}: told`)
      // It had seen publications the promoted replica lacks: it cannot recover, and starts
      // again from the topic's position then, with every publication after it.
      const restart = client.subscribes.findLast((s) => s.recovered === false && s.epoch === final.epoch)
      t.ok(restart !== undefined && restart.offset >= forkedAt, `subscriber ${i}: resubscribed past the fork, recovered: false`)
      const seen = new Set(client.received.map((r) => `${r.data.from}${r.data.n}`))
      const since = load.acked.filter((p) => p.epoch === final.epoch && p.offset > (restart?.offset ?? 0))
      t.same(since.filter((p) => !seen.has(p.key)), [], `subscriber ${i}: every publication acknowledged after that arrived`)
    }
    t.same({ ...crashes }, { uncaught: 0, unhandled: 0 }, 'no unhandled rejection, no uncaught exception')
  })
}
