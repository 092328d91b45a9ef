// runIdempotent, the server glue of idempotent routes: one run per (user, route, key),
// the same answer (with each request's own id) for every repeat, on one node and across
// two Redis nodes.
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { Type } from '@sinclair/typebox'
import { WebSocket } from 'ws'
import { createClient, defineContract, type ClientOptions } from '../../lib/client/index.js'
import type { RealtimeOptions } from '../../lib/index.js'
import { MemoryBroker } from '../../lib/broker/memory.js'
import { RedisBroker } from '../../lib/broker/redis.js'
import type { Broker } from '../../lib/broker/types.js'
import { RealtimeError } from '../../lib/protocol/errors.js'
import { errorFrame, replyFrame } from '../../lib/wire/frames.js'
import { runIdempotent } from '../../lib/messages/idempotency.js'
import { checkIdempotencyKey } from '../../lib/wire/envelope.js'
import { withId } from '../../lib/wire/frames.js'
import { resolveOptions } from '../../lib/config/options.js'
import { build, connect, until, type Frame, type TestClient } from '../fixtures/helpers.js'
import { REDIS_URL, dropKeys, reachable, requireOrSkip, sleep, startNode, uniquePrefix } from '../fixtures/redis.js'

function gate (): { open: () => void, wait: Promise<void> } {
  let open = (): void => {}
  const wait = new Promise<void>((resolve) => { open = resolve })
  return { open, wait }
}

async function duplicatesRunOnce (t: any, nodes: Broker[], key: string): Promise<void> {
  let runs = 0
  const first = gate()
  const handler = async (): Promise<string> => {
    runs++
    await first.wait
    return replyFrame(undefined, `{"n":${runs}}`)
  }
  const answers = Array.from({ length: 6 }, (_, i) => runIdempotent(
    { broker: nodes[i % nodes.length], userId: 'u1', route: 'chat.send', key, id: i, ttl: 60_000 }, handler))
  // Every repeat is waiting on the first run's claim before it answers.
  await new Promise((resolve) => setTimeout(resolve, 50))
  first.open()
  t.same(await Promise.all(answers), Array.from({ length: 6 }, (_, i) => `{"type":"reply","id":${i},"data":{"n":1}}`))
  t.equal(runs, 1, 'the handler ran once')
  const later = await runIdempotent({ broker: nodes[0], userId: 'u1', route: 'chat.send', key, id: 'x', ttl: 60_000 }, handler)
  t.equal(later, '{"type":"reply","id":"x","data":{"n":1}}', 'a later repeat gets the remembered answer')
  t.equal(runs, 1)
}

t.test('concurrent duplicates run the handler once and each gets the answer with its own id (memory)', async (t) => {
  const broker = new MemoryBroker()
  t.teardown(() => broker.close())
  await duplicatesRunOnce(t, [broker], 'k1')
})

t.test('an error answer is remembered; a handler that throws is not, and a retry runs it again', async (t) => {
  const broker = new MemoryBroker()
  t.teardown(() => broker.close())
  const options = { broker, userId: 'u1', route: 'r', id: 1, ttl: 60_000 }
  let runs = 0
  const refused = errorFrame(undefined, new RealtimeError('ROOM_FULL', 'full'))
  t.equal(await runIdempotent({ ...options, key: 'e' }, async () => { runs++; return refused }), '{"type":"error","id":1,"error":{"code":"ROOM_FULL","message":"full"}}')
  t.equal(await runIdempotent({ ...options, key: 'e', id: 2 }, async () => { runs++; return replyFrame(undefined, '1') }), '{"type":"error","id":2,"error":{"code":"ROOM_FULL","message":"full"}}')
  t.equal(runs, 1)
  await t.rejects(runIdempotent({ ...options, key: 't' }, async () => { throw new Error('boom') }), { message: 'boom' })
  t.equal(await runIdempotent({ ...options, key: 't' }, async () => replyFrame(undefined, '2')), '{"type":"reply","id":1,"data":2}', 'nothing was remembered')
  t.equal(await runIdempotent({ ...options, key: 'n', id: undefined }, async () => replyFrame(undefined, undefined)), '{"type":"reply"}', 'no id, none added')
})

