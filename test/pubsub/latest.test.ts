// Latest-value topics (`latest: true`): a subscribe without `since`, from a client or
// the server, is answered just before the latest publication still in history, which
// follows the reply at once; then every newer one, gapless. With `since`, recovery as
// on any topic. Under concurrent publishes: never an older value after a newer one,
// never a gap.
import t from 'tap'
import { Type } from '@sinclair/typebox'
import { build, connect, until, type Frame, type TestClient } from '../fixtures/helpers.js'

const Price = Type.Object({ n: Type.Integer() })

const offsets = (c: TestClient): number[] => c.frames.filter((f) => f.type === 'message').map((f) => f.offset as number)

t.test('a subscribe gets the latest value first, positioned so what follows is gapless', async (t) => {
  let id = ''
  const { app, url } = await build(t, {}, (app) => {
    app.realtime.topic('ticker/:symbol', { message: Price, latest: true })
    app.realtime.topic('plain', { message: Price })
    app.realtime.addHook('onConnect', (connection) => { id = connection.id })
  })
  const empty = await connect(t, url)
  t.match((await empty.request('subscribe', { topic: 'ticker/BTC' })).data, { offset: 0 }, 'nothing published: nothing sent')
  for (let n = 1; n <= 5; n++) await app.realtime.publish('ticker/BTC', { n })
  await until(() => offsets(empty).length === 5)

  const c = await connect(t, url)
  const reply = await c.request('subscribe', { topic: 'ticker/BTC' })
  t.match(reply.data, { topic: 'ticker/BTC', offset: 4 })
  t.match(await c.nextOfType('message'), { offset: 5, data: { n: 5 } })
  await app.realtime.publish('ticker/BTC', { n: 6 })
  t.match(await c.nextOfType('message'), { offset: 6 })

  // The server's subscriptions get it too, after `subscribed`.
  const s = await connect(t, url)
  await app.realtime.subscribe(id, 'ticker/BTC')
  t.match(await s.nextOfType('subscribed'), { data: { offset: 5 } })
  t.match(await s.nextOfType('message'), { offset: 6, data: { n: 6 } })

  // With `since`: recovery as usual, not the latest value.
  const r = await connect(t, url)
  const recovered = await r.request('subscribe', { topic: 'ticker/BTC', since: { offset: 3, epoch: reply.data.epoch } })
  t.match(recovered.data, { offset: 6, recovered: true })
  await until(() => offsets(r).length === 3)
  t.same(offsets(r), [4, 5, 6])

  // A topic without `latest` is unchanged.
  await app.realtime.publish('plain', { n: 1 })
  const p = await connect(t, url)
  t.match((await p.request('subscribe', { topic: 'plain' })).data, { offset: 1 })
})

t.test('past the history ttl there is no latest value to send', async (t) => {
  const { app, url } = await build(t, {}, (app) => {
    app.realtime.topic('gauge', { message: Price, latest: true, history: { ttl: 1 } })
  })
  await app.realtime.publish('gauge', { n: 1 })
  await new Promise((resolve) => setTimeout(resolve, 20))
  const c = await connect(t, url)
  t.match((await c.request('subscribe', { topic: 'gauge' })).data, { offset: 1 })
  await app.realtime.publish('gauge', { n: 2 })
  t.match(await c.nextOfType('message'), { offset: 2 })
  t.same(offsets(c), [], 'only the newer one')
})

t.test('under concurrent publishes: never an older value after a newer one, never a gap', async (t) => {
  const { app, url } = await build(t, {}, (app) => {
    app.realtime.topic('ticker', { message: Price, latest: true })
  })
  const state = { publishing: true }
  let last = 0
  const publisher = (async () => {
    while (state.publishing) {
      await app.realtime.publish('ticker', { n: ++last })
      if (last % 5 === 0) await new Promise((resolve) => setImmediate(resolve))
    }
  })()
  const clients: Array<{ c: TestClient, reply: Frame }> = []
  for (let i = 0; i < 20; i++) {
    const c = await connect(t, url)
    clients.push({ c, reply: await c.request('subscribe', { topic: 'ticker' }) })
  }
  const end = last
  await until(() => clients.every(({ c }) => offsets(c).at(-1) !== undefined && (offsets(c).at(-1) as number) >= end), 20_000)
  state.publishing = false
  await publisher
  for (const [i, { c, reply }] of clients.entries()) {
    const seen = c.frames.filter((f) => f.type === 'message')
    const from = reply.data.offset as number
    t.ok(seen.length > 0, `client ${i} got values`)
    t.equal(seen[0].offset, from + 1, `client ${i}: the first value follows the reply's position`)
    t.ok(seen.every((f, k) => f.offset === from + 1 + k && (f.data as { n: number }).n === f.offset), `client ${i}: gapless and in order, each value its own`)
  }
})
