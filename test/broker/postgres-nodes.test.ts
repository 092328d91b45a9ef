// Plugin nodes on one PostgreSQL (lib/broker/postgres.ts), black-box over real sockets as
// the Redis two-node tests: a subscriber on A and publications from B, then the
// subscriber reconnects to B and recovers gaplessly; a node whose LISTEN connection is
// cut catches up from the tables; PostgreSQL restarted under load (a private server of
// the test's own): no silent gap, every loss told.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { PostgresBroker, type PostgresBrokerOptions } from '../../lib/broker/postgres.js'
import { build, until, type TestContext } from '../fixtures/helpers.js'
import { FeedClient, feedTopics, requireOrSkip } from '../fixtures/redis.js'
import { DATABASE_URL, PostgresServer, dropSchema, hasPostgresBinaries, pgReachable, terminate, uniqueSchema } from '../fixtures/postgres.js'

interface PgNode {
  app: FastifyInstance
  url: string
  broker: PostgresBroker
  /** The application_name of its connections, to cut them. */
  name: string
  resyncs: string[]
}

async function startNode (t: TestContext, options: PostgresBrokerOptions): Promise<PgNode> {
  const name = `rt-node-${randomBytes(4).toString('hex')}`
  const broker = new PostgresBroker({ ...options, poolConfig: { application_name: name, ...options.poolConfig } })
  const resyncs: string[] = []
  const start = broker.start.bind(broker)
  broker.start = (listener, presence, command, resync) => start(listener, presence, command, (topic: string) => {
    resyncs.push(topic)
    resync?.(topic)
  })
  t.teardown(() => broker.close())
  const built = await build(t, { broker }, feedTopics)
  return { app: built.app, url: built.url, broker, name, resyncs }
}

