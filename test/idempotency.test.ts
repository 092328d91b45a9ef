// runIdempotent, the server glue of idempotent routes: one run per (user, route, key),
// the same answer (with each request's own id) for every repeat, on one node and across
// two Redis nodes.
import t from 'tap'
import { MemoryBroker } from '../lib/broker/memory.js'
import { RedisBroker } from '../lib/broker/redis.js'
import type { Broker } from '../lib/broker/types.js'
import { RealtimeError } from '../lib/errors.js'
import { errorFrame, replyFrame } from '../lib/frames.js'
import { checkIdempotencyKey, runIdempotent, withId } from '../lib/idempotency.js'
import { resolveOptions } from '../lib/options.js'
import { REDIS_URL, dropKeys, reachable, requireOrSkip, uniquePrefix } from './fixtures/redis.js'

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
