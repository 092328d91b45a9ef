// Filtered subscriptions: the grammar (equals, in, and, or) checked and bounded, each
// distinct filter judged once per publication, a subscriber sent exactly what matches
// in order while the rest still moves its position (no false gap, gapless recovery),
// the caps crossed, tags computed or given at publish, through Redis too.
import t from 'tap'
import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { compileFilter, FilterRegistry, type FilterLimits } from '../../lib/pubsub/filters.js'
import type { Delivery } from '../../lib/connection/subscriptions.js'
import { build, connect, until, type TestClient } from '../fixtures/helpers.js'
import { REDIS_URL, dropKeys, reachable, requireOrSkip, startNode, uniquePrefix } from '../fixtures/redis.js'

const limits: FilterLimits = { maxSize: 64, maxDepth: 4, maxPerTopic: 100 }
const tags = { types: Object.assign(Object.create(null), { queue: 'string', prio: 'number' }), check: () => null, from: undefined }
const Ticket = Type.Object({ n: Type.Integer(), queue: Type.String(), prio: Type.Integer() })

function declare (app: FastifyInstance): void {
  app.realtime.topic('tickets', {
    message: Ticket,
    tags: { schema: Type.Object({ queue: Type.String(), prio: Type.Integer() }), from: (m) => ({ queue: m.queue, prio: m.prio }) }
  })
  app.realtime.topic('given', { message: Type.Object({ n: Type.Integer() }), tags: { schema: Type.Object({ kind: Type.String() }) } })
  app.realtime.topic('untagged', { message: Type.Object({ n: Type.Integer() }) })
}

const ns = (c: TestClient): number[] => c.frames.filter((f) => f.type === 'message').map((f) => (f.data as { n: number }).n)

/** Ticket n: queues a, b, c in turn; prio 1 every fourth. */
const ticket = (n: number): { n: number, queue: string, prio: number } => ({ n, queue: 'abc'[n % 3], prio: n % 4 === 0 ? 1 : 2 })

t.test('the grammar: checked, bounded, canonical', async (t) => {
  const ok = compileFilter({ or: [{ tag: 'queue', in: ['b', 'a'] }, { and: [{ tag: 'prio', eq: 1 }] }] }, tags, limits)
  t.equal(ok.key, compileFilter({ or: [{ tag: 'queue', in: ['a', 'b', 'a'] }, { and: [{ tag: 'prio', eq: 1 }] }] }, tags, limits).key, 'the order and repeats of `in` values do not make another filter')
  t.ok(ok.test({ queue: 'a', prio: 2 }))
  t.ok(ok.test({ queue: 'c', prio: 1 }))
  t.notOk(ok.test({ queue: 'c', prio: 2 }))
  const refused = (raw: unknown, code: string, pattern: RegExp | object, l = limits): void => {
    t.throws(() => compileFilter(raw, tags, l), { code, ...(pattern instanceof RegExp ? { message: pattern } : pattern) }, JSON.stringify(raw))
  }
  refused(null, 'VALIDATION_FAILED', { details: [{ path: '/filter', message: 'must be an object' }] })
  refused({ tag: 'queue' }, 'VALIDATION_FAILED', { details: [{ path: '/filter' }] })
  refused({ tag: 'queue', eq: 'a', in: ['a'] }, 'VALIDATION_FAILED', { details: [{ path: '/filter' }] })
  refused({ and: [] }, 'VALIDATION_FAILED', { details: [{ path: '/filter/and' }] })
  refused({ or: [{ tag: 'nope', eq: 1 }] }, 'VALIDATION_FAILED', { details: [{ path: '/filter/or/0/tag', message: 'the topic declares no tag "nope"' }] })
  refused({ tag: 'prio', eq: '1' }, 'VALIDATION_FAILED', { details: [{ path: '/filter/eq', message: 'must be a number' }] })
  refused({ tag: 'queue', in: ['a', 2] }, 'VALIDATION_FAILED', { details: [{ path: '/filter/in/1' }] })
  refused({ tag: '__proto__', eq: 1 }, 'VALIDATION_FAILED', { details: [{ path: '/filter/tag' }] })
  refused({ tag: 'queue', in: Array.from({ length: 64 }, (_, i) => `q${i}`) }, 'LIMIT_EXCEEDED', /at most 64 nodes and values/)
  let deep: unknown = { tag: 'prio', eq: 1 }
  for (let i = 0; i < 4; i++) deep = { and: [deep] }
  refused(deep, 'LIMIT_EXCEEDED', /nests at most 4 levels/)
  t.throws(() => compileFilter({ tag: 'queue', eq: 'a' }, null, limits), { code: 'VALIDATION_FAILED', details: [{ message: 'this topic declares no tags to filter on' }] })
})

