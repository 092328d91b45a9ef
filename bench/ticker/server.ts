// The ticker bench's server process (bench/ticker/run.ts): one variant, quotes of the
// ticker example on 50 symbols, published at a fixed total rate when asked. It reports
// its own CPU time and the bytes its sockets wrote, so the orchestrator can divide them
// by the deliveries the clients counted.
import { createServer, type Server as HttpServer } from 'node:http'
import type { Socket } from 'node:net'
import Fastify from 'fastify'
import { Server as SocketIo } from 'socket.io'
import realtime from '../../lib/index.js'
import { Market, QuoteSchema } from '../../examples/ticker/quotes.js'

export interface ServerArgs { variant: string, symbols: string[] }
export interface PublishArgs { count: number, rate: number }

const args = JSON.parse(process.argv[2]) as ServerArgs
const market = new Market(args.symbols)
const sockets = new Set<Socket>()
let http: HttpServer
let publish: (symbol: string, quote: unknown) => void

function track (server: HttpServer): void {
  const add = (socket: Socket): void => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  }
  server.on('connection', add)
  server.on('upgrade', (_request, socket) => add(socket as Socket))
}

if (args.variant.startsWith('socketio')) {
  http = createServer()
  track(http)
  const parser = args.variant === 'socketio-msgpack' ? (await import('socket.io-msgpack-parser')).default : undefined
  const io = new SocketIo(http, { transports: ['websocket'], serveClient: false, perMessageDeflate: false, ...(parser === undefined ? {} : { parser }) })
  io.on('connection', (socket) => {
    socket.on('subscribe', (topic: string, ack: (reply: unknown) => void) => {
      Promise.resolve(socket.join(topic)).catch(() => {})
      ack({ topic })
    })
  })
  publish = (symbol, quote) => { io.to(`ticker/${symbol}`).emit('message', quote) }
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
} else {
  const app = Fastify()
  await app.register(realtime, {
    maxConnectionsPerIp: 100_000,
    rateLimit: { rate: 10_000, burst: 10_000 },
    compression: args.variant === 'compress-once' ? { threshold: 256, level: 1 } : false
  })
  const ticker = app.realtime.topic('ticker/*symbol', { message: QuoteSchema, delta: true, volatile: true })
  publish = (symbol, quote) => { ticker.publish({ symbol }, quote as never).catch(() => {}) }
  await app.listen({ port: 0, host: '127.0.0.1' })
  http = app.server
  track(http)
}

const send = (message: unknown): void => { process.send?.(message) }
process.on('message', (message: { op: string } & PublishArgs) => {
  if (message.op === 'stats') {
    const cpu = process.cpuUsage()
    let bytes = 0
    for (const socket of sockets) bytes += socket.bytesWritten
    send({ op: 'stats', cpuMicros: cpu.user + cpu.system, bytesWritten: bytes })
  } else if (message.op === 'publish') {
    // `rate` quotes a second over all symbols, each symbol in turn.
    let n = 0
    const interval = 1000 / message.rate
    const started = performance.now()
    const tick = (): void => {
      const due = Math.min(message.count, Math.floor((performance.now() - started) / interval) + 1)
      for (; n < due; n++) {
        const symbol = args.symbols[n % args.symbols.length]
        publish(symbol, market.tick(symbol))
      }
      if (n < message.count) setTimeout(tick, Math.max(0, interval - 1))
      else send({ op: 'published', count: n })
    }
    tick()
  } else if (message.op === 'exit') {
    process.exit(0)
  }
})
const port = (http.address() as { port: number }).port
send({ op: 'ready', port })
