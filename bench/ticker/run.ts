// The ticker scenario (`npm run bench -- --ticker`): 1,000 subscribers over 50 symbols,
// 200 quote updates a second of the ticker example's 40-field quote, for each way of
// sending it: JSON, MessagePack, JSON + delta, MessagePack + delta, compress-once
// (permessage-deflate, each publication compressed once), and Socket.IO 4.8 with its
// default parser and with its MessagePack parser. A server process and a client process
// per variant; reported per delivery: bytes on the wire (what the server's sockets
// wrote), server CPU, and client CPU to decode and hand the quote over (deltas rebuilt).
//
//   npm run bench -- --ticker                         every variant, 5 s each
//   npm run bench -- --ticker --set tickerSeconds=20  longer
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { SYMBOLS } from '../../examples/ticker/quotes.js'

export const TICKER_VARIANTS = ['json', 'msgpack', 'json-delta', 'msgpack-delta', 'compress-once', 'socketio', 'socketio-msgpack'] as const

export interface TickerCounts { tickerSubscribers: number, tickerSymbols: number, tickerRate: number, tickerSeconds: number }
export const TICKER_DEFAULTS: TickerCounts = { tickerSubscribers: 1000, tickerSymbols: 50, tickerRate: 200, tickerSeconds: 5 }

const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url))

function start (file: string, args: unknown): ChildProcess {
  return fork(here(file), [JSON.stringify(args)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
}

function next<T> (child: ChildProcess, op: string, timeoutMs = 120_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${op} from ${child.pid}`)), timeoutMs)
    const on = (message: any): void => {
      if (message?.op !== op) return
      clearTimeout(timer)
      child.off('message', on)
      resolve(message as T)
    }
    child.on('message', on)
  })
}

interface Row { variant: string, bytesPerDelivery: number, serverCpuUs: number, clientCpuUs: number, deliveries: number, expected: number }

async function measure (variant: string, counts: TickerCounts): Promise<Row> {
  // Symbols like the example's, `BTC/USDT` first; more than the example lists are made up.
  const symbols = Array.from({ length: counts.tickerSymbols }, (_, i) => SYMBOLS[i] ?? `C${i}/USDT`)
  const server = start('./server.ts', { variant, symbols })
  try {
    const { port } = await next<{ port: number }>(server, 'ready')
    const url = variant.startsWith('socketio') ? `http://127.0.0.1:${port}` : `ws://127.0.0.1:${port}/ws`
    const clients = start('./clients.ts', { variant, url, count: counts.tickerSubscribers, symbols })
    try {
      await next(clients, 'ready')
      // Warm-up: one second of quotes, not counted.
      server.send({ op: 'publish', count: counts.tickerRate, rate: counts.tickerRate })
      await next(server, 'published')
      await new Promise((resolve) => setTimeout(resolve, 300))
      const stats = async (): Promise<[any, any]> => {
        const s = next(server, 'stats')
        const c = next(clients, 'stats')
        server.send({ op: 'stats' })
        clients.send({ op: 'stats' })
        return await Promise.all([s, c])
      }
      const [s0, c0] = await stats()
      const count = counts.tickerRate * counts.tickerSeconds
      server.send({ op: 'publish', count, rate: counts.tickerRate })
      await next(server, 'published', counts.tickerSeconds * 4000 + 30_000)
      await new Promise((resolve) => setTimeout(resolve, 500))
      const [s1, c1] = await stats()
      const deliveries = Math.max(1, c1.deliveries - c0.deliveries)
      clients.send({ op: 'exit' })
      return {
        variant,
        bytesPerDelivery: Math.round((s1.bytesWritten - s0.bytesWritten) / deliveries),
        serverCpuUs: Math.round((s1.cpuMicros - s0.cpuMicros) / deliveries * 100) / 100,
        clientCpuUs: Math.round((c1.cpuMicros - c0.cpuMicros) / deliveries * 100) / 100,
        deliveries,
        expected: count * counts.tickerSubscribers / counts.tickerSymbols
      }
    } finally {
      clients.kill()
    }
  } finally {
    server.send({ op: 'exit' })
    setTimeout(() => server.kill(), 1000).unref()
  }
}

export async function runTicker (counts: TickerCounts, only?: string[]): Promise<Row[]> {
  const rows: Row[] = []
  for (const variant of TICKER_VARIANTS) {
    if (only !== undefined && !only.includes(variant)) continue
    const row = await measure(variant, counts)
    rows.push(row)
    console.log(`  ${variant}: ${row.bytesPerDelivery} B/delivery, server ${row.serverCpuUs} µs, client ${row.clientCpuUs} µs (${row.deliveries} of ${row.expected} deliveries)`)
  }
  const json = rows.find((r) => r.variant === 'json')
  console.log(`\nTicker: ${counts.tickerSubscribers} subscribers over ${counts.tickerSymbols} symbols, ${counts.tickerRate} quote updates/s, ${counts.tickerSeconds} s\n`)
  console.log('| variant | bytes/delivery | vs JSON | server CPU µs/delivery | vs JSON | client CPU µs/delivery | deliveries |')
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const r of rows) {
    const ratio = (a: number, b: number | undefined): string => b === undefined ? '' : `${(a / b).toFixed(2)}×`
    console.log(`| ${r.variant} | ${r.bytesPerDelivery} | ${ratio(r.bytesPerDelivery, json?.bytesPerDelivery)} | ${r.serverCpuUs} | ${ratio(r.serverCpuUs, json?.serverCpuUs)} | ${r.clientCpuUs} | ${r.deliveries} of ${r.expected} |`)
  }
  return rows
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const only = process.argv[2]?.split(',')
  await runTicker(TICKER_DEFAULTS, only)
}
