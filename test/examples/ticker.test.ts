// The ticker example (examples/ticker): quotes on `ticker/<symbol>` several times a second,
// with delta compression and MessagePack, its status route, stats and page.
import t from 'tap'
import { WebSocket } from 'ws'
import type { FastifyInstance } from 'fastify'
import { buildTicker } from '../../examples/ticker/app.js'
import { QuoteSchema } from '../../examples/ticker/quotes.js'
import { createClient } from '../../lib/client/index.js'
import { connect, until, type TestContext } from '../fixtures/helpers.js'

async function start (t: TestContext, interval = 50): Promise<{ app: FastifyInstance, url: string, base: string }> {
  const app = await buildTicker({ interval, symbols: ['BTC/USDT', 'ETH/USDT', 'SOL/USDT'] })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }
  return { app, url: `ws://127.0.0.1:${port}/ws`, base: `http://127.0.0.1:${port}` }
}

t.test('the page, the client bundle, the status route and stats', async (t) => {
  const { url, base } = await start(t)
  const html = await (await fetch(`${base}/`)).text()
  t.match(html, /encoding: msgpack \? 'msgpack' : 'json'/, 'the page speaks MessagePack')
  t.match(html, /bytes\/s/, 'and shows the bytes received per second')
  t.equal((await fetch(`${base}/client.js`)).status, 200)
  const client = await connect(t, url)
  const status = await client.request('ticker.status')
  t.same(status.data.symbols, ['BTC/USDT', 'ETH/USDT', 'SOL/USDT'])
  t.equal(status.data.interval, 50)
  await until(async () => (await (await fetch(`${base}/stats`)).json()).published > 6)
  const { quotes } = await (await fetch(`${base}/quotes`)).json()
  t.equal(Object.keys(QuoteSchema.properties).length, 40, 'quotes of 40 fields')
  t.same(Object.keys(quotes[0]).sort(), Object.keys(QuoteSchema.properties).sort())
})

t.test('BTC/USDT ticks several times a second; a delta subscriber gets small deltas it rebuilds into whole quotes', async (t) => {
  const { url } = await start(t)
  const received: number[] = []
  const quotes: Array<Record<string, unknown>> = []
  class Counting extends WebSocket {
    constructor (address: string, protocols?: string | string[]) {
      super(address, protocols)
      // The client asks for ArrayBuffers (binaryType 'arraybuffer').
      this.on('message', (raw) => { received.push((raw as ArrayBuffer).byteLength) })
    }
  }
  const client = createClient({ url, WebSocket: Counting as never, encoding: 'msgpack' })
  t.teardown(() => client.close())
  const sub = client.subscribe('ticker/BTC/USDT', (quote) => quotes.push(quote as Record<string, unknown>), { delta: true })
  await sub.ready
  const since = Date.now()
  await until(() => quotes.length >= 12, 10_000)
  t.ok(quotes.length / ((Date.now() - since) / 1000) > 2, 'several quotes a second')
  for (const quote of quotes) t.same(Object.keys(quote).length, 40)
  t.same(quotes.map((q) => q.sequence), quotes.map((_, i) => (quotes[0].sequence as number) + i), 'in order, none missing')
  // The first quote comes whole, the next ones as deltas: far fewer bytes.
  const sizes = received.slice(-10)
  const whole = Buffer.byteLength(JSON.stringify(quotes[0]))
  t.ok(Math.max(...sizes) < whole * 0.4, `deltas of ${sizes.join(', ')} bytes against a ${whole}-byte quote`)
})

t.test('a JSON client without deltas gets whole quotes', async (t) => {
  const { url } = await start(t)
  const client = await connect(t, url)
  await client.request('subscribe', { topic: 'ticker/ETH/USDT' })
  const message = await client.nextOfType('message')
  t.equal(message.data.symbol, 'ETH/USDT')
  t.equal(Object.keys(message.data).length, 40)
})