t.test('a distinct filter is judged once per publication, however many share it; the cap counts distinct ones', async (t) => {
  const registry = new FilterRegistry(2)
  let judged = 0
  const compiled = compileFilter({ tag: 'queue', eq: 'a' }, tags, limits)
  const counted = { key: compiled.key, test: (x: Record<string, string | number>) => { judged++; return compiled.test(x) } }
  const shared = [registry.acquire('t', counted), registry.acquire('t', counted), registry.acquire('t', compileFilter({ tag: 'queue', eq: 'a' }, tags, limits))]
  t.equal(registry.count('t'), 1)
  const delivery = { offset: 1, epoch: 'e', tags: { queue: 'a', prio: 1 } } as unknown as Delivery
  t.same(shared.map((f) => f.matches(delivery)), [true, true, true])
  t.equal(judged, 1, 'one judgement for three subscribers')
  registry.acquire('t', compileFilter({ tag: 'queue', eq: 'b' }, tags, limits))
  t.throws(() => registry.acquire('t', compileFilter({ tag: 'queue', eq: 'c' }, tags, limits)), { code: 'LIMIT_EXCEEDED', message: 'At most 2 distinct filters per topic' })
  t.equal(registry.acquire('u', compileFilter({ tag: 'queue', eq: 'c' }, tags, limits)) !== undefined, true, 'per topic')
  for (const f of shared) registry.release('t', f)
  t.equal(registry.count('t'), 1, 'released with its last subscriber')
  t.ok(registry.acquire('t', compileFilter({ tag: 'queue', eq: 'c' }, tags, limits)))
})

t.test('subscribers get exactly what matches, in order; the rest moves their position; recovery is gapless', async (t) => {
  const { app, url } = await build(t, {}, declare)
  const a = await connect(t, url)
  const b = await connect(t, url)
  const all = await connect(t, url)
  t.equal((await a.request('subscribe', { topic: 'tickets', filter: { tag: 'queue', eq: 'a' } })).type, 'reply')
  t.equal((await b.request('subscribe', { topic: 'tickets', filter: { or: [{ tag: 'queue', in: ['b'] }, { tag: 'prio', eq: 1 }] } })).type, 'reply')
  t.equal((await all.request('subscribe', { topic: 'tickets' })).type, 'reply')
  for (let n = 1; n <= 12; n++) await app.realtime.publish('tickets', ticket(n))
  await until(() => ns(all).length === 12)
  const matching = (f: (x: ReturnType<typeof ticket>) => boolean): number[] => Array.from({ length: 12 }, (_, i) => ticket(i + 1)).filter(f).map((x) => x.n)
  await until(() => ns(a).length === matching((x) => x.queue === 'a').length)
  await until(() => ns(b).length === matching((x) => x.queue === 'b' || x.prio === 1).length)
  t.same(ns(a), matching((x) => x.queue === 'a'))
  t.same(ns(b), matching((x) => x.queue === 'b' || x.prio === 1))
  t.same(a.frames.filter((f) => f.type === 'unsubscribed'), [], 'no gap told for what the filter left out')
  const lastSeen = a.frames.filter((f) => f.type === 'message').at(-1) as { offset: number, epoch: string }

  // Away, then back with `since`: what matches of what it missed, in order, and nothing else.
  a.close()
  await a.closed
  for (let n = 13; n <= 20; n++) await app.realtime.publish('tickets', ticket(n))
  const back = await connect(t, url)
  const reply = await back.request('subscribe', { topic: 'tickets', since: { offset: lastSeen.offset, epoch: lastSeen.epoch }, filter: { tag: 'queue', eq: 'a' } })
  t.match(reply.data, { offset: 20, recovered: true })
  const expected = [13, 14, 15, 16, 17, 18, 19, 20].filter((n) => ticket(n).queue === 'a')
  await until(() => ns(back).length === expected.length)
  for (const n of [21, 22, 23]) await app.realtime.publish('tickets', ticket(n))
  await until(() => ns(back).length === expected.length + 1)
  t.same(ns(back), [...expected, 21], 'then live, still filtered')
  t.same(back.frames.filter((f) => f.type === 'unsubscribed'), [])
})

