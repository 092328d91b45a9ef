// The PostgreSQL broker against the local PostgreSQL (DATABASE_URL): the broker contract,
// unchanged, then what only a networked broker has: several nodes on one topic,
// presence across nodes, large publications, the LISTEN connection dropping.
import t from 'tap'
import pg from 'pg'
import { Type } from '@sinclair/typebox'
import { PostgresBroker, postgresMigration, type PostgresBrokerOptions } from '../../lib/broker/postgres.js'
import { createPublisher } from '../../lib/postgres.js'
import type { Publication, PresenceEvent, BrokerCommand } from '../../lib/broker/types.js'
import { brokerContract, idempotencyContract } from '../fixtures/broker-contract.js'
import { freePort, requireOrSkip } from '../fixtures/redis.js'
import { DATABASE_URL, childThatDies, dropSchema, pgReachable, terminate, uniqueSchema } from '../fixtures/postgres.js'
import { until } from '../fixtures/helpers.js'

if (requireOrSkip(t, await pgReachable(), `PostgreSQL is not reachable at ${DATABASE_URL}`)) {
  const schema = uniqueSchema('broker')
  t.teardown(() => dropSchema(schema))
  const base = { connectionString: DATABASE_URL, schema }

  t.test('the broker contract', async (t) => {
    brokerContract(t, {
      prefix: 'c/',
      make: async (clock) => new PostgresBroker({ ...base, now: clock.now })
    })
  })

  t.test('the idempotency contract', async (t) => {
    idempotencyContract(t, {
      prefix: 'c/',
      make: async (clock) => new PostgresBroker({ ...base, now: clock.now })
    })
  })

  async function node (t: any, options: PostgresBrokerOptions = {}) {
    const broker = new PostgresBroker({ ...base, ...options })
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
    for (let i = 0; i < 150; i++) {
      sent.push(a.broker.publish(topic, `{"a":${i}}`, { history }))
      sent.push(b.broker.publish(topic, `{"b":${i}}`, { history }))
    }
    const positions = await Promise.all(sent) as Array<{ offset: number }>
    t.same(positions.map((p) => p.offset).sort((x, y) => x - y), Array.from({ length: 300 }, (_, i) => i + 1), 'no offset twice, none skipped')
    await until(() => [a, b, c].every((n) => n.delivered.length >= 300), 20_000)
    for (const n of [a, b, c]) {
      t.same(n.delivered.map((p) => p.offset), Array.from({ length: 300 }, (_, i) => i + 1), 'every node delivers in offset order')
    }
    t.same(a.delivered.map((p) => p.data), c.delivered.map((p) => p.data), 'with the same data')
    const r = await c.broker.recover(topic, { offset: 0, epoch: a.delivered[0].epoch }, 1000)
    t.same(r.publications.map((p) => p.data), a.delivered.map((p) => p.data), 'and the history agrees')
  })

  t.test('ephemeral publications reach other nodes without an offset; a publisher without subscribers delivers nothing itself', async (t) => {
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
  })

  t.test('a publication larger than NOTIFY carries travels by pointer, in order; one over maxPublicationBytes is refused before the database sees it', async (t) => {
    const a = await node(t, { maxPublicationBytes: 100_000 })
    const b = await node(t)
    await b.broker.subscribe('big/1')
    const big = JSON.stringify({ text: 'x'.repeat(20_000) })
    await a.broker.publish('big/1', '{"n":1}', { history: { size: 10, ttl: 0 } })
    await a.broker.publish('big/1', big, { history: { size: 10, ttl: 0 } })
    await a.broker.publish('big/1', '{"n":3}', { history: { size: 10, ttl: 0 } })
    const ephemeralBig = JSON.stringify({ typing: 'y'.repeat(9000) })
    await a.broker.publish('big/1', ephemeralBig, { ephemeral: true })
    await until(() => b.delivered.length === 4)
    t.same(b.delivered.map((p) => [p.offset, p.data.length]), [[1, 7], [2, big.length], [3, 7], [0, ephemeralBig.length]])
    t.equal(b.delivered[1].data, big)
    const huge = 'h'.repeat(100_001)
    await t.rejects(a.broker.publish('big/1', JSON.stringify(huge)), { code: 'FST_REALTIME_PUBLICATION_TOO_LARGE' })
    t.equal((await a.broker.position('big/1')).offset, 3, 'no offset used')
  })

  t.test('unsubscribe stops delivery; subscribe again resumes it', async (t) => {
    const a = await node(t)
    const b = await node(t)
    await a.broker.subscribe('u/1')
    await b.broker.publish('u/1', '{}')
    await until(() => a.delivered.length === 1)
    a.broker.unsubscribe('u/1')
    a.broker.unsubscribe('u/1')
    await b.broker.publish('u/1', '{}')
    await a.broker.subscribe('u/1')
    await b.broker.publish('u/1', '{}')
    await until(() => a.delivered.length === 2)
    t.same(a.delivered.map((p) => p.offset), [1, 3])
  })

  t.test('presence across nodes; a node that closes takes its members with it; a node that stops beating loses them', async (t) => {
    const a = await node(t)
    const b = await node(t, { presenceTtl: 300 })
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
    await t.rejects(a.broker.members('p/1'), { code: 'FST_REALTIME_BROKER_CLOSED' }, 'a closed broker refuses')
    await t.rejects(b.broker.join('p/1', { connectionId: 'x\ny', data: '{}' }), { code: 'FST_REALTIME_INVALID_DATA', message: /line break/ })
    // A node killed (SIGKILL) with a member: its heartbeat stops, a live node sweeps the member, announcing one leave.
    const c = await node(t, { presenceTtl: 300 })
    await c.broker.subscribe('p/1')
    await childThatDies('join', { SCHEMA: schema, TOPIC: 'p/1' })
    await until(() => c.presence.some((e) => e.kind === 'join' && e.member.connectionId === 'dead-1'))
    await until(async () => (await ids(c)).length === 1, 10_000)
    t.same(await ids(c), ['b1'], 'the dead node\'s member is gone once its heartbeat expired')
    await until(() => c.presence.some((e) => e.kind === 'leave' && e.member.connectionId === 'dead-1'))
    t.same(c.presence.filter((e) => e.member.connectionId === 'dead-1').map((e) => e.kind), ['join', 'leave'], 'its join, then one leave')
  })

  t.test('commands reach every node', async (t) => {
    const a = await node(t)
    const b = await node(t)
    await a.broker.command({ kind: 'disconnect-user', userId: 'u', code: 4503, reason: 'bye' })
    await until(() => a.commands.length === 1 && b.commands.length === 1)
    t.same(b.commands, [{ kind: 'disconnect-user', userId: 'u', code: 4503, reason: 'bye' }])
  })

  t.test('tables made by the documented migration (createTables: false); without them a statement fails as PostgreSQL says', async (t) => {
    const own = uniqueSchema('migrated')
    t.teardown(() => dropSchema(own))
    const sql = postgresMigration({ schema: own, prefix: 'rt_' })
    t.match(sql, /CREATE TABLE IF NOT EXISTS "[a-z0-9_]+"."rt_publications"/)
    const missing = new PostgresBroker({ connectionString: DATABASE_URL, schema: own, prefix: 'rt_', createTables: false })
    t.teardown(() => missing.close())
    await t.rejects(missing.publish('m/1', '{}'), { code: '42P01' }, 'no table: PostgreSQL\'s own error, not UNAVAILABLE')
    const admin = new pg.Client({ connectionString: DATABASE_URL })
    await admin.connect()
    await admin.query(sql)
    await admin.query(sql)
    await admin.end()
    const broker = new PostgresBroker({ connectionString: DATABASE_URL, schema: own, prefix: 'rt_', createTables: false })
    t.teardown(() => broker.close())
    await broker.start(() => {})
    await broker.start(() => {})
    t.equal((await broker.publish('m/1', '{}', { history: { size: 5, ttl: 0 } })).offset, 1, 'works on the migrated tables')
  })

  t.test('PostgreSQL unreachable: start, publish and the rest reject with FST_REALTIME_BROKER_UNAVAILABLE; close still works', async (t) => {
    const broker = new PostgresBroker({ connectionString: `postgres://postgres@127.0.0.1:${await freePort()}/test`, schema })
    await t.rejects(broker.start(() => {}), { code: 'FST_REALTIME_BROKER_UNAVAILABLE' })
    await t.rejects(broker.publish('x/1', '{}'), { code: 'FST_REALTIME_BROKER_UNAVAILABLE', statusCode: 503 })
    await t.rejects(broker.position('x/1'), { code: 'FST_REALTIME_BROKER_UNAVAILABLE' })
    await t.rejects(broker.subscribe('x/1'), { code: 'FST_REALTIME_BROKER_NOT_STARTED' }, 'a failed start left it not started')
    await t.rejects(broker.start(() => {}), { code: 'FST_REALTIME_BROKER_UNAVAILABLE' }, 'and start() tries again')
    t.equal(broker.connected, false)
    await broker.close()
    await broker.close()
    await t.rejects(broker.publish('x/1', '{}'), { code: 'FST_REALTIME_BROKER_CLOSED' })
    await t.rejects(broker.start(() => {}), { code: 'FST_REALTIME_BROKER_CLOSED' })
  })

  t.test('a cut LISTEN connection is reported to the log and re-established', async (t) => {
    const warnings: string[] = []
    const log = { warn: (_obj: object, msg?: string) => warnings.push(String(msg)), error: (_obj: object, msg?: string) => warnings.push(String(msg)) }
    const name = `rt-log-${Date.now()}`
    const a = await node(t, { log, poolConfig: { application_name: name } })
    await a.broker.subscribe('l/1')
    await terminate(name)
    // Generous bounds: the reconnection waits a growing delay, then LISTENs and closes the
    // topic's gap from the tables before it delivers live again, all slower on a busy machine.
    await until(() => warnings.some((w) => /LISTEN connection lost/.test(w)), 15_000)
    await until(() => a.broker.connected, 15_000)
    // With history: when the publication commits while the node is still closing the
    // reconnection's gap, the gap is closed from the history table and it is delivered from
    // there (without history it could only be told as lost, which the contract allows).
    await a.broker.publish('l/1', '{}', { history: { size: 10, ttl: 0 } })
    await until(() => a.delivered.length === 1, 15_000)
    t.pass('delivers again')
  })

  t.test('the PostgreSQL publisher makes its own broker from a connection string, and closes it', async (t) => {
    const publisher = createPublisher({ connectionString: DATABASE_URL, schema, topics: { 'news/:id': { message: Type.Object({ title: Type.String() }) } } })
    const r = await publisher.topic('news/:id').publish({ id: 'a' }, { title: 'hi' })
    t.equal(r.offset, 1)
    t.same((await publisher.broker.history('news/a', 10)).publications.map((p) => p.data), ['{"title":"hi"}'])
    await publisher.close()
    await t.rejects(publisher.publish('news/a', { title: 'x' }), { code: 'FST_REALTIME_BROKER_CLOSED' })
  })

  t.test('options are checked', async (t) => {
    t.throws(() => new PostgresBroker({ schema: 'a;drop' }), { code: 'FST_REALTIME_INVALID_BROKER_OPTION' })
    t.throws(() => new PostgresBroker({ prefix: 'x'.repeat(51) }), { code: 'FST_REALTIME_INVALID_BROKER_OPTION' })
    t.throws(() => new PostgresBroker({ maxPublicationBytes: 0 }), { code: 'FST_REALTIME_INVALID_BROKER_OPTION' })
    t.throws(() => new PostgresBroker({ notifyLimit: 8000 }), { code: 'FST_REALTIME_INVALID_BROKER_OPTION' })
    t.throws(() => new PostgresBroker({ presenceTtl: 0.5 }), { code: 'FST_REALTIME_INVALID_BROKER_OPTION' })
    t.throws(() => new PostgresBroker({ pool: {} as any }), { code: 'FST_REALTIME_INVALID_BROKER_OPTION' })
    const pool = new pg.Pool({ connectionString: DATABASE_URL })
    t.teardown(() => pool.end())
    t.throws(() => new PostgresBroker({ pool, connectionString: DATABASE_URL }), { code: 'FST_REALTIME_INVALID_BROKER_OPTION', message: /excludes/ })
  })
}
