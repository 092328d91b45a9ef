// Prometheus metrics (option `metrics`), built on prom-client, an optional peer loaded
// only when the option is on. No metrics code runs in the core: counters and
// histograms follow the diagnostics channels (diagnostics.ts), and the gauges are
// read from the plugin when Prometheus scrapes. Every label value is bounded by what
// the app or the protocol declares (routes, patterns, wire codes, close codes), never
// by what a client sends, so no client can grow the registry.
import dc from 'node:diagnostics_channel'
import type { Registry } from 'prom-client'
import type { FastifyInstance } from 'fastify'
import type { Connection } from '../connection/public.js'
import { channels } from '../protocol/diagnostics.js'
import { handlerChannel, markStart, sinceStart, type HandlerTrace } from '../messages/handler-trace.js'
import { errorCodes } from '../protocol/errors.js'
import { LightHistogram, PendingCounts } from './metrics-series.js'
import type { MetricsRegistry } from './metrics-registry.js'

export type { MetricsRegistry }
import { CloseCode } from '../protocol/constants.js'
import type { Realtime } from './public.js'

export interface MetricsOptions {
  /**
   * The prom-client Registry to register in (say, prom-client's global `register`, which
   * fastify-metrics serves). Default: a new Registry for this registration, so that two
   * apps (or contexts) of one process never collide; served as `app.realtime.metrics`.
   */
  registry?: MetricsRegistry
  /** Prefix of every metric name. Default `realtime_`. */
  prefix?: string
}

/** Close codes that are their own label value; any other code a peer or app uses is `other`. */
const CLOSE_CODES: ReadonlySet<number> = new Set(Object.values(CloseCode))

type Handler = (message: unknown) => void

/**
 * The Registry the metrics go to: the one given, or a new one per registration (prom-client's
 * global `register` would refuse a second app's metrics of the same names).
 */
export async function metricsRegistry (options: true | MetricsOptions): Promise<MetricsRegistry> {
  if (options !== true && options.registry !== undefined) return options.registry
  const prom = await importProm()
  return new prom.Registry()
}

async function importProm (): Promise<typeof import('prom-client')> {
  try {
    return await import('prom-client')
  } catch {
    throw new errorCodes.FST_REALTIME_MISSING_PEER('The metrics option', 'prom-client', 'prom-client')
  }
}

/**
 * Registers the plugin's metrics in `app.realtime.metrics` and subscribes them to the
 * diagnostics channels. Undone in onClose: the channels are left and the metrics removed
 * from the registry, so a restarted app can register them again.
 */
