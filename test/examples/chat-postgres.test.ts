// The chat example on PostgreSQL (examples/chat with DATABASE_URL): two nodes on one
// database share rooms, presence, history and recovery; each post is a row of `posts`
// written in the transaction that publishes it, so a post whose row cannot be written
// is never heard of and takes no offset.
import t, { type Test } from 'tap'
import pg from 'pg'
import type { FastifyInstance } from 'fastify'
import { buildChat } from '../../examples/chat/app.js'
import { PostgresBroker } from '../../lib/postgres.js'
import { connect, type TestClient } from '../fixtures/helpers.js'
import { requireOrSkip } from '../fixtures/redis.js'
import { DATABASE_URL, dropSchema, pgReachable, uniqueSchema } from '../fixtures/postgres.js'

if (requireOrSkip(t, await pgReachable(), `PostgreSQL is not reachable at ${DATABASE_URL}`)) {
  const schema = uniqueSchema('chat')
  // The example's `posts` lands in the schema of the connection's search_path: the test's own.
  const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 2 })
  await admin.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`)
  t.teardown(async () => {
    await admin.end()
    await dropSchema(schema)
  })

  async function chatNode (t: Test): Promise<{ app: FastifyInstance, url: string, pool: pg.Pool }> {
    const pool = new pg.Pool({ connectionString: DATABASE_URL, options: `-c search_path=${schema}`, max: 5 })
    const broker = new PostgresBroker({ pool, schema })
    const app = await buildChat({ broker, database: pool })
    await app.listen({ port: 0, host: '127.0.0.1' })
    t.teardown(async () => {
      await app.close()
      await broker.close()
      await pool.end()
    })
    const { port } = app.server.address() as { port: number }
    return { app, url: `ws://127.0.0.1:${port}/ws`, pool }
  }

  async function signIn (t: Test, url: string, name: string): Promise<TestClient> {
    const client = await connect(t, url, { welcome: false })
    await client.request('auth', { token: name })
    await client.nextOfType('welcome')
    return client
  }

  const isPost = (f: { type: string, data?: { kind?: string } }): boolean => f.type === 'message' && f.data?.kind === 'chat'

  t.test('two nodes: a post on B reaches A, stored in posts with its offset; presence and history across nodes; a reconnect to B recovers', async (t) => {
    const a = await chatNode(t)
    const b = await chatNode(t)
    const ann = await signIn(t, a.url, 'ann')
    const bob = await signIn(t, b.url, 'bob')
    t.equal((await ann.request('subscribe', { topic: 'room/general' })).type, 'reply')
    t.equal((await bob.request('subscribe', { topic: 'room/general' })).type, 'reply')
    const sent = await bob.request('chat.send', { room: 'general', text: 'hello from B' })
    t.equal(sent.type, 'reply')
    const got = await ann.next(isPost)
    t.same([got.data.text, got.data.id], ['hello from B', sent.data.id], 'A hears B\'s post')
    const { rows } = await admin.query(`SELECT id, room, user_id, text, "offset" FROM "${schema}".posts`)
    t.same(rows, [{ id: sent.data.id, room: 'general', user_id: 'bob', text: 'hello from B', offset: String(got.offset) }], 'the post is a row, with the offset it was published at')
    const members = (await ann.request('presence', { topic: 'room/general' })).data.members
    t.same(members.map((m: any) => m.user.name).sort(), ['ann', 'bob'], 'presence across nodes')
    const history = await ann.request('chat.history', { room: 'general' })
    t.same(history.data.posts.map((p: any) => p.text), ['hello from B'], 'history on A of a post made on B')

    // ann leaves; bob posts three more; ann comes back on B with since and recovers them.
    const position = { offset: got.offset as number, epoch: got.epoch as string }
    ann.close()
    await ann.closed
    for (const text of ['one', 'two', 'three']) t.equal((await bob.request('chat.send', { room: 'general', text })).type, 'reply')
    const again = await signIn(t, b.url, 'ann')
    const reply = await again.request('subscribe', { topic: 'room/general', since: position })
    t.equal(reply.data.recovered, true, 'recovered')
    // Every room message after the position (the "ann left" notice among them), until the three posts.
    const recovered = []
    while (recovered.filter(isPost).length < 3) recovered.push(await again.next((f) => f.type === 'message' && f.data?.kind !== 'typing'))
    t.same(recovered.map((f) => f.offset), recovered.map((_, i) => position.offset + 1 + i), 'gapless, in order')
    t.same(recovered.filter(isPost).map((f) => f.data.text), ['one', 'two', 'three'])
    again.close()
    bob.close()
    await Promise.all([again.closed, bob.closed])
  })

  t.test('a post whose row cannot be written is not published and takes no offset', async (t) => {
    const a = await chatNode(t)
    const ann = await signIn(t, a.url, 'ann')
    await ann.request('subscribe', { topic: 'room/broken' })
    const first = await ann.request('chat.send', { room: 'broken', text: 'stored' })
    t.equal(first.type, 'reply')
    const stored = await ann.next(isPost)
    // A constraint the next post breaks: its INSERT fails after its publish, in the same transaction.
    await admin.query(`ALTER TABLE "${schema}".posts ADD CONSTRAINT no_lost CHECK (text <> 'lost')`)
    t.teardown(() => admin.query(`ALTER TABLE "${schema}".posts DROP CONSTRAINT IF EXISTS no_lost`))
    const failed = await ann.request('chat.send', { room: 'broken', text: 'lost' })
    t.equal(failed.type, 'error', 'the sender is told')
    const next = await ann.request('chat.send', { room: 'broken', text: 'after' })
    t.equal(next.type, 'reply')
    const after = await ann.next(isPost)
    t.same([after.offset, after.data.text], [(stored.offset as number) + 1, 'after'], 'the failed post was never delivered and its offset went to the next one')
    const { rows } = await admin.query(`SELECT text FROM "${schema}".posts WHERE room = 'broken' ORDER BY "offset"`)
    t.same(rows.map((r) => r.text), ['stored', 'after'])
    ann.close()
    await ann.closed
  })
}