if (requireOrSkip(t, await pgReachable(), `PostgreSQL is not reachable at ${DATABASE_URL}`)) {
  const schema = uniqueSchema('nodes')
  t.teardown(() => dropSchema(schema))
  const options = { connectionString: DATABASE_URL, schema }

  t.test('a subscriber on A, publications from B; it reconnects to B and recovers every one it missed', async (t) => {
    const a = await startNode(t, options)
    const b = await startNode(t, options)
    const topic = 'feed/two-nodes'
    const onA = new FeedClient(a.url, topic, { reconnect: false })
    t.teardown(() => onA.close())
    await onA.open()
    await until(() => onA.settled)
    for (let n = 0; n < 200; n++) await b.app.realtime.publish(topic, { n, from: 'b' })
    await until(() => onA.received.length === 200, 10_000)
    await onA.close()
    for (let n = 200; n < 300; n++) await b.app.realtime.publish(topic, { n, from: 'b' })
    const onB = new FeedClient(b.url, topic, { since: onA.position as { offset: number, epoch: string } })
    t.teardown(() => onB.close())
    await onB.open()
    await until(() => onB.received.length === 100, 10_000)
    t.same(onB.subscribes.map((s) => s.recovered), [true], 'recovered')
    t.same([...onA.violations, ...onB.violations], [], 'no gap, no duplicate, no disorder')
    t.same([...onA.received, ...onB.received].map((r) => r.data.n), Array.from({ length: 300 }, (_, i) => i), 'every publication once, in order')
  })

  t.test('A\'s LISTEN connection is cut while B publishes: A catches up from the tables, in order, and says nothing is lost', async (t) => {
    const a = await startNode(t, options)
    const b = await startNode(t, options)
    const topic = 'feed/cut'
    const onA = new FeedClient(a.url, topic)
    t.teardown(() => onA.close())
    await onA.open()
    await until(() => onA.settled)
    const run = { stop: false }
    let sent = 0
    const load = (async () => {
      while (!run.stop) {
        await b.app.realtime.publish(topic, { n: sent, from: 'b' })
        sent++
      }
    })()
    t.teardown(() => { run.stop = true; return load.catch(() => {}) })
    await until(() => onA.received.length >= 20, 10_000)
    t.ok(await terminate(a.name) > 0, 'A\'s connections ended by pg_terminate_backend')
    await until(() => !a.broker.connected, 5000).catch(() => {})
    await until(() => a.broker.connected, 10_000)
    const mark = sent
    await until(() => onA.received.length >= mark + 20, 10_000)
    run.stop = true
    await load
    await until(() => onA.received.length === sent, 10_000)
    t.same(onA.violations, [], 'no gap, no duplicate, no disorder')
    t.same(onA.received.map((r) => r.data.n), Array.from({ length: sent }, (_, i) => i), `all ${sent}, in order`)
    t.same(a.resyncs, [], 'closed from the history: nobody had to be told to resubscribe')
  })

  t.test('history too short to close the gap: the subscribers are told (2500), never left with a silent hole', async (t) => {
    const a = await startNode(t, { ...options, resyncLimit: 5 })
    const b = await startNode(t, options)
    const topic = 'feed/told'
    const onA = new FeedClient(a.url, topic)
    t.teardown(() => onA.close())
    await onA.open()
    await until(() => onA.settled)
    await b.app.realtime.publish(topic, { n: 0, from: 'b' })
    await until(() => onA.received.length === 1)
    // Cut A and publish more than it may replay by itself before it is back.
    await terminate(a.name)
    for (let n = 1; n <= 30; n++) await b.app.realtime.publish(topic, { n, from: 'b' })
    // Bounds for a busy machine: A reconnects with a growing delay, then finds the gap too
    // long for its resyncLimit, tells, and the client recovers from the history.
    await until(() => a.resyncs.length > 0, 30_000)
    await until(() => onA.received.length === 31, 30_000)
    t.same(onA.violations, [], 'what the client received has no silent gap')
    t.ok(onA.told.includes('unsubscribed 2500'), 'told, and it recovered with since')
  })

  t.test('PostgreSQL restarted under load: every publication that was answered arrives, in order; every loss is told', { skip: hasPostgresBinaries() ? false : 'no PostgreSQL binaries to start a private server' }, async (t) => {
    const server = await PostgresServer.create()
    t.teardown(() => server.remove())
    await server.start()
    const own = { connectionString: server.url, schema: 'rt' }
    const a = await startNode(t, own)
    const b = await startNode(t, own)
    const topic = 'feed/restart'
    const onA = new FeedClient(a.url, topic)
    const onB = new FeedClient(b.url, topic)
    t.teardown(() => Promise.all([onA.close(), onB.close()]))
    await Promise.all([onA.open(), onB.open()])
    await until(() => onA.settled && onB.settled)
    const run = { stop: false }
    const accepted: number[] = []
    const refused: string[] = []
    let n = 0
    const load = (async () => {
      while (!run.stop) {
        const mine = n++
        try {
          await b.app.realtime.publish(topic, { n: mine, from: 'b' })
          accepted.push(mine)
        } catch (err) {
          refused.push((err as { code: string }).code)
          await new Promise((resolve) => setTimeout(resolve, 20))
        }
      }
    })()
    t.teardown(() => { run.stop = true; return load })
    await until(() => accepted.length >= 50, 10_000)
    await server.stop('SIGINT')
    await until(() => refused.length >= 3, 10_000)
    await server.start()
    await until(() => a.broker.connected && b.broker.connected, 20_000)
    const before = accepted.length
    await until(() => accepted.length >= before + 50, 20_000)
    run.stop = true
    await load
    await until(() => onA.received.length >= accepted.length && onB.received.length >= accepted.length, 20_000)
    t.ok(refused.length > 0, `${refused.length} publications refused while PostgreSQL was down`)
    t.same([...new Set(refused)], ['FST_REALTIME_BROKER_UNAVAILABLE'], 'each told to its publisher as UNAVAILABLE')
    for (const [label, feed] of [['A', onA], ['B', onB]] as const) {
      t.same(feed.violations, [], `${label}: no gap, no duplicate, no disorder`)
      t.same(feed.received.map((r) => r.data.n), accepted, `${label}: every answered publication, in order`)
    }
  })
}
