// A market ticker on fastify-realtime: per-symbol topics (`ticker/*symbol`, so a topic is
// `ticker/BTC/USDT`), quotes of 40 fields of which a tick changes a few, several ticks a
// second per symbol.
//
// What it shows: a topic with delta compression and volatile delivery (a quote is worth
// only its latest value: a slow phone skips quotes rather than being cut off), the
// MessagePack subprotocol, a status route, stats, and a page that shows the live quotes
// and the bytes it receives per second (MessagePack and deltas on, by default).
//
// `buildTicker()` returns the app without listening (tests start it on any port);
// server.ts is the runnable entry (`npm run example:ticker`).
import { readFile } from 'node:fs/promises'
import Fastify, { type FastifyInstance } from 'fastify'
import { Type } from '@sinclair/typebox'
import realtime, { type Broker } from '../../lib/index.js'
import { clientBundle } from '../chat/app.js'
import { Market, QuoteSchema, SYMBOLS } from './quotes.js'

export interface TickerOptions {
  logger?: boolean
  broker?: Broker
  /** Ms between two ticks of one symbol (default 250: four quotes a second per symbol). */
  interval?: number
  symbols?: readonly string[]
}

const pagePath = new URL('./public/index.html', import.meta.url)

export const StatusSchema = Type.Object({
  symbols: Type.Array(Type.String()),
  interval: Type.Integer(),
  published: Type.Integer(),
  uptimeMs: Type.Integer()
}, { title: 'TickerStatus' })

export async function buildTicker (opts: TickerOptions = {}): Promise<FastifyInstance> {
  const interval = opts.interval ?? 250
  const symbols = opts.symbols ?? SYMBOLS
  const market = new Market(symbols)
  const started = Date.now()
  let published = 0
  const app = Fastify({ logger: opts.logger ?? false })
  const page = await readFile(pagePath, 'utf8')
  const clientJs = await clientBundle()

  await app.register(realtime, {
    broker: opts.broker,
    // MessagePack for the page's compact mode (msgpackr, an optional peer this example installs).
    msgpack: true,
    history: { size: 20, ttl: 60_000 },
    asyncapi: { path: '/asyncapi', info: { title: 'Ticker', version: '1.0.0', description: 'Live quotes on `ticker/<symbol>` (`ticker/BTC/USDT`), with delta compression.' } }
  })
  const rt = app.realtime
  const ticker = rt.topic('ticker/*symbol', { message: QuoteSchema, delta: true, volatile: true })

  rt.route({
    type: 'ticker.status',
    schema: { reply: StatusSchema },
    handler: async () => ({ symbols: [...symbols], interval, published, uptimeMs: Date.now() - started })
  })

  // Each symbol ticks on its own timer, offset from the others, as a market's do.
  const timers: NodeJS.Timeout[] = []
  app.addHook('onReady', async () => {
    symbols.forEach((symbol, i) => {
      const start = setTimeout(() => {
        const timer = setInterval(() => {
          ticker.publish({ symbol }, market.tick(symbol)).then(() => { published++ }, (err: unknown) => app.log.warn({ err, symbol }, 'quote not published'))
        }, interval)
        timer.unref()
        timers.push(timer)
      }, Math.floor(interval * i / symbols.length))
      start.unref()
      timers.push(start)
    })
  })
  app.addHook('onClose', async () => {
    for (const timer of timers) clearInterval(timer)
  })

  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(page))
  app.get('/client.js', async (_request, reply) => reply.type('text/javascript; charset=utf-8').send(clientJs))
  app.get('/quotes', async () => ({ quotes: [...market.quotes.values()] }))
  app.get('/stats', async () => ({ ...rt.stats(), published, symbols: symbols.length, interval }))
  return app
}
