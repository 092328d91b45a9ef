// Delta compression (topics declared `delta: true`, subscribers that ask `delta: 'fossil'`):
// a delta only on top of the publication the subscriber was sent last (same epoch,
// offset - 1), whole otherwise; computed once per publication; every encoding.
import t from 'tap'
import { Type } from '@sinclair/typebox'
import fossil from 'fossil-delta'
import { WebSocket } from 'ws'
import { build, connect, until, type Frame, type TestClient } from '../fixtures/helpers.js'
import { createClient } from '../../lib/client/index.js'

const Quote = Type.Object(Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`f${i}`, i % 2 === 0 ? Type.Number() : Type.String()])))
type QuoteT = Record<string, number | string>

function quote (tick: number): QuoteT {
  // A few fields change per tick, the rest stay.
  return Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`f${i}`, i % 2 === 0 ? (i < 6 ? tick * 1.5 + i : i * 1000.25) : `value of field ${i}${i === 1 ? ` ${tick}` : ''}`]))
}

async function server (t: Parameters<typeof build>[0], options: Parameters<typeof build>[1] = {}) {
  return await build(t, { history: { size: 100, ttl: 0 }, msgpack: true, ...options }, (app) => {
    app.realtime.topic('ticker/*symbol', { message: Quote, delta: true, clientPublish: true })
    app.realtime.topic('plain/*symbol', { message: Quote })
    app.realtime.topic('gauge/:name', { message: Quote, delta: true, volatile: true })
  })
}

/** Rebuilds the data of delta-form frames as an independent client would: fossil-delta's own apply. */
function decoder () {
  let base: { offset: number, epoch: string, text: string } | null = null
  return (frame: Frame): { data: unknown, delta: boolean } => {
    if (typeof frame.delta !== 'boolean') return { data: frame.data, delta: false }
    let text: string
    if (frame.delta) {
      if (base === null || base.offset !== (frame.offset as number) - 1 || base.epoch !== frame.epoch) throw new Error(`a delta at ${frame.offset} without its base`)
      text = Buffer.from(fossil.apply(Buffer.from(base.text), Buffer.from(frame.data as string, 'latin1'))).toString()
    } else {
      text = frame.data as string
    }
    base = { offset: frame.offset as number, epoch: frame.epoch as string, text }
    return { data: JSON.parse(text), delta: frame.delta as boolean }
  }
}

async function messages (client: TestClient, n: number): Promise<Frame[]> {
  const out: Frame[] = []
  for (let i = 0; i < n; i++) out.push(await client.nextOfType('message'))
  return out
}

t.test('after one whole publication, deltas; in JSON and MessagePack; whole objects for those that did not ask', async (t) => {
  const { app, url } = await server(t)
  const json = await connect(t, url)
  const packed = await connect(t, url, { protocols: 'realtime.v1.msgpack' })
  const old = await connect(t, url)
  const unasked = await connect(t, url)
  await json.request('subscribe', { topic: 'ticker/BTC/USDT', delta: 'fossil' })
  await packed.request('subscribe', { topic: 'ticker/BTC/USDT', delta: 'fossil' })
  await old.request('subscribe', { topic: 'ticker/BTC/USDT' })
  // Asked on a topic without delta compression: whole publications, as ever.
  await unasked.request('subscribe', { topic: 'plain/BTC/USDT', delta: 'fossil' })
  for (let i = 1; i <= 5; i++) {
    await app.realtime.publish('ticker/BTC/USDT', quote(i))
    await app.realtime.publish('plain/BTC/USDT', quote(i))
  }
  for (const client of [json, packed]) {
    const decode = decoder()
    const frames = await messages(client, 5)
    t.same(frames.map((f) => f.delta), [false, true, true, true, true], 'whole, then deltas')
    t.same(frames.map((f) => decode(f).data), [1, 2, 3, 4, 5].map(quote), 'every publication rebuilt exactly')
    const whole = JSON.stringify(quote(2)).length
    t.ok((frames[1].data as string).length < whole * 0.2, `a delta is under 20 % of the whole (${(frames[1].data as string).length} of ${whole})`)
  }
  t.same((await messages(old, 5)).map((f) => [f.delta, f.data]), [1, 2, 3, 4, 5].map((i) => [undefined, quote(i)]))
  t.same((await messages(unasked, 5)).map((f) => [f.delta, f.data]), [1, 2, 3, 4, 5].map((i) => [undefined, quote(i)]))
  await t.rejects(json.request('subscribe', { topic: 'plain/x', delta: 'vcdiff' }).then((f) => f.type === 'error' ? Promise.reject(new Error(f.error?.code)) : f), /VALIDATION_FAILED/)
})