t.test('a repeat waits at most pendingTimeout for a run still going, then gets UNAVAILABLE (temporary)', async (t) => {
  const broker = new MemoryBroker()
  t.teardown(() => broker.close())
  const slow = gate()
  const options = { broker, userId: 'u1', route: 'r', key: 'slow', id: 1, ttl: 60_000, pendingTimeout: 150 }
  const first = runIdempotent(options, async () => { await slow.wait; return replyFrame(undefined, '1') })
  const started = Date.now()
  await t.rejects(runIdempotent({ ...options, id: 2 }, async () => replyFrame(undefined, '2')), { code: 'UNAVAILABLE', temporary: true })
  t.ok(Date.now() - started >= 140, 'it waited')
  t.ok(Date.now() - started < 1000, 'within its bound')
  slow.open()
  t.equal(await first, '{"type":"reply","id":1,"data":1}', 'the first run, renewed while running, was not taken over')
  t.equal(await runIdempotent({ ...options, id: 3 }, async () => replyFrame(undefined, '3')), '{"type":"reply","id":3,"data":1}')
})

t.test('a broker without idempotency records fails naming the route; keys are checked', async (t) => {
  const bare = { ...new MemoryBroker() } as unknown as Broker
  await t.rejects(runIdempotent({ broker: bare, userId: undefined, route: 'chat.send', key: 'k', id: 1, ttl: 1 }, async () => '{"type":"reply"}'),
    { code: 'FST_REALTIME_NO_IDEMPOTENCY', message: /chat\.send/ })
  t.equal(checkIdempotencyKey(undefined), undefined)
  t.equal(checkIdempotencyKey('a'.repeat(128)), 'a'.repeat(128))
  for (const [label, bad] of [['empty', ''], ['129 characters', 'a'.repeat(129)], ['a number', 7], ['null', null], ['an object', {}]] as const) {
    t.throws(() => checkIdempotencyKey(bad), { code: 'BAD_REQUEST' }, label)
  }
  t.throws(() => withId('{"type":"message"}', 1), { code: 'FST_REALTIME_INVALID_DATA' })
})

t.test('the idempotency option: 5 minutes by default, checked at register', async (t) => {
  t.same(resolveOptions({}).idempotency, { ttl: 300_000, pendingTimeout: 30_000 })
  t.same(resolveOptions({ idempotency: { ttl: 1000 } }).idempotency, { ttl: 1000, pendingTimeout: 30_000 })
  t.throws(() => resolveOptions({ idempotency: { ttl: 0 } }), { code: 'FST_REALTIME_INVALID_OPTION', message: /idempotency\.ttl/ })
})

t.test('two Redis nodes: duplicates landing on either node run the handler once', async (t) => {
  if (!requireOrSkip(t, await reachable(), `Redis is not reachable at ${REDIS_URL}`)) return
  const prefix = uniquePrefix('idem')
  const a = new RedisBroker({ redis: REDIS_URL, prefix })
  const b = new RedisBroker({ redis: REDIS_URL, prefix })
  await a.start(() => {})
  await b.start(() => {})
  t.teardown(async () => {
    await a.close()
    await b.close()
    await dropKeys(REDIS_URL, prefix)
  })
  await duplicatesRunOnce(t, [a, b], 'k1')
})

// ------------------------------------------------------------------ through the plugin

const contract = defineContract({
  routes: {
    post: {
      data: Type.Object({ text: Type.String() }),
      reply: Type.Object({ text: Type.String(), user: Type.String(), node: Type.String(), run: Type.Integer() }),
      idempotent: true
    }
  }
})

const users: Record<string, string> = { 'token-alice': 'alice', 'token-bob': 'bob' }
const authenticate: RealtimeOptions['authenticate'] = (token) => users[token] === undefined ? null : { user: { id: users[token] } }

interface Run { node: string, user: string }

/** The idempotent route `post` on a node: each run is counted, then held until `wait()` resolves. */
function postRoute (node: string, runs: Run[], wait: () => Promise<void>): (app: FastifyInstance) => void {
  return (app) => {
    app.realtime.route({
      type: 'post',
      schema: contract.routes.post,
      handler: async (data, context) => {
        const user = (context.user as { id: string }).id
        runs.push({ node, user })
        const run = runs.length
        await wait()
        return { text: data.text, user, node, run }
      }
    })
  }
}

