// What the dashboard charts: one snapshot per interval, made from the plugin's stats,
// the diagnostics channels (deliveries, errors by code, handler latency) and the
// process (CPU, memory). The channels are listened to only while some dashboard is
// open, so a registered but unwatched dashboard costs the core nothing.
import dc from 'node:diagnostics_channel'
import type { Connection } from '../connection/public.js'
import { channels } from '../protocol/diagnostics.js'
import { handlerChannel, markStart, sinceStart, type HandlerTrace } from '../messages/handler-trace.js'
import { brokerUp, subscriptionsByPattern } from '../plugin/metrics.js'
import type { Realtime } from '../plugin/public.js'

/** Handler timings kept per interval: enough for p99, bounded whatever the load. */
const MAX_SAMPLES = 10_000

export interface Snapshot {
  /** ms since the epoch. */
  t: number
  connections: { open: number, authenticating: number, total: number }
  /** Per second over the last interval. */
  rates: { in: number, out: number, deliveries: number, dropped: number, errors: number }
  /** Error frames sent in the last interval, by wire code. */
  errors: Record<string, number>
  /** Handler latency in ms over the last interval (null when no handler ran). */
  latency: { p50: number | null, p99: number | null }
  /** Confirmed subscriptions on this node, by topic pattern. */
  patterns: Record<string, number>
  broker: boolean
  process: { cpu: number, rss: number, heapUsed: number }
}

export class Collector {
  readonly #realtime: Realtime<any>
  #attached = false
  #last: { t: number, in: number, out: number, dropped: number, cpu: NodeJS.CpuUsage }
  #deliveries = 0
  #errors: Record<string, number> = {}
  #samples: number[] = []

  constructor (realtime: Realtime<any>) {
    this.#realtime = realtime
    this.#last = this.#mark()
  }

  #own (connection: Connection<any>): boolean {
    return connection.request.server.realtime === this.#realtime
  }

  readonly #onDelivery = (message: unknown): void => {
    const event = message as { broker: unknown, subscribers: number }
    if (event.broker === this.#realtime.broker) this.#deliveries += event.subscribers
  }

  readonly #onError = (message: unknown): void => {
    const { connection, code } = message as { connection: Connection<any>, code: string }
    if (this.#own(connection)) this.#errors[code] = (this.#errors[code] ?? 0) + 1
  }

  readonly #tracing = {
    start: (trace: HandlerTrace) => { if (this.#own(trace.connection)) markStart(trace) },
    end: (trace: HandlerTrace) => {
      const result = trace.result as { then?: unknown } | null | undefined
      if (trace.error !== undefined || result === null || typeof result !== 'object' || typeof result.then !== 'function') this.#finish(trace)
    },
    asyncStart: () => {},
    asyncEnd: (trace: HandlerTrace) => this.#finish(trace),
    error: () => {}
  }

  #finish (trace: HandlerTrace): void {
    const elapsed = sinceStart(trace)
    if (elapsed !== undefined && this.#own(trace.connection) && this.#samples.length < MAX_SAMPLES) this.#samples.push(elapsed)
  }

  /** Listens on the channels while `watched`, not otherwise. */
  watch (watched: boolean): void {
    if (watched === this.#attached) return
    this.#attached = watched
    if (watched) {
      dc.subscribe(channels.delivery.name as string, this.#onDelivery)
      dc.subscribe(channels.error.name as string, this.#onError)
      handlerChannel.subscribe(this.#tracing)
    } else {
      dc.unsubscribe(channels.delivery.name as string, this.#onDelivery)
      dc.unsubscribe(channels.error.name as string, this.#onError)
      handlerChannel.unsubscribe(this.#tracing)
    }
  }

  #mark (): { t: number, in: number, out: number, dropped: number, cpu: NodeJS.CpuUsage } {
    const messages = this.#realtime.stats().messages
    return { t: performance.now(), in: messages.in, out: messages.out, dropped: messages.dropped, cpu: process.cpuUsage() }
  }

  /** The snapshot of the interval since the last call, and the start of the next one. */
  snapshot (): Snapshot {
    const previous = this.#last
    const now = this.#last = this.#mark()
    const seconds = Math.max((now.t - previous.t) / 1000, 0.001)
    const per = (n: number): number => Math.round((n / seconds) * 10) / 10
    const cpu = process.cpuUsage(previous.cpu)
    const stats = this.#realtime.stats()
    const errors = this.#errors
    const samples = this.#samples.sort((a, b) => a - b)
    this.#errors = {}
    this.#samples = []
    const deliveries = this.#deliveries
    this.#deliveries = 0
    const memory = process.memoryUsage()
    return {
      t: Date.now(),
      connections: { open: stats.connections.active, authenticating: stats.connections.authenticating, total: stats.connections.total },
      rates: {
        in: per(now.in - previous.in),
        out: per(now.out - previous.out),
        deliveries: per(deliveries),
        dropped: per(now.dropped - previous.dropped),
        errors: per(Object.values(errors).reduce((a, b) => a + b, 0))
      },
      errors,
      latency: { p50: percentile(samples, 0.5), p99: percentile(samples, 0.99) },
      patterns: Object.fromEntries(subscriptionsByPattern(this.#realtime)),
      broker: brokerUp(this.#realtime),
      // Share of one core, as `top` shows it.
      process: { cpu: Math.round(((cpu.user + cpu.system) / 1000 / (seconds * 1000)) * 1000) / 10, rss: memory.rss, heapUsed: memory.heapUsed }
    }
  }
}

/** The value below which a share `q` of the sorted samples fall (nearest rank), in ms. */
export function percentile (sorted: number[], q: number): number | null {
  if (sorted.length === 0) return null
  const rank = Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)
  return Math.round(sorted[Math.max(rank, 0)] * 1000) / 1000
}