t.test('recovery, an excluded publication and a volatile drop are each followed by a whole one', async (t) => {
  const { app, url } = await server(t, { maxQueue: 4096 })
  const client = await connect(t, url)
  const decode = decoder()
  await client.request('subscribe', { topic: 'ticker/ETH', delta: 'fossil' })
  await app.realtime.publish('ticker/ETH', quote(1))
  await app.realtime.publish('ticker/ETH', quote(2))
  const [first, second] = await messages(client, 2)
  t.same([decode(first), decode(second)].map((d) => d.delta), [false, true])
  // Excluded from one publication: the next comes whole.
  await app.realtime.publish('ticker/ETH', quote(3), { except: [...app.realtime.connections][0].id })
  await app.realtime.publish('ticker/ETH', quote(4))
  const fourth = await client.nextOfType('message')
  t.equal(fourth.offset, 4)
  t.equal(fourth.delta, false, 'whole after an excluded one')
  t.same(decode(fourth).data, quote(4))
  // Resubscribed with `since`: the recovered ones come whole, the live ones after as deltas.
  await client.request('unsubscribe', { topic: 'ticker/ETH' })
  await app.realtime.publish('ticker/ETH', quote(5))
  await app.realtime.publish('ticker/ETH', quote(6))
  const reply = await client.request('subscribe', { topic: 'ticker/ETH', delta: 'fossil', since: { offset: 4, epoch: fourth.epoch } })
  t.equal(reply.data.recovered, true)
  await app.realtime.publish('ticker/ETH', quote(7))
  await app.realtime.publish('ticker/ETH', quote(8))
  const after = await messages(client, 4)
  // 7 is whole: this node had no subscriber when 6 was published, so it has no base for it.
  t.same(after.map((f) => [f.offset, f.delta]), [[5, false], [6, false], [7, false], [8, true]], 'recovered whole, then deltas again')
  t.same(after.map((f) => decode(f).data), [5, 6, 7, 8].map(quote))
})

t.test('on a volatile topic, a publication dropped for a slow subscriber is followed by a whole one', async (t) => {
  const { app, url } = await server(t, { maxQueue: 4096 })
  const client = await connect(t, url)
  const decode = decoder()
  await client.request('subscribe', { topic: 'gauge/cpu', delta: 'fossil' })
  const raw = (client.ws as unknown as { _socket: { pause: () => void, resume: () => void } })._socket
  raw.pause()
  let sent = 0
  // Until the queue is full and one is dropped (counted in stats).
  while (app.realtime.stats().messages.dropped === 0 && sent < 5000) await app.realtime.publish('gauge/cpu', quote(++sent))
  raw.resume()
  const connection = [...app.realtime.connections][0]
  await until(() => connection.bufferedAmount === 0, 10_000)
  await app.realtime.publish('gauge/cpu', quote(++sent))
  await until(() => client.frames.some((f) => f.offset === sent), 10_000)
  const frames = client.frames.filter((f) => f.type === 'message')
  let previous = 0
  for (const frame of frames) {
    const offset = frame.offset as number
    if (offset !== previous + 1) t.equal(frame.delta, false, `whole after the jump to ${offset}`)
    t.same(decode(frame).data, quote(offset))
    previous = offset
  }
  t.ok(frames.length < sent, 'some were dropped')
})

t.test('the client hands whole objects to listeners, in JSON and MessagePack', async (t) => {
  const { app, url } = await server(t)
  for (const encoding of ['json', 'msgpack'] as const) {
    const client = createClient({ url, WebSocket: WebSocket as never, encoding })
    t.teardown(() => client.close())
    const seen: unknown[] = []
    const sub = client.subscribe('ticker/SOL', (q: unknown) => seen.push(q), { delta: true })
    await sub.ready
    const from = (await app.realtime.publish('ticker/SOL', quote(100))).offset
    for (let i = 1; i < 4; i++) await app.realtime.publish('ticker/SOL', quote(100 + i))
    await until(() => seen.length === 4)
    t.same(seen, [0, 1, 2, 3].map((i) => quote(100 + i)), `${encoding}: ${from}…`)
    sub()
    await client.close()
  }
})
