// The ticker's market: ~40-field quotes for BTC/USDT-style symbols, of which a tick moves a
// few (prices, sizes, volume, the time): the workload delta compression is made for.
import { Type, type Static } from '@sinclair/typebox'

export const SYMBOLS = [
  'BTC/USDT', 'ETH/USDT', 'SOL/USDT', 'XRP/USDT', 'ADA/USDT', 'DOGE/USDT', 'DOT/USDT', 'AVAX/USDT',
  'LINK/USDT', 'LTC/USDT', 'ATOM/USDT', 'UNI/USDT', 'ETH/BTC', 'SOL/BTC', 'BNB/USDT', 'TRX/USDT'
] as const

const N = Type.Number()
const I = Type.Integer()
const S = Type.String()

/** A quote as published on `ticker/<symbol>`: 40 fields. */
export const QuoteSchema = Type.Object({
  symbol: S,
  base: S,
  quote: S,
  exchange: S,
  name: S,
  status: S,
  currency: S,
  bid: N,
  ask: N,
  bidSize: N,
  askSize: N,
  last: N,
  lastSize: N,
  mid: N,
  spread: N,
  open: N,
  high: N,
  low: N,
  prevClose: N,
  change: N,
  changePercent: N,
  volume: N,
  quoteVolume: N,
  vwap: N,
  trades: I,
  high52w: N,
  low52w: N,
  marketCap: N,
  supply: N,
  maxSupply: N,
  rank: I,
  fundingRate: N,
  openInterest: N,
  markPrice: N,
  indexPrice: N,
  tickSize: N,
  lotSize: N,
  sequence: I,
  updatedAt: I,
  session: S
}, { title: 'Quote' })
export type Quote = Static<typeof QuoteSchema>

const round = (value: number, digits: number): number => Number(value.toFixed(digits))

/** A deterministic pseudo-random walk per symbol (no Math.random: tests see the same market). */
function prng (seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0
    return s / 4294967296
  }
}

export class Market {
  readonly quotes = new Map<string, Quote>()
  readonly #random = new Map<string, () => number>()

  constructor (symbols: readonly string[] = SYMBOLS, now = Date.now()) {
    symbols.forEach((symbol, i) => {
      const [base, quote] = symbol.split('/')
      const price = round(10 ** ((i % 5) + 0.5) * (1 + i / 7), 4)
      this.#random.set(symbol, prng(i + 1))
      this.quotes.set(symbol, {
        symbol,
        base,
        quote,
        exchange: 'DEMO',
        name: `${base} / ${quote}`,
        status: 'trading',
        currency: quote,
        session: 'continuous',
        bid: price,
        ask: round(price * 1.0002, 4),
        bidSize: 1.5,
        askSize: 2.25,
        last: price,
        lastSize: 0.5,
        mid: round(price * 1.0001, 4),
        spread: round(price * 0.0002, 6),
        open: price,
        high: price,
        low: price,
        prevClose: price,
        change: 0,
        changePercent: 0,
        volume: 1000 + i,
        quoteVolume: round((1000 + i) * price, 2),
        vwap: price,
        trades: 100 * (i + 1),
        high52w: round(price * 1.8, 4),
        low52w: round(price * 0.4, 4),
        marketCap: round(price * 19_000_000, 0),
        supply: 19_000_000,
        maxSupply: 21_000_000,
        rank: i + 1,
        fundingRate: 0.0001,
        openInterest: 52_000 + i,
        markPrice: price,
        indexPrice: price,
        tickSize: 0.0001,
        lotSize: 0.001,
        sequence: 0,
        updatedAt: now
      })
    })
  }

  /**
   * Moves one symbol's quote by one tick: the price (last, bid, ask), the volume, the
   * sequence and the time; the day's high or low when passed; the change every tenth tick.
   */
  tick (symbol: string, now = Date.now()): Quote {
    const q = this.quotes.get(symbol) as Quote
    const random = this.#random.get(symbol) as () => number
    const last = round(q.last * (1 + (random() - 0.5) * 0.002), 4)
    const sequence = q.sequence + 1
    const next: Quote = {
      ...q,
      bid: round(last * 0.9999, 4),
      ask: round(last * 1.0001, 4),
      last,
      volume: round(q.volume + random() * 3, 3),
      sequence,
      updatedAt: now
    }
    if (last > q.high) next.high = last
    if (last < q.low) next.low = last
    if (sequence % 10 === 0) {
      next.change = round(last - q.prevClose, 4)
      next.changePercent = round((last - q.prevClose) / q.prevClose * 100, 3)
    }
    this.quotes.set(symbol, next)
    return next
  }
}
