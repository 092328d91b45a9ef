// Topic names with slashes (`ticker/*symbol`) and the rules of names and patterns.
import t from 'tap'
import Fastify from 'fastify'
import { Type } from '@sinclair/typebox'
import { WebSocket } from 'ws'
import { build, connect, until } from '../fixtures/helpers.js'
import realtime, { defineContract } from '../../lib/index.js'
import { createClient } from '../../lib/client/index.js'

const Price = Type.Object({ price: Type.Number() })

t.test('a wildcard last segment takes the rest of the name, slashes included', async (t) => {
  const seen: unknown[] = []
  let ticker!: ReturnType<typeof declare>
  function declare (app: import('fastify').FastifyInstance) {
    return app.realtime.topic('ticker/*symbol', {
      params: Type.Object({ symbol: Type.String({ pattern: '^[A-Z]+/[A-Z]+$' }) }),
      message: Price,
      clientPublish: true,
      authorize: ({ action, topic, params }) => {
        seen.push({ action, topic, params })
        return params.symbol !== 'ETH/BTC'
      }
    })
  }
  const { app, url } = await build(t, {}, (app) => { ticker = declare(app) })
  t.equal(ticker.name({ symbol: 'BTC/USDT' }), 'ticker/BTC/USDT', 'name() writes the slashes as they are')

  const c = await connect(t, url)
  const sub = await c.request('subscribe', { topic: 'ticker/BTC/USDT' })
  t.equal(sub.type, 'reply', 'subscribed')
  t.equal(sub.data.topic, 'ticker/BTC/USDT')

  await ticker.publish({ symbol: 'BTC/USDT' }, { price: 1 })
  await app.realtime.publish('ticker/BTC/USDT', { price: 2 })
  const published = await c.request('publish', { topic: 'ticker/BTC/USDT', data: { price: 3 } })
  t.equal(published.type, 'reply', 'a client publishes on it too')
  const prices = []
  for (let i = 0; i < 3; i++) {
    const m = await c.nextOfType('message')
    t.equal(m.topic, 'ticker/BTC/USDT')
    prices.push(m.data.price)
  }
  t.same(prices, [1, 2, 3], 'the handle, app.realtime.publish and the client reach the same topic')

  t.equal((await c.request('subscribe', { topic: 'ticker/ETH/BTC' })).error?.code, 'FORBIDDEN', 'authorize decides on the decoded symbol')
  t.same(seen, [
    { action: 'subscribe', topic: 'ticker/BTC/USDT', params: { symbol: 'BTC/USDT' } },
    { action: 'publish', topic: 'ticker/BTC/USDT', params: { symbol: 'BTC/USDT' } },
    { action: 'subscribe', topic: 'ticker/ETH/BTC', params: { symbol: 'ETH/BTC' } }
  ], 'authorize sees the whole rest of the name as one param')

  for (const topic of ['ticker', 'ticker/BTC', 'ticker/btc/usdt', 'ticker/BTC/USDT/X', 'ticker/BTC//USDT', 'ticker/BTC/USDT/', 'ticker//BTC/USDT']) {
    t.equal((await c.request('subscribe', { topic })).error?.code, 'FORBIDDEN', `${topic}: refused (params schema or empty segment)`)
  }
  t.equal(seen.length, 3, 'authorize never saw a name that fails the params schema or the name rules')
  await t.rejects(app.realtime.publish('ticker/BTC//USDT', { price: 1 }), { code: 'FST_REALTIME_UNKNOWN_TOPIC' })
})

t.test('the client subscribes to a wildcard name and gets its publications', async (t) => {
  const contract = defineContract({ topics: { 'ticker/*symbol': { message: Price } } })
  const { app, url } = await build(t, {}, (app) => { app.realtime.topic('ticker/*symbol', contract.topics['ticker/*symbol']) })
  const client = createClient<typeof contract>({ url, WebSocket })
  t.teardown(() => client.close())
  const prices: number[] = []
  const sub = client.subscribe('ticker/BTC/USDT', (message) => { prices.push(message.price) })
  await sub.ready
  await app.realtime.publish('ticker/BTC/USDT', { price: 5 })
  await app.realtime.publish('ticker/BTC/EUR', { price: 4 })
  await app.realtime.publish('ticker/BTC/USDT', { price: 6 })
  await until(() => prices.length === 2)
  t.same(prices, [5, 6], 'only its own name, slashes and all')
})

t.test('a :param never holds "/", and "%" is not decoded', async (t) => {
  const seen: unknown[] = []
  const { app, url } = await build(t, {}, (app) => {
    const pair = app.realtime.topic('pair/:symbol', { message: Price, authorize: ({ params }) => { seen.push(params.symbol); return true } })
    t.equal(pair.name({ symbol: 'BTC%2FUSDT' }), 'pair/BTC%2FUSDT', 'name() does not encode')
    t.throws(() => pair.name({ symbol: 'BTC/USDT' }), { code: 'FST_REALTIME_INVALID_DATA', message: /parameter "symbol" must be a non-empty value without "\/"/ })
    t.throws(() => pair.name({ symbol: '' }), { code: 'FST_REALTIME_INVALID_DATA' })
  })
  const c = await connect(t, url)
  t.equal((await c.request('subscribe', { topic: 'pair/BTC/USDT' })).error?.code, 'FORBIDDEN', 'one segment only')
  t.equal((await c.request('subscribe', { topic: 'pair/BTC%2FUSDT' })).type, 'reply')
  t.same(seen, ['BTC%2FUSDT'], 'authorize gets the percent sequence as written')
  await t.rejects(app.realtime.publish('pair/BTC/USDT', { price: 1 }), { code: 'FST_REALTIME_UNKNOWN_TOPIC' })
})

