// Transactional publish on the PostgreSQL broker: a publication written in the app's own
// transaction is delivered once it commits and never when it rolls back; concurrent
// transactions on one topic get offsets in commit order; a node killed right after
// COMMIT still has its publication delivered by the others; bad transactions are told.
// Through the plugin too: app.realtime.publish, topic handles, the publisher, and the
// memory broker's refusal.
import t from 'tap'
import pg from 'pg'
import { Type } from '@sinclair/typebox'
import { PostgresBroker, createPublisher } from '../../lib/postgres.js'
import type { Publication } from '../../lib/broker/types.js'
import { requireOrSkip } from '../fixtures/redis.js'
import { DATABASE_URL, childThatDies, dropSchema, pgReachable, uniqueSchema } from '../fixtures/postgres.js'
import { build, connect, until } from '../fixtures/helpers.js'

const history = { size: 100, ttl: 0 }

if (requireOrSkip(t, await pgReachable(), `PostgreSQL is not reachable at ${DATABASE_URL}`)) {
  const schema = uniqueSchema('txn')
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 6 })
  t.teardown(async () => {
    await pool.end()
    await dropSchema(schema)
  })

  async function node (t: any) {
    const broker = new PostgresBroker({ connectionString: DATABASE_URL, schema })
    const delivered: Publication[] = []
    await broker.start((p) => delivered.push(p))
    t.teardown(() => broker.close())
    return { broker, delivered }
  }

  /** A pg client from the shared pool, released at the end of the test (rolled back if still open). */
  async function client (t: any): Promise<pg.PoolClient> {
    const c = await pool.connect()
    t.teardown(async () => {
      await c.query('ROLLBACK').catch(() => {})
      c.release()
    })
    return c
  }

  let n = 0
  const topic = () => `txn/${n++}`

  t.test('commit: delivered once, after COMMIT, with the next offset', async (t) => {
    const a = await node(t)
    const b = await node(t)
    const name = topic()
    await a.broker.subscribe(name)
    await b.broker.publish(name, '{"n":0}', { history })
    const tx = await client(t)
    await tx.query('BEGIN')
    const position = await b.broker.publish(name, '{"n":1}', { history, transaction: tx })
    t.equal(position.offset, 2, 'the next offset, known before COMMIT')
    // Not yet visible anywhere: neither delivered nor in the stream another connection reads.
    await new Promise((resolve) => setTimeout(resolve, 200))
    t.same(a.delivered.map((p) => p.offset), [1], 'nothing delivered before COMMIT')
    t.equal((await a.broker.position(name)).offset, 1, 'nor is the offset visible')
    await tx.query('COMMIT')
    await until(() => a.delivered.length === 2)
    t.same(a.delivered.map((p) => [p.offset, p.data]), [[1, '{"n":0}'], [2, '{"n":1}']])
    await new Promise((resolve) => setTimeout(resolve, 200))
    t.equal(a.delivered.length, 2, 'once')
    t.same((await a.broker.recover(name, { offset: 0, epoch: position.epoch }, 10)).publications.map((p) => p.offset), [1, 2], 'in the history')
  })

  t.test('rollback: never delivered, no offset used', async (t) => {
    const a = await node(t)
    const name = topic()
    await a.broker.subscribe(name)
    const tx = await client(t)
    await tx.query('BEGIN')
    await a.broker.publish(name, '{"n":"gone"}', { history, transaction: tx })
    await tx.query('ROLLBACK')
    const next = await a.broker.publish(name, '{"n":"kept"}', { history })
    t.equal(next.offset, 1, 'the rolled back offset is given to the next publication')
    await until(() => a.delivered.length === 1)
    await new Promise((resolve) => setTimeout(resolve, 200))
    t.same(a.delivered.map((p) => [p.offset, p.data]), [[1, '{"n":"kept"}']], 'the rolled back one never arrives')
    t.same((await a.broker.history(name, 10)).publications.map((p) => p.data), ['{"n":"kept"}'])
  })

  t.test('two concurrent transactions on one topic: the second waits for the first, offsets in commit order, gapless', async (t) => {
    const a = await node(t)
    const name = topic()
    await a.broker.subscribe(name)
    const first = await client(t)
    const second = await client(t)
    await first.query('BEGIN')
    await second.query('BEGIN')
    // The second begins first but publishes second; it takes the topic's lock first, so commits first.
    const p2 = await a.broker.publish(name, '{"tx":"second"}', { history, transaction: second })
    let firstDone = false
    const p1 = a.broker.publish(name, '{"tx":"first"}', { history, transaction: first }).then((p) => { firstDone = true; return p })
    await new Promise((resolve) => setTimeout(resolve, 300))
    t.equal(firstDone, false, 'the other transaction waits on the topic while one holds it')
    await second.query('COMMIT')
    const position1 = await p1
    await first.query('COMMIT')
    t.same([p2.offset, position1.offset], [1, 2], 'offsets in commit order')
    await until(() => a.delivered.length === 2)
    t.same(a.delivered.map((p) => [p.offset, p.data]), [[1, '{"tx":"second"}'], [2, '{"tx":"first"}']])
  })

  t.test('many concurrent transactions, some rolled back: the subscriber sees exactly the committed ones, gapless', async (t) => {
    const a = await node(t)
    const b = await node(t)
    const name = topic()
    await a.broker.subscribe(name)
    const committed: string[] = []
    await Promise.all(Array.from({ length: 5 }, async (_, worker) => {
      const tx = await client(t)
      for (let i = 0; i < 8; i++) {
        await tx.query('BEGIN')
        const data = `{"w":${worker},"i":${i}}`
        await b.broker.publish(name, data, { history, transaction: tx })
        if ((worker + i) % 3 === 0) {
          await tx.query('ROLLBACK')
        } else {
          await tx.query('COMMIT')
          committed.push(data)
        }
      }
    }))
    await until(() => a.delivered.length === committed.length, 10_000)
    t.same(a.delivered.map((p) => p.offset), committed.map((_, i) => i + 1), 'offsets 1..N, no gap')
    t.same(a.delivered.map((p) => p.data).sort(), [...committed].sort(), 'exactly the committed ones')
    t.equal((await a.broker.position(name)).offset, committed.length)
  })

  t.test('bad transactions are told, and nothing is written', async (t) => {
    const a = await node(t)
    const name = topic()
    const idle = await client(t)
    await t.rejects(a.broker.publish(name, '{}', { history, transaction: idle }), { code: 'FST_REALTIME_INVALID_TRANSACTION', message: /not inside a transaction block/ })
    await t.rejects(a.broker.publish(name, '{}', { history, transaction: pool }), { code: 'FST_REALTIME_INVALID_TRANSACTION', message: /Pool/ })
    await t.rejects(a.broker.publish(name, '{}', { history, transaction: { not: 'a client' } }), { code: 'FST_REALTIME_INVALID_TRANSACTION' })
    const aborted = await client(t)
    await aborted.query('BEGIN')
    await aborted.query('SELECT 1/0').catch(() => {})
    await t.rejects(a.broker.publish(name, '{}', { history, transaction: aborted }), { code: 'FST_REALTIME_INVALID_TRANSACTION', message: /aborted/ })
    await aborted.query('ROLLBACK')
    // An older pg keeps no transaction status: the server is asked instead (a SAVEPOINT).
    const old = await client(t)
    Object.defineProperty(old, '_txStatus', { get: () => undefined, set: () => {}, configurable: true })
    await t.rejects(a.broker.publish(name, '{}', { history, transaction: old }), { code: 'FST_REALTIME_INVALID_TRANSACTION', message: /not inside/ }, 'without a status: outside a block')
    await old.query('BEGIN')
    await old.query('SELECT 1/0').catch(() => {})
    await t.rejects(a.broker.publish(name, '{}', { history, transaction: old }), { code: 'FST_REALTIME_INVALID_TRANSACTION', message: /aborted/ }, 'without a status: aborted')
    await old.query('ROLLBACK')
    await old.query('BEGIN')
    t.equal((await a.broker.publish(name, '{}', { history, transaction: old })).offset, 1, 'without a status: in a block')
    await old.query('ROLLBACK')
    t.equal((await a.broker.position(name)).offset, 0, 'no offset used')
    // Too large: refused before the statement is sent, so the transaction stays healthy.
    const small = new PostgresBroker({ connectionString: DATABASE_URL, schema, maxPublicationBytes: 1000 })
    t.teardown(() => small.close())
    const open = await client(t)
    await open.query('BEGIN')
    await t.rejects(small.publish(name, JSON.stringify('x'.repeat(1000)), { history, transaction: open }), { code: 'FST_REALTIME_PUBLICATION_TOO_LARGE' })
    t.same((await open.query('SELECT 1 AS ok')).rows, [{ ok: 1 }], 'the transaction is not aborted: the database never saw it')
    await open.query('COMMIT')
  })

  t.test('kill -9 of the publishing node right after COMMIT: the other node delivers it', async (t) => {
    const a = await node(t)
    const name = topic()
    await a.broker.subscribe(name)
    for (let i = 1; i <= 3; i++) {
      const out = await childThatDies('commit', { SCHEMA: schema, TOPIC: name, COUNT: String(i) })
      t.match(out, /^done \{"offset":\d+/, `child ${i} committed and was killed`)
    }
    await until(() => a.delivered.length === 3, 10_000)
    t.same(a.delivered.map((p) => [p.offset, p.data]), [[1, '{"n":1}'], [2, '{"n":2}'], [3, '{"n":3}']], 'each once, with its offset')
  })

  t.test('through the plugin: app.realtime.publish, topic handles and the publisher take `transaction`; the memory broker refuses it', async (t) => {
    const broker = new PostgresBroker({ connectionString: DATABASE_URL, schema })
    t.teardown(() => broker.close())
    const message = Type.Object({ text: Type.String() })
    let handle: any
    const { app, url } = await build(t, { broker }, (app) => {
      handle = app.realtime.topic('room/:name', { message, history: { size: 10, ttl: 0 } })
    })
    const ws = await connect(t, url)
    const reply = await ws.request('subscribe', { topic: 'room/a' })
    t.equal(reply.type, 'reply')
    const tx = await client(t)
    await tx.query('BEGIN')
    await tx.query('CREATE TEMP TABLE posts (text text) ON COMMIT DROP')
    await tx.query('INSERT INTO posts VALUES ($1)', ['hello'])
    const first = await app.realtime.publish('room/a', { text: 'hello' }, { transaction: tx })
    await tx.query('COMMIT')
    const got = await ws.next((f) => f.type === 'message')
    t.same([got.offset, got.data], [first.offset, { text: 'hello' }])
    await tx.query('BEGIN')
    await handle.publish({ name: 'a' }, { text: 'never' }, { transaction: tx })
    await tx.query('ROLLBACK')
    await t.rejects(app.realtime.publish('room/a', { text: 'x' }, { transaction: tx }), { code: 'FST_REALTIME_INVALID_TRANSACTION' }, 'outside BEGIN')
    const publisher = createPublisher({ broker, topics: { 'room/:name': { message, history: { size: 10, ttl: 0 } } } })
    await tx.query('BEGIN')
    const third = await publisher.topic('room/:name').publish({ name: 'a' }, { text: 'from a worker' }, { transaction: tx })
    await tx.query('COMMIT')
    const next = await ws.next((f) => f.type === 'message')
    t.same([next.offset, next.data], [third.offset, { text: 'from a worker' }], 'the rolled back one never came; the worker\'s did')
    await publisher.close()
    t.equal(broker.connected, true, 'a publisher leaves a broker it was given open')

    const memory = await build(t, {}, (app) => { app.realtime.topic('room/:name', { message }) })
    await t.rejects(memory.app.realtime.publish('room/a', { text: 'x' }, { transaction: tx }), { code: 'FST_REALTIME_NO_TRANSACTIONS', message: /memory broker/ })
  })
}
