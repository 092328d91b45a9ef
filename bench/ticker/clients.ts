// The ticker bench's client process (bench/ticker/run.ts): `count` connections of one
// kind, spread over the symbols, each handing every quote whole to a listener (the
// package's client decodes, rebuilds deltas and hands objects over; Socket.IO's client
// decodes). It reports deliveries and its own CPU time, so the orchestrator gets the
// client's CPU per delivery to decode and apply.
import { WebSocket } from 'ws'
import { io } from 'socket.io-client'
import { createClient } from '../../lib/client/index.js'

interface ClientArgs { variant: string, url: string, count: number, symbols: string[] }
const args = JSON.parse(process.argv[2]) as ClientArgs
let deliveries = 0
let checksum = 0
const closers: Array<() => void> = []
const listener = (quote: { sequence: number }): void => {
  deliveries++
  checksum += quote.sequence
}

// Offers permessage-deflate (no context takeover) only for the compress-once variant.
class Ws extends WebSocket {
  constructor (url: string, protocols?: string | string[]) {
    super(url, protocols, { perMessageDeflate: args.variant === 'compress-once' ? { serverNoContextTakeover: true, clientNoContextTakeover: true } : false })
  }
}

async function open (i: number): Promise<void> {
  const symbol = args.symbols[i % args.symbols.length]
  if (args.variant.startsWith('socketio')) {
    const parser = args.variant === 'socketio-msgpack' ? (await import('socket.io-msgpack-parser')).default : undefined
    const socket = io(args.url, { transports: ['websocket'], forceNew: true, ...(parser === undefined ? {} : { parser }) })
    socket.on('message', listener)
    await socket.emitWithAck('subscribe', `ticker/${symbol}`)
    closers.push(() => socket.close())
    return
  }
  const encoding = args.variant.startsWith('msgpack') ? 'msgpack' : 'json'
  const client = createClient({ url: args.url, WebSocket: Ws as never, encoding, heartbeat: false })
  const sub = client.subscribe(`ticker/${symbol}`, listener as never, { delta: args.variant.endsWith('delta') })
  await sub.ready
  closers.push(() => { client.close().catch(() => {}) })
}

const send = (message: unknown): void => { process.send?.(message) }
process.on('message', async (message: { op: string }) => {
  if (message.op === 'stats') {
    const cpu = process.cpuUsage()
    send({ op: 'stats', cpuMicros: cpu.user + cpu.system, deliveries, checksum })
  } else if (message.op === 'exit') {
    for (const close of closers) close()
    setTimeout(() => process.exit(0), 200).unref()
  }
})
for (let i = 0; i < args.count; i += 50) await Promise.all(Array.from({ length: Math.min(50, args.count - i) }, async (_, j) => await open(i + j)))
send({ op: 'ready' })