/** A raw protocol client signed in with `token` (auth first, then the welcome). */
async function signIn (t: Test, url: string, token: string): Promise<TestClient> {
  const client = await connect(t, url, { welcome: false })
  const answer = await client.request('auth', { token })
  if (answer.type !== 'reply') throw new Error(`auth refused: ${JSON.stringify(answer)}`)
  await client.nextOfType('welcome')
  return client
}

/** Sends `post` with an explicit envelope `key`; resolves with its answer. */
function post (client: TestClient, id: number | string, key: string, text: string): Promise<Frame> {
  client.send({ type: 'post', id, key, data: { text } })
  return client.next((f) => (f.type === 'reply' || f.type === 'error') && f.id === id)
}

type Start = (t: Test, setup: (app: FastifyInstance) => void, options: RealtimeOptions) => Promise<{ url: string }>

const onMemory: Start = (t, setup, options) => build(t, options, setup)

/** Starts a node on the Redis broker (with a prefix of the test's own), or skips the test without Redis. */
async function onRedis (t: Test): Promise<Start | null> {
  if (!requireOrSkip(t, await reachable(), `Redis is not reachable at ${REDIS_URL}`)) return null
  const prefix = uniquePrefix('idem-plugin')
  // Registered before the nodes, so it runs after they are closed.
  t.teardown(() => dropKeys(REDIS_URL, prefix))
  return (t, setup, options) => startNode(t, { redis: REDIS_URL, prefix }, setup, options)
}

async function perUser (t: Test, start: Start): Promise<void> {
  const runs: Run[] = []
  const held = gate()
  const { url } = await start(t, postRoute('n', runs, () => held.wait), { authenticate })
  const alice = await signIn(t, url, 'token-alice')
  const bob = await signIn(t, url, 'token-bob')
  const fromAlice = post(alice, 1, 'same-key', 'from alice')
  const fromBob = post(bob, 1, 'same-key', 'from bob')
  // Bob's request does not wait behind Alice's run of the key: it is not the same scope.
  await until(() => runs.length === 2)
  held.open()
  const [a, b] = await Promise.all([fromAlice, fromBob])
  t.equal(a.type, 'reply')
  t.equal(b.type, 'reply')
  t.same(runs.map((r) => r.user).sort(), ['alice', 'bob'], 'two runs, one per user')
  t.match(a.data, { text: 'from alice', user: 'alice' })
  t.match(b.data, { text: 'from bob', user: 'bob' })
  t.not(a.data.run, b.data.run, 'two different answers')
  // Each user's key is remembered, for that user.
  t.same((await post(alice, 2, 'same-key', 'again')).data, a.data, 'alice\'s repeat gets her answer')
  t.same((await post(bob, 2, 'same-key', 'again')).data, b.data, 'bob\'s repeat gets his')
  t.equal(runs.length, 2, 'and runs nothing')
}

async function expires (t: Test, start: Start): Promise<void> {
  const runs: Run[] = []
  const ttl = 1000
  const { url } = await start(t, postRoute('n', runs, async () => {}), { authenticate, idempotency: { ttl } })
  const alice = await signIn(t, url, 'token-alice')
  const first = await post(alice, 1, 'k', 'one')
  // The answer was stored before it was sent: it expires at most ttl ms from now.
  const answeredAt = Date.now()
  t.match(first.data, { text: 'one', run: 1 })
  const within = await post(alice, 2, 'k', 'two')
  t.ok(Date.now() - answeredAt < ttl, 'the repeat came within the ttl')
  t.same(within.data, first.data, 'within the ttl: the remembered answer')
  t.equal(runs.length, 1)
  await sleep(answeredAt + ttl + 150 - Date.now())
  const after = await post(alice, 3, 'k', 'three')
  t.match(after.data, { text: 'three', run: 2 }, 'after the ttl: the handler ran again, with this request\'s data')
  t.equal(runs.length, 2)
  t.same((await post(alice, 4, 'k', 'four')).data, after.data, 'and that answer is remembered in turn')
}

t.test('through the plugin: one key from two users is two runs with two answers (memory)', async (t) => {
  await perUser(t, onMemory)
})

t.test('through the plugin: one key from two users is two runs with two answers (Redis)', async (t) => {
  const start = await onRedis(t)
  if (start !== null) await perUser(t, start)
})

t.test('through the plugin: a repeat after idempotency.ttl runs the handler again (memory)', async (t) => {
  await expires(t, onMemory)
})

t.test('through the plugin: a repeat after idempotency.ttl runs the handler again (Redis)', async (t) => {
  const start = await onRedis(t)
  if (start !== null) await expires(t, start)
})