t.test('a fixed pattern is tried in declaration order with a wildcard one', async (t) => {
  const { url } = await build(t, {}, (app) => {
    app.realtime.topic('files/:name', { message: Price, authorize: ({ topic }) => topic === 'files/a' })
    app.realtime.topic('files/*path', { message: Price })
  })
  const c = await connect(t, url)
  t.equal((await c.request('subscribe', { topic: 'files/a' })).type, 'reply')
  t.equal((await c.request('subscribe', { topic: 'files/b' })).error?.code, 'FORBIDDEN', 'one segment: the first pattern decides')
  t.equal((await c.request('subscribe', { topic: 'files/b/c.txt' })).type, 'reply', 'more segments: only the wildcard matches')
})

t.test('name() refuses what no one could subscribe to', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime, { maxTopicLength: 20 })
  const files = app.realtime.topic('files/*path', { message: Price })
  t.equal(files.name({ path: 'a b/ü.txt' }), 'files/a b/ü.txt', 'spaces and any Unicode are characters like others')
  for (const path of ['', '/etc/passwd', 'a/', 'a//b', 'bell\u0007']) {
    t.throws(() => files.name({ path }), { code: 'FST_REALTIME_INVALID_DATA' }, JSON.stringify(path))
  }
  t.equal(files.name({ path: 'x'.repeat(14) }), 'files/' + 'x'.repeat(14), 'maxTopicLength characters is fine')
  t.throws(() => files.name({ path: 'x'.repeat(15) }), { code: 'FST_REALTIME_INVALID_DATA', message: /at most 20 characters/ }, 'one more is refused')
  await app.ready()
  await t.rejects(app.realtime.publish('files/' + 'x'.repeat(15), { price: 1 }), { code: 'FST_REALTIME_UNKNOWN_TOPIC' })
})

t.test('a client name over maxTopicLength or with a control character', async (t) => {
  const { url } = await build(t, { maxTopicLength: 20 }, (app) => {
    app.realtime.topic('files/*path', { message: Price })
  })
  const c = await connect(t, url)
  t.equal((await c.request('subscribe', { topic: 'files/' + 'x'.repeat(14) })).type, 'reply')
  t.equal((await c.request('subscribe', { topic: 'files/' + 'x'.repeat(15) })).error?.code, 'LIMIT_EXCEEDED')
  t.equal((await c.request('subscribe', { topic: 'files/a\nb' })).error?.code, 'FORBIDDEN')
})

t.test('patterns: a wildcard only last, params well named, segments non-empty', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime)
  const bad: Array<[string, RegExp]> = [
    ['a/*rest/b', /wildcard "\*rest" must be the last segment/],
    ['*all/x', /must be the last segment/],
    ['a/*', /bad parameter "\*"/],
    ['a/:1x', /bad parameter/],
    ['a/:x/*x', /parameter "x" appears twice/],
    ['a/*__proto__', /cannot name a parameter/],
    ['a//b', /empty segment/],
    ['/a', /empty segment/],
    ['a/', /empty segment/],
    ['a\u0000b', /control characters/],
    ['', /non-empty string/]
  ]
  for (const [pattern, message] of bad) {
    t.throws(() => app.realtime.topic(pattern, { message: Price }), { code: 'FST_REALTIME_INVALID_PATTERN', message }, JSON.stringify(pattern))
    t.throws(() => defineContract({ topics: { [pattern]: { message: Price } } }), { code: 'FST_REALTIME_INVALID_CONTRACT', message }, `contract ${JSON.stringify(pattern)}`)
  }
  t.doesNotThrow(() => defineContract({ topics: { 'ticker/*symbol': { message: Price }, 'a/:x/*y': { message: Price } } }))
})

t.test('a coerced param whose canonical spelling is over maxTopicLength matches nothing', async (t) => {
  const { app, url } = await build(t, { maxTopicLength: 6 }, (app) => {
    app.realtime.topic('n/:id', { params: Type.Object({ id: Type.Integer() }), message: Price })
  })
  const c = await connect(t, url)
  // 1e21 is the integer 1e21, whose canonical spelling `n/1e+21` is 7 characters.
  t.equal((await c.request('subscribe', { topic: 'n/1e21' })).error?.code, 'FORBIDDEN', 'refused like any other spelling, not INTERNAL')
  t.equal((await c.request('subscribe', { topic: 'n/1' })).type, 'reply')
  await t.rejects(app.realtime.publish('n/1e21', { price: 1 }), { code: 'FST_REALTIME_UNKNOWN_TOPIC' })
})
