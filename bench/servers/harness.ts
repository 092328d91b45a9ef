// What every bench server process has in common: the control commands the
// orchestrator sends (stats, gc, publish, loopStart/loopStop, shutdown) and the message published.
//
// A variant file only builds its server and hands `runServer` an object that can
// publish to a topic, count its connections and close. Adding a variant (for
// example one that fans out through Redis) means writing one such file.

import { cpuMicros, wallNow } from '../lib/clock.js'
import { serveControl } from '../lib/control.js'
import type { Socket } from 'node:net'
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'
import type { WebSocket } from 'ws'

/** What is published in the fan-out scenarios: ~100 bytes once serialised. */
export interface BenchMessage {
  /** Wall-clock send time in ms (performance.timeOrigin + performance.now()). */
  t: number
  seq: number
  pad: string
}

export interface BenchServer {
  port: number
  /** Sends one publication to every subscriber of `topic` on this process. */
  publish: (topic: string, message: BenchMessage) => void
  /** Accepted, still open client connections. */
  connections: () => number
  /** Bytes written so far to the open client connections' TCP sockets (what went on the wire). */
  bytesWritten?: () => number
  /** Deliveries so far by the route they took, for servers that choose one per socket (true frame-once). */
  routes?: () => Record<string, number>
  close: () => Promise<void>
}

export interface PublishArgs {
  topic: string
  count: number
  /** Publications per event-loop turn when `intervalMs` is 0 (as fast as possible). */
  batch: number
  /** Time between publications; 0 publishes as fast as possible, `batch` per turn. */
  intervalMs: number
  padLength: number
  /** 'x': one repeated letter (the ~100-byte fan-out message); 'text': words that compress like real JSON text does. */
  padStyle?: 'x' | 'text'
  timeoutMs: number
}

export interface PublishResult {
  published: number
  startWall: number
  endWall: number
  cpuMicros: number
  timedOut: boolean
}

export interface ServerStats {
  pid: number
  wall: number
  /** User + system CPU µs since the process started. */
  cpuMicros: number
  /** User-space CPU µs only: the server's own code, without the kernel's socket work. */
  userMicros: number
  connections: number
  bytesWritten: number | null
  routes: Record<string, number> | null
  memory: NodeJS.MemoryUsage
}

/** Event-loop delay over a window (perf_hooks.monitorEventLoopDelay), in ms. */
export interface LoopDelay {
  p50Ms: number
  p99Ms: number
  /** The longest block seen. */
  maxMs: number
  samples: number
}

export function runServer (name: string, start: () => Promise<BenchServer>): void {
  let loop: IntervalHistogram | null = null
  start().then((server) => {
    const stats = (): ServerStats => {
      const cpu = process.cpuUsage()
      return {
        pid: process.pid,
        wall: wallNow(),
        cpuMicros: cpu.user + cpu.system,
        userMicros: cpu.user,
        connections: server.connections(),
        bytesWritten: server.bytesWritten?.() ?? null,
        routes: server.routes?.() ?? null,
        memory: process.memoryUsage()
      }
    }
    serveControl({
      stats,
      gc: async () => {
        if (typeof globalThis.gc !== 'function') throw new Error('start the server with --expose-gc')
        // Several passes with turns in between, so weak and finalised objects go too.
        for (let i = 0; i < 4; i++) {
          globalThis.gc()
          await new Promise((resolve) => setImmediate(resolve))
        }
        return stats()
      },
      publish: (args: PublishArgs) => publishLoop(server, args),
      loopStart: () => {
        loop?.disable()
        // 10 ms resolution: the delay is sampled that often, so a block is seen to within it.
        loop = monitorEventLoopDelay({ resolution: 10 })
        loop.enable()
        return true
      },
      loopStop: (): LoopDelay => {
        const h = loop
        if (h === null) throw new Error('loopStart first')
        h.disable()
        loop = null
        return { p50Ms: h.percentile(50) / 1e6, p99Ms: h.percentile(99) / 1e6, maxMs: h.max / 1e6, samples: h.count }
      },
      shutdown: () => server.close()
    }, { name, port: server.port, pid: process.pid })
  }).catch((err) => {
    console.error(`[bench server ${name}] failed to start:`, err)
    process.exit(1)
  })
}

/**
 * Publishes `count` messages, each stamped with the wall clock just before it is
 * handed to the server. Bounded by count and by `timeoutMs`.
 */
function publishLoop (server: BenchServer, args: PublishArgs): Promise<PublishResult> {
  const pad = args.padStyle === 'text' ? wordPad(args.padLength) : 'x'.repeat(args.padLength)
  const cpu0 = cpuMicros()
  const startWall = wallNow()
  const deadline = Date.now() + args.timeoutMs
  let seq = 0
  return new Promise((resolve) => {
    const done = (timedOut: boolean) => resolve({ published: seq, startWall, endWall: wallNow(), cpuMicros: cpuMicros() - cpu0, timedOut })
    const publishOne = () => { server.publish(args.topic, { t: wallNow(), seq, pad }); seq++ }
    if (args.intervalMs <= 0) {
      const turn = () => {
        for (let i = 0; i < args.batch && seq < args.count; i++) publishOne()
        if (seq >= args.count) done(false)
        else if (Date.now() > deadline) done(true)
        else setImmediate(turn)
      }
      turn()
    } else {
      // Paced: publish whatever is due at each tick, so timer lateness does not lower the rate.
      const tick = () => {
        const due = Math.min(args.count, Math.floor((wallNow() - startWall) / args.intervalMs) + 1)
        for (let i = seq; i < due; i++) publishOne()
        if (seq >= args.count) done(false)
        else if (Date.now() > deadline) done(true)
        else setTimeout(tick, Math.max(0, startWall + seq * args.intervalMs - wallNow()))
      }
      tick()
    }
  })
}

const WORDS = ['price', 'bid', 'ask', 'volume', 'symbol', 'EURUSD', 'BTC', 'open', 'close', 'high', 'low', 'trade', 'user', 'room', 'message', 'status', 'online', 'typing', 'delivered', 'read']

/**
 * `length` characters of words and numbers from a fixed pseudo-random sequence: text
 * that deflate shrinks about as much as real JSON, unlike one repeated letter.
 */
export function wordPad (length: number): string {
  let seed = 12345
  let out = ''
  while (out.length < length) {
    seed = (seed * 1103515245 + 12345) % 2147483648
    out += seed % 3 === 0 ? `${seed % 100000} ` : `${WORDS[seed % WORDS.length]} `
  }
  return out.slice(0, length)
}

/** Bytes written so far to the TCP sockets under these ws connections. */
export function bytesWrittenBy (sockets: Iterable<WebSocket>): number {
  let total = 0
  for (const socket of sockets) total += (socket as unknown as { _socket?: Socket | null })._socket?.bytesWritten ?? 0
  return total
}

/** Listens on 127.0.0.1 with an ephemeral port and resolves with the port. */
export function listenLocal (server: import('node:http').Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      if (address === null || typeof address === 'string') reject(new Error('no TCP address'))
      else resolve(address.port)
    })
  })
}