t.test('two Redis nodes through the plugin: a request cut off on node A and resent with its key on node B runs once; B answers with A\'s reply', async (t) => {
  const start = await onRedis(t)
  if (start === null) return
  const runs: Run[] = []
  const held = gate()
  const a = await start(t, postRoute('a', runs, () => held.wait), { authenticate }) as Awaited<ReturnType<typeof startNode>>
  const b = await start(t, postRoute('b', runs, () => held.wait), { authenticate }) as Awaited<ReturnType<typeof startNode>>
  // What node B's idempotency store answers each time it looks at the key.
  const claims: string[] = []
  const claim = b.broker.claimIdempotent.bind(b.broker)
  b.broker.claimIdempotent = async (...args) => {
    const result = await claim(...args)
    claims.push(result.status)
    return result
  }

  // The typed client; its sockets go where a load balancer sends them: node A, then node B.
  let target = a.url
  const sockets: Array<{ url: string, ws: WebSocket, sent: Frame[], received: Frame[] }> = []
  class Balanced extends WebSocket {
    constructor (_url: string, protocols?: string | string[]) {
      const url = target
      super(url, protocols)
      const record = { url, ws: this, sent: [] as Frame[], received: [] as Frame[] }
      sockets.push(record)
      this.on('message', (raw) => { record.received.push(JSON.parse(String(raw)) as Frame) })
    }

    override send (data: any): void {
      sockets.find((s) => s.ws === this)?.sent.push(JSON.parse(String(data)) as Frame)
      super.send(data)
    }
  }
  const c = createClient({
    url: a.url,
    WebSocket: Balanced as unknown as ClientOptions['WebSocket'],
    contract,
    getToken: () => 'token-alice',
    backoff: { initialDelay: 20, maxDelay: 50 }
  })
  t.teardown(() => c.close())
  await until(() => c.state === 'open')
  const answer = c.request('post', { text: 'hello' })
  await until(() => runs.length === 1)
  t.same(runs, [{ node: 'a', user: 'alice' }], 'node A runs it, and holds it')

  // The connection drops (the client's socket is cut, as a network would) with the run under way.
  target = b.url
  sockets[0].ws.terminate()
  // Node B gets the request again and finds node A's run holding the key: it waits for it.
  await until(() => claims.includes('pending'))
  t.equal(runs.length, 1, 'node B does not run the handler while node A\'s run holds the key')
  held.open()
  const reply = await answer
  t.same(reply, { text: 'hello', user: 'alice', node: 'a', run: 1 }, 'the client gets the answer of node A\'s run')
  t.same(runs, [{ node: 'a', user: 'alice' }], 'the handler ran once')
  t.equal(claims.at(-1), 'done', 'node B took the answer node A stored')

  t.equal(sockets.length, 2)
  const [onA, onB] = sockets
  t.equal(onB.url, b.url, 'the retry went to node B')
  const sentA = onA.sent.filter((f) => f.type === 'post')
  const sentB = onB.sent.filter((f) => f.type === 'post')
  t.equal(sentA.length, 1)
  t.equal(sentB.length, 1)
  t.type(sentA[0].key, 'string', 'the client sent a key')
  t.equal(sentB[0].key, sentA[0].key, 'and the same key again')
  const answerOnB = onB.received.find((f) => (f.type === 'reply' || f.type === 'error') && f.id === sentB[0].id)
  t.equal(answerOnB?.type, 'reply', 'node B answered the retry')
  t.same(answerOnB?.data, reply, 'with that reply')

  // Either node answers the key with that same reply from now on, and runs nothing.
  const again = await signIn(t, a.url, 'token-alice')
  t.same((await post(again, 'again', sentA[0].key as string, 'other text')).data, reply, 'node A gives the same data for the key')
  t.equal(runs.length, 1)
})

// ------------------------------------------------------------------ one answer, through answer.ts (issue 21)

/** How the client's connection closed, or 'still open' after a generous wait. */
async function closedWithin (client: TestClient, ms = 3000): Promise<{ code: number, reason: string } | 'still open'> {
  return await Promise.race([client.closed, sleep(ms).then(() => 'still open' as const)])
}