export async function registerMetrics (app: FastifyInstance, realtime: Realtime<any>, options: true | MetricsOptions): Promise<void> {
  const prom = await importProm()
  if (realtime.metrics === undefined) return
  const registry = realtime.metrics as unknown as Registry
  const prefix = (options === true ? undefined : options.prefix) ?? 'realtime_'
  // A registry shared with another registration (of this app or another) would fail in
  // prom-client with a bare "already registered": say what to do instead.
  if (registry.getSingleMetric(prefix + 'connections') !== undefined) {
    throw new errorCodes.FST_REALTIME_INVALID_OPTION('metrics', `the registry already holds ${prefix}connections (another fastify-realtime registered there): give each registration its own \`registry\` (the default) or its own \`prefix\``)
  }
  const registers = [registry]
  const own = (connection: Connection<any>): boolean => connection.request.server.realtime === realtime

  // Counted in plain numbers as events come, handed to prom-client at scrape (metrics-series.ts).
  const names: string[] = []
  const counter = (name: string, help: string, label?: string): PendingCounts => {
    const counts = new PendingCounts()
    names.push(prefix + name)
    // eslint-disable-next-line no-new
    new prom.Counter({ name: prefix + name, help, labelNames: label === undefined ? [] : [label], registers, collect () { counts.flush(this, label) } })
    return counts
  }
  const opened = counter('connections_opened_total', 'Connections admitted and welcomed')
  const disconnects = counter('disconnects_total', 'Connections closed, by close code (codes the protocol does not name are "other")', 'code')
  const received = counter('messages_received_total', 'Frames received, by type (route or built-in; "unknown" for undeclared types, "invalid" for unparseable frames)', 'type')
  const sent = counter('messages_sent_total', 'Frames sent, by type (reply, error, message, welcome, pong, event names...)', 'type')
  const deliveries = counter('deliveries_total', 'Publications and presence changes handed to local subscribers, by topic pattern', 'pattern')
  const dropped = counter('dropped_total', 'Messages dropped for slow subscribers of volatile topics, by topic pattern', 'pattern')
  const errors = counter('errors_total', 'Error frames sent, by wire error code', 'code')
  const handlerDuration = new LightHistogram(registry, prefix + 'handler_duration_seconds', 'Time from a route handler\'s call to its result (a returned promise settling)',
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], 'route')
  const publishDuration = new LightHistogram(registry, prefix + 'publish_duration_seconds', 'Broker round trip of a publication (offset assigned, history kept, fanned out)',
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25])
  const gauges = [
    new prom.Gauge({
      name: prefix + 'connections',
      help: 'Connections now, by state',
      labelNames: ['state'],
      registers,
      collect () {
        const now = realtime.stats().connections
        this.set({ state: 'open' }, now.active)
        this.set({ state: 'authenticating' }, now.authenticating)
      }
    }),
    new prom.Gauge({
      name: prefix + 'subscriptions',
      help: 'Confirmed subscriptions now, by topic pattern',
      labelNames: ['pattern'],
      registers,
      collect () {
        this.reset()
        for (const [pattern, count] of subscriptionsByPattern(realtime)) this.set({ pattern }, count)
      }
    }),
    new prom.Gauge({
      name: prefix + 'send_queue_bytes',
      help: 'Bytes waiting to be sent on the connection with the largest queue now',
      registers,
      collect () { this.set(largestQueue(realtime)) }
    }),
    new prom.Gauge({
      name: prefix + 'broker_up',
      help: '1 when the broker is connected, 0 when not',
      registers,
      collect () { this.set(brokerUp(realtime) ? 1 : 0) }
    })
  ]

  // Each trace ends once: `end` for a handler that returned a value or threw, `asyncEnd` for a promise.
  const finish = (trace: HandlerTrace): void => {
    const elapsed = sinceStart(trace)
    if (elapsed !== undefined && own(trace.connection)) handlerDuration.observe(trace.route, elapsed / 1000)
  }
  const handlers: Record<string, Handler> = {
    connectionOpen: (m) => { if (own((m as { connection: Connection<any> }).connection)) opened.add('') },
    connectionClose: (m) => {
      const { connection, code } = m as { connection: Connection<any>, code: number }
      if (own(connection)) disconnects.add(CLOSE_CODES.has(code) ? String(code) : 'other')
    },
    messageIn: (m) => {
      const { connection, type } = m as { connection: Connection<any>, type: string }
      if (own(connection)) received.add(type)
    },
    messageOut: (m) => {
      const { connection, type } = m as { connection: Connection<any>, type: string }
      if (own(connection)) sent.add(type)
    },
    error: (m) => {
      const { connection, code } = m as { connection: Connection<any>, code: string }
      if (own(connection)) errors.add(code)
    },
    delivery: (m) => {
      const event = m as { broker: unknown, pattern: string, kind: string, subscribers: number, dropped: number }
      if (event.broker !== realtime.broker) return
      deliveries.add(event.pattern, event.subscribers)
      // Labelled by the frame's type, as every other sent frame is: join and leave are not messages.
      if (event.subscribers > event.dropped) sent.add(event.kind, event.subscribers - event.dropped)
    },
    broadcast: (m) => {
      const event = m as { broker: unknown, type: string, connections: number }
      if (event.broker === realtime.broker && event.connections > 0) sent.add(event.type, event.connections)
    },
    dropped: (m) => {
      const event = m as { broker: unknown, pattern: string, count: number }
      if (event.broker === realtime.broker) dropped.add(event.pattern, event.count)
    },
    publish: (m) => {
      const event = m as { broker: unknown, duration: number }
      if (event.broker === realtime.broker) publishDuration.observe('', event.duration / 1000)
    }
  }
  const tracing = {
    start: (trace: HandlerTrace) => { if (own(trace.connection)) markStart(trace) },
    end: (trace: HandlerTrace) => {
      // A handler that returned a promise is timed until it settles (asyncEnd).
      const result = trace.result as { then?: unknown } | null | undefined
      if (trace.error !== undefined || result === null || typeof result !== 'object' || typeof result.then !== 'function') finish(trace)
    },
    asyncStart: () => {},
    asyncEnd: finish,
    error: () => {}
  }
  for (const [name, handler] of Object.entries(handlers)) dc.subscribe(channels[name as keyof typeof channels].name as string, handler)
  handlerChannel.subscribe(tracing)

  app.addHook('onClose', async () => {
    for (const [name, handler] of Object.entries(handlers)) dc.unsubscribe(channels[name as keyof typeof channels].name as string, handler)
    handlerChannel.unsubscribe(tracing)
    for (const name of [...names, handlerDuration.name, publishDuration.name, ...gauges.map((gauge) => (gauge as unknown as { name: string }).name)]) {
      registry.removeSingleMetric(name)
    }
  })
}

/** Confirmed subscriptions of this node, by declared pattern. */
export function subscriptionsByPattern (realtime: Realtime<any>): Map<string, number> {
  const counts = new Map<string, number>()
  for (const connection of realtime.connections) {
    for (const [topic, subscription] of connection.subscriptions) {
      if (connection.isSubscribed(topic)) counts.set(subscription.pattern, (counts.get(subscription.pattern) ?? 0) + 1)
    }
  }
  return counts
}

function largestQueue (realtime: Realtime<any>): number {
  let largest = 0
  for (const connection of realtime.connections) largest = Math.max(largest, connection.bufferedAmount)
  return largest
}

/** A broker that says whether it is connected (Redis) is asked; one that cannot be down (memory) is up. */
export function brokerUp (realtime: Realtime<any>): boolean {
  return (realtime.broker as { connected?: boolean }).connected !== false
}
