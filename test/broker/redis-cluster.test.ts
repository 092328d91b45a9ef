// Several plugin nodes on one Redis, each test with a redis-server of its own (started
// here, on a free port, without persistence) so it can be killed, restarted or flushed:
// fan-out across nodes, Redis going away under load, a flush, a node dying without
// cleaning up, kicks and presence across nodes.
import t from 'tap'
import { Redis } from 'ioredis'
import { connect, until, type TestClient } from '../fixtures/helpers.js'
import { FeedClient, feedTopics, openFeeds, tenThousandFromTwoNodes, sleep, startNodes, hasRedisServer, requireOrSkip, startNode, startRedisServer, uniquePrefix, type Node } from '../fixtures/redis.js'

async function subscriberCount (probe: Redis, channel: string): Promise<number> {
  const reply = await probe.call('PUBSUB', 'NUMSUB', channel) as [string, number]
  return Number(reply[1])
}

if (requireOrSkip(t, hasRedisServer(), 'redis-server is not installed')) {
  t.test('10,000 publications from two nodes reach every subscriber on three nodes, in offset order, none twice', async (t) => {
    const server = await startRedisServer(t)
    const [a, b, c] = await startNodes(t, { redis: server.url }, 3)
    const clients = await openFeeds(t, [a, b, c], 2, 'feed/big', false)
    await tenThousandFromTwoNodes(t, [a, b, c], clients, 'on one Redis')
  })

  t.test('Redis killed under load and restarted: no crash, resubscribed within 2 s, every subscriber told', async (t) => {
    const unhandled: unknown[] = []
    const onUnhandled = (err: unknown) => { unhandled.push(err) }
    process.on('unhandledRejection', onUnhandled)
    t.teardown(() => { process.off('unhandledRejection', onUnhandled) })

    const server = await startRedisServer(t)
    // Opted in: publications go on locally while Redis is away (off by default: they fail).
    const list = await startNodes(t, { redis: server.url }, 3, { localWhileDown: true })
    const [a, b] = list
    const clients = await openFeeds(t, list, 2, 'feed/live', true)
    const probe = new Redis(server.url, { lazyConnect: true, retryStrategy: () => 50 })
    probe.on('error', () => {})
    t.teardown(() => { probe.disconnect() })

    const load = { running: true }
    const counts = { ok: 0, local: 0, failed: 0, codes: new Set<string>() }
    const publishing = async (node: Node, from: string) => {
      for (let n = 0; load.running; n++) {
        try {
          const { offset } = await node.app.realtime.publish('feed/live', { n, from })
          if (offset === 0) counts.local++
          else counts.ok++
        } catch (err) {
          counts.failed++
          counts.codes.add((err as { code?: string }).code ?? 'none')
          await sleep(20)
        }
        await sleep(2)
      }
    }
    const loads = [publishing(a, 'a'), publishing(b, 'b')]
    await sleep(300)
    await server.kill()
    await sleep(1500)
    const before = counts.ok
    await server.start()
    const back = Date.now()
    await probe.connect()
    const control = `${a.broker.prefix}control`
    while (await subscriberCount(probe, control) < 3 && Date.now() - back < 5000) await sleep(20)
    const resubscribedIn = Date.now() - back
    t.ok(resubscribedIn < 2000, `every node subscribed again ${resubscribedIn} ms after Redis returned`)
    await sleep(700)
    load.running = false
    await Promise.all(loads)

    t.ok(counts.local > 0, `while Redis was away, publications went on, outside the stream (${counts.local}; ${counts.failed} failed at the switch)`)
    t.ok([...counts.codes].every((code) => code === 'FST_REALTIME_BROKER_UNAVAILABLE'), `any failure has the documented code (${[...counts.codes].join(',') || 'none'})`)
    t.ok(clients[0].local.some((d) => d.from === 'a') && clients[1].local.some((d) => d.from === 'a'), 'clients on the publishing node kept getting its publications')
    t.ok(clients.slice(2).every((c) => !c.local.some((d) => d.from === 'a')), 'other nodes did not get them (they are told by the resync instead)')
    t.ok(counts.ok > before, 'and stream publications succeed again once it is back')
    const final = await a.broker.position('feed/live')
    await until(() => clients.every((c) => c.settled && c.position?.epoch === final.epoch && c.position.offset === final.offset), 10_000)
    for (const [i, client] of clients.entries()) {
      t.same(client.violations, [], `subscriber ${i}: never a silent gap`)
      t.ok(client.told.includes('unsubscribed 2500'), `subscriber ${i}: told that it missed publications`)
      t.ok(client.subscribes.some((s) => s.recovered === false), `subscriber ${i}: Redis lost everything, so recovery says false`)
    }
    t.same(list.map((n) => n.resyncs.includes('feed/live')), [true, true, true], 'each node asked to resync')
    t.same(unhandled, [], 'no unhandled rejection')
  })

  t.test('Redis flushed: subscribers and returning clients with the old epoch get recovered: false, then the new epoch from its start', async (t) => {
    const server = await startRedisServer(t)
    const [a, b] = await startNodes(t, { redis: server.url }, 2)
    const clients = await openFeeds(t, [a, b], 1, 'feed/flush', true)
    const away = new FeedClient(b.url, 'feed/flush', { reconnect: false })
    t.teardown(() => away.close())
    await away.open()
    await until(() => away.settled)
    for (let n = 0; n < 5; n++) await a.app.realtime.publish('feed/flush', { n, from: 'a' })
    await until(() => [...clients, away].every((c) => c.position?.offset === 5))
    const old = away.position as { offset: number, epoch: string }
    await away.close()

    const probe = new Redis(server.url)
    t.teardown(() => probe.quit())
    await probe.flushall()
    const next = await a.app.realtime.publish('feed/flush', { n: 5, from: 'a' })
    t.not(next.epoch, old.epoch, 'a new epoch after the flush')
    t.equal(next.offset, 1)
    await until(() => clients.every((c) => c.settled && c.position?.epoch === next.epoch))
    for (const client of clients) {
      t.same(client.violations, [])
      t.same(client.told, ['unsubscribed 2500'], 'told')
      t.same(client.subscribes.at(-1), { recovered: false, offset: 0, epoch: next.epoch }, 'recovered: false, then the new epoch from its start')
      t.same(client.received.at(-1), { offset: 1, epoch: next.epoch, data: { n: 5, from: 'a' } }, 'the new epoch\'s first publication is not lost')
    }
    const back = new FeedClient(a.url, 'feed/flush', { reconnect: false, since: old })
    t.teardown(() => back.close())
    await back.open()
    await until(() => back.settled)
    t.same(back.subscribes, [{ recovered: false, offset: 0, epoch: next.epoch }], 'a client that was away cannot recover across the flush')
    await until(() => back.received.length === 1)
    t.same(back.received, [{ offset: 1, epoch: next.epoch, data: { n: 5, from: 'a' } }], 'but gets what the new epoch holds')
    t.same(back.violations, [])
  })

  t.test('a node that dies without cleaning up: its members leave within 2 × presence ttl, once each', async (t) => {
    const server = await startRedisServer(t)
    const presenceTtl = 1000
    const prefix = uniquePrefix('death')
    // The doomed node borrows its connections, so the test can cut them abruptly.
    const redis = new Redis(server.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null })
    const subscriber = new Redis(server.url, { retryStrategy: () => null })
    t.teardown(() => { redis.disconnect(); subscriber.disconnect() })
    const doomed = await startNode(t, { redis, subscriber, prefix, presenceTtl }, feedTopics)
    const [b, c] = [await startNode(t, { redis: server.url, prefix, presenceTtl }, feedTopics), await startNode(t, { redis: server.url, prefix, presenceTtl }, feedTopics)]
    const join = async (node: Node, name: string): Promise<TestClient> => {
      const client = await connect(t, node.url, { headers: { 'x-user': name } })
      const reply = await client.request('subscribe', { topic: 'room/x' })
      t.equal(reply.type, 'reply')
      return client
    }
    await join(doomed, 'dora')
    await join(doomed, 'dan')
    const bea = await join(b, 'bea')
    const cal = await join(c, 'cal')
    const doomedIds = [...doomed.app.realtime.connections].map((conn) => conn.id).sort()
    await until(() => (bea.frames.filter((f) => f.type === 'join').length === 1))

    // Dies: no leave, no QUIT, its heartbeat stops.
    redis.disconnect()
    subscriber.disconnect()
    const died = Date.now()
    const leaves = async (client: TestClient) => {
      const ids: string[] = []
      for (let i = 0; i < 2; i++) ids.push(((await client.next((f) => f.type === 'leave', 2 * presenceTtl + 500)).member as { connectionId: string }).connectionId)
      return ids.sort()
    }
    const [forBea, forCal] = await Promise.all([leaves(bea), leaves(cal)])
    const elapsed = Date.now() - died
    t.ok(elapsed <= 2 * presenceTtl, `both members left ${elapsed} ms after the node died (ttl ${presenceTtl} ms)`)
    t.same(forBea, doomedIds, 'bea hears a leave for each of them')
    t.same(forCal, doomedIds, 'and so does cal, on another node')
    await sleep(presenceTtl)
    t.same([...bea.frames, ...cal.frames].filter((f) => f.type === 'leave'), [], 'never twice')
    const members = await bea.request('presence', { topic: 'room/x' })
    t.same(members.data.members.map((m: { user: { id: string } }) => m.user.id).sort(), ['bea', 'cal'], 'presence no longer lists them')
  })

  t.test('across nodes: a presence query lists every node\'s members; disconnectUser closes the user everywhere with 4503', async (t) => {
    const server = await startRedisServer(t)
    const [a, b, c] = await startNodes(t, { redis: server.url }, 3)
    const enter = async (node: Node, name: string): Promise<TestClient> => {
      const client = await connect(t, node.url, { headers: { 'x-user': name } })
      t.equal((await client.request('subscribe', { topic: 'room/lobby' })).type, 'reply')
      return client
    }
    const alice1 = await enter(a, 'alice')
    const bob = await enter(b, 'bob')
    const alice2 = await enter(c, 'alice')
    // A subscribe is answered before its presence join is stored: wait for the three.
    for (const started = Date.now(); (await a.broker.members('room/lobby')).length < 3 && Date.now() - started < 5000;) await sleep(5)
    const list = await bob.request('presence', { topic: 'room/lobby' })
    t.same(list.data.members.map((m: { user: { id: string } }) => m.user.id).sort(), ['alice', 'alice', 'bob'], 'members of three nodes')
    t.same(list.data.members.map((m: { connectionId: string }) => m.connectionId).sort(), [
      ...a.app.realtime.connections, ...b.app.realtime.connections, ...c.app.realtime.connections
    ].map((conn) => conn.id).sort())

    await b.app.realtime.disconnectUser('alice', 4503, 'logged out')
    const closes = await Promise.all([alice1.closed, alice2.closed])
    t.same(closes, [{ code: 4503, reason: 'logged out' }, { code: 4503, reason: 'logged out' }], 'closed on the nodes they were on')
    bob.send({ type: 'ping', id: 'still-here' })
    t.equal((await bob.nextOfType('pong')).id, 'still-here', 'bob stays')
    await until(() => bob.frames.filter((f) => f.type === 'leave').length === 2)
    t.equal((await bob.request('presence', { topic: 'room/lobby' })).data.members.length, 1, 'and is alone')
  })
}