t.test('a remembered error keeps its close code: the first answer and a repeat close the socket as on a plain route', async (t) => {
  let runs = 0
  const { url } = await build(t, { authenticate }, (app) => {
    app.realtime.route({
      type: 'room.leave',
      idempotent: true,
      handler: () => {
        runs++
        throw new RealtimeError('FORBIDDEN', 'bye', { closeCode: 4504 })
      }
    })
  })
  const first = await signIn(t, url, 'token-alice')
  first.send({ type: 'room.leave', id: 1, key: 'leave-1' })
  t.match(await first.next((f) => f.id === 1), { type: 'error', error: { code: 'FORBIDDEN', message: 'bye' } })
  t.same(await closedWithin(first), { code: 4504, reason: 'bye' }, 'the first answer closes with the error\'s code')
  const repeat = await signIn(t, url, 'token-alice')
  repeat.send({ type: 'room.leave', id: 2, key: 'leave-1' })
  t.match(await repeat.next((f) => f.id === 2), { type: 'error', error: { code: 'FORBIDDEN', message: 'bye' } })
  t.same(await closedWithin(repeat), { code: 4504, reason: 'bye' }, 'and so does the remembered answer')
  t.equal(runs, 1, 'the handler ran once')
})

/**
 * A handler that outlives closeTimeout during app.close(): it stores its post, then its
 * publish fails because the plugin has closed. That failure is not the handler's outcome:
 * the key is released, and the resend after the restart (a new app on the same broker)
 * runs the handler again instead of getting INTERNAL for the key's whole ttl.
 */
async function shutdownFailureNotRemembered (t: Test, broker: Broker, restarted: Broker): Promise<void> {
  const stored: string[] = []
  const entered = gate()
  const failed = gate()
  let release = gate()
  const setup = (app: FastifyInstance): void => {
    app.realtime.topic('feed', { message: Type.Object({ text: Type.String() }) })
    app.realtime.route({
      type: 'post',
      idempotent: true,
      schema: { data: Type.Object({ text: Type.String() }), reply: Type.Object({ offset: Type.Integer() }) },
      handler: async (data) => {
        entered.open()
        await release.wait
        stored.push(data.text)
        try {
          return { offset: (await app.realtime.publish('feed', data)).offset }
        } catch (err) {
          failed.open()
          throw err
        }
      }
    })
  }
  const first = await build(t, { authenticate, broker, closeTimeout: 100, closeGrace: 200 }, setup)
  const alice = await signIn(t, first.url, 'token-alice')
  alice.send({ type: 'post', id: 1, key: 'post-1', data: { text: 'hello' } })
  await entered.wait
  await first.app.close()
  t.equal((await alice.closed).code, 1012)
  t.notOk(alice.frames.some((f) => f.id === 1), 'a keyed request still running is left for its resend, not answered')
  // The plugin is closed; the handler goes on, stores, and its publish fails.
  release.open()
  await failed.wait
  t.same(stored, ['hello'])

  release = gate()
  release.open()
  const second = await build(t, { authenticate, broker: restarted }, setup)
  const again = await signIn(t, second.url, 'token-alice')
  const answer = await post(again, 2, 'post-1', 'hello')
  t.equal(answer.type, 'reply', `the resend with the same key runs again (got ${JSON.stringify(answer)})`)
  t.same(answer.data, { offset: 1 })
  t.same(stored, ['hello', 'hello'], 'the handler ran again: the failure was not its outcome')
  t.same((await post(again, 3, 'post-1', 'hello')).data, { offset: 1 }, 'and that answer is remembered')
  t.equal(stored.length, 2)
}

t.test('a failure of the plugin\'s own making is not remembered: a resend after the restart runs again (memory)', async (t) => {
  const broker = new MemoryBroker()
  t.teardown(() => broker.close())
  await shutdownFailureNotRemembered(t, broker, broker)
})

t.test('a failure of the plugin\'s own making is not remembered: a resend after the restart runs again (Redis)', async (t) => {
  if (!requireOrSkip(t, await reachable(), `Redis is not reachable at ${REDIS_URL}`)) return
  const prefix = uniquePrefix('idem-restart')
  const broker = new RedisBroker({ redis: REDIS_URL, prefix })
  const restarted = new RedisBroker({ redis: REDIS_URL, prefix })
  t.teardown(async () => {
    await broker.close()
    await restarted.close()
    await dropKeys(REDIS_URL, prefix)
  })
  await shutdownFailureNotRemembered(t, broker, restarted)
})