t.test('caps: distinct filters per topic, a filter\'s size and depth, as options', async (t) => {
  const { url } = await build(t, { filters: { maxPerTopic: 2, maxSize: 3, maxDepth: 2 } }, declare)
  const c = await connect(t, url)
  const sub = (topic: string, filter: unknown) => c.request('subscribe', { topic, filter }).then((f) => f.type === 'reply' ? 'ok' : f.error?.code)
  const d = await connect(t, url)
  const e = await connect(t, url)
  t.equal(await sub('tickets', { tag: 'queue', eq: 'a' }), 'ok')
  t.equal(await d.request('subscribe', { topic: 'tickets', filter: { tag: 'queue', eq: 'b' } }).then((f) => f.type), 'reply')
  const third = await e.request('subscribe', { topic: 'tickets', filter: { tag: 'queue', eq: 'c' } })
  t.match(third, { error: { code: 'LIMIT_EXCEEDED', message: 'At most 2 distinct filters per topic' } })
  t.equal((await e.request('subscribe', { topic: 'tickets', filter: { tag: 'queue', eq: 'a' } })).type, 'reply', 'a filter in use is shared, not counted again')
  await d.request('unsubscribe', { topic: 'tickets' })
  t.equal((await d.request('subscribe', { topic: 'tickets', filter: { tag: 'queue', eq: 'c' } })).type, 'reply', 'freed by the unsubscribe')
  t.match(await sub('given', { tag: 'kind', in: ['a', 'b', 'c'] }), 'LIMIT_EXCEEDED')
  t.match(await sub('given', { and: [{ and: [{ tag: 'kind', eq: 'a' }] }] }), 'LIMIT_EXCEEDED')
  t.match(await sub('untagged', { tag: 'kind', eq: 'a' }), 'VALIDATION_FAILED')
  t.match(await sub('given', { tag: 'kind', eq: 'a' }), 'ok')
})

t.test('the filters options are checked at register', async (t) => {
  for (const [filters, name] of [[{ maxSize: 0 }, 'filters.maxSize'], [{ maxDepth: 33 }, 'filters.maxDepth'], [{ maxPerTopic: 1.5 }, 'filters.maxPerTopic'], [{ maxPer: 1 }, 'filters.maxPer']] as const) {
    await t.rejects(build(t, { filters } as never), { code: 'FST_REALTIME_INVALID_OPTION', message: new RegExp(name.replace('.', '\\.')) }, name)
  }
  const { app } = await build(t)
  t.same(app.realtime.options.filters, { maxSize: 64, maxDepth: 4, maxPerTopic: 100 })
})

t.test('tags given at publish; refused when missing, misshaped or on a topic without tags; never sent', async (t) => {
  const { app, url } = await build(t, {}, declare)
  await t.rejects(build(t, {}, (app) => { app.realtime.topic('bad', { message: Ticket, tags: { schema: Type.Object({ deep: Type.Object({}) }) } }) }), { code: 'FST_REALTIME_SCHEMA', message: /tag "deep" must be a string, number or integer/ })
  const c = await connect(t, url)
  await c.request('subscribe', { topic: 'given', filter: { tag: 'kind', eq: 'x' } })
  await t.rejects(app.realtime.publish('given', { n: 1 }), { code: 'FST_REALTIME_INVALID_DATA', message: /give them at publish/ })
  await t.rejects(app.realtime.publish('given', { n: 1 }, { tags: { kind: 1 } as never }), { code: 'FST_REALTIME_INVALID_DATA' })
  await t.rejects(app.realtime.publish('untagged', { n: 1 }, { tags: { kind: 'x' } }), { code: 'FST_REALTIME_INVALID_DATA', message: /declares none/ })
  await app.realtime.publish('given', { n: 1 }, { tags: { kind: 'y' } })
  await app.realtime.publish('given', { n: 2 }, { tags: { kind: 'x' } })
  const message = await c.nextOfType('message')
  t.same(message, { type: 'message', topic: 'given', offset: 2, epoch: message.epoch, data: { n: 2 } }, 'the frame carries no tags')
  const history = await app.realtime.history('given')
  t.same(history.publications.map((p) => p.data), [{ n: 1 }, { n: 2 }], 'history gives the data alone')
})

t.test('through Redis: tags travel with the publication, live and in history', async (t) => {
  if (!requireOrSkip(t, await reachable(), `no Redis at ${REDIS_URL}`)) return
  const prefix = uniquePrefix('filters')
  t.teardown(() => dropKeys(REDIS_URL, prefix))
  const a = await startNode(t, { redis: REDIS_URL, prefix }, declare)
  const b = await startNode(t, { redis: REDIS_URL, prefix }, declare)
  const c = await connect(t, a.url)
  await c.request('subscribe', { topic: 'tickets', filter: { tag: 'queue', eq: 'b' } })
  for (let n = 1; n <= 6; n++) await b.app.realtime.publish('tickets', ticket(n))
  await until(() => ns(c).length === 2, 10_000)
  t.same(ns(c), [1, 4])
  const r = await connect(t, b.url)
  await r.request('subscribe', { topic: 'tickets', since: { offset: 0, epoch: c.frames[0].epoch }, filter: { tag: 'queue', eq: 'a' } })
  await until(() => ns(r).length === 2, 10_000)
  t.same(ns(r), [3, 6])
})
