// The orchestrator's handles on its children: a group of server processes for one
// variant, and the pool of load-generator processes shared by all variants.

import { Child, withTimeout } from './control.js'
import { sleep } from './clock.js'
import type { LoopDelay, PublishArgs, PublishResult, ServerStats } from '../servers/harness.js'
import type { ArmArgs, CollectResult, OpenResult, RequestsResult } from '../load/worker.js'
import { Histogram, type SparseHistogram } from './histogram.js'
import type { Variant } from '../variants.js'
import type { ClientKind } from '../load/clients.js'

const CALL_MS = 10_000

export interface GroupStats {
  wall: number
  cpuMicros: number
  userMicros: number
  connections: number
  /** Null when a node's server does not count the bytes it writes. */
  bytesWritten: number | null
  /** Deliveries by route, summed over the nodes; null when the server does not count them. */
  routes: Record<string, number> | null
  rss: number
  heapUsed: number
}

export class ServerGroup {
  readonly variant: Variant
  readonly nodes: Child[]
  urls: string[] = []
  /** Whether a scenario has run against these processes. */
  used = false

  constructor (variant: Variant, nodes: Child[]) {
    this.variant = variant
    this.nodes = nodes
  }

  async ready (timeoutMs: number): Promise<void> {
    const infos = await Promise.all(this.nodes.map((node) => node.ready<{ port: number }>(timeoutMs)))
    this.urls = infos.map((info) => this.variant.url(info.port))
  }

  async stats (command: 'stats' | 'gc' = 'stats'): Promise<GroupStats> {
    const all = await Promise.all(this.nodes.map((node) => node.call<ServerStats>(command, {}, CALL_MS)))
    return {
      wall: Math.max(...all.map((s) => s.wall)),
      cpuMicros: sum(all.map((s) => s.cpuMicros)),
      userMicros: sum(all.map((s) => s.userMicros)),
      connections: sum(all.map((s) => s.connections)),
      bytesWritten: all.some((s) => s.bytesWritten === null) ? null : sum(all.map((s) => s.bytesWritten as number)),
      routes: all.some((s) => s.routes === null) ? null : sumRoutes(all.map((s) => s.routes as Record<string, number>)),
      rss: sum(all.map((s) => s.memory.rss)),
      heapUsed: sum(all.map((s) => s.memory.heapUsed))
    }
  }

  /** Publications are made on the first node; the others receive them through their broker. */
  publish (args: PublishArgs): Promise<PublishResult> {
    return this.nodes[0].call<PublishResult>('publish', args as unknown as Record<string, unknown>, args.timeoutMs + CALL_MS)
  }

  /** Starts measuring the first node's event-loop delay. */
  async loopStart (): Promise<void> {
    await this.nodes[0].call('loopStart', {}, CALL_MS)
  }

  /** The first node's event-loop delay since loopStart. */
  loopStop (): Promise<LoopDelay> {
    return this.nodes[0].call<LoopDelay>('loopStop', {}, CALL_MS)
  }

  /** Polls until the servers count `expected` open connections; false at the deadline. */
  async waitConnections (expected: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      if ((await this.stats()).connections === expected) return true
      await sleep(25)
    }
    return false
  }

  async stop (): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.stop(3000)))
  }
}

export interface LoadPhase {
  /** Highest CPU use of one load-generator process, as a share of one core. */
  maxUtilization: number
  /** CPU use of each load-generator process, as a share of one core. */
  utilizations: number[]
  cpuMicros: number
}

export interface PoolOpenResult extends LoadPhase {
  opened: number
  failed: number
  firstError?: string
  wallMs: number
  connectLatency: Histogram
}

export interface PoolCollectResult extends LoadPhase {
  received: number
  expected: number
  firstWall: number
  lastWall: number
  latency: Histogram
  /** Per sequence number: [send time, latest arrival over all workers]. */
  seqTimes: Map<number, [number, number]>
  timedOut: boolean
}

export interface PoolRequestsResult extends LoadPhase {
  completed: number
  failed: number
  expected: number
  wallMs: number
  latency: Histogram
  timedOut: boolean
}

export class LoadPool {
  readonly workers: Child[]

  constructor (workers: Child[]) {
    this.workers = workers
  }

  get size (): number {
    return this.workers.length
  }

  async ready (timeoutMs: number): Promise<void> {
    await Promise.all(this.workers.map((w) => w.ready(timeoutMs)))
  }

  /** Opens `total` connections spread evenly over the workers, `concurrency` in flight in all. */
  async open (kind: ClientKind, urls: string[], total: number, options: { concurrency: number, topic?: string, deflate?: boolean, spreadSources?: boolean, timeoutMs: number }): Promise<PoolOpenResult> {
    const shares = split(total, this.size)
    const lanes = split(options.concurrency, this.size)
    let firstIndex = 0
    const calls = this.workers.map((worker, i) => {
      const args = { kind, urls, count: shares[i], concurrency: Math.max(1, lanes[i]), topic: options.topic, deflate: options.deflate, spreadSources: options.spreadSources, firstIndex, timeoutMs: options.timeoutMs }
      firstIndex += shares[i]
      return worker.call<OpenResult>('open', args, options.timeoutMs + CALL_MS)
    })
    const results = await Promise.all(calls)
    const start = Math.min(...results.map((r) => r.startWall))
    const end = Math.max(...results.map((r) => r.endWall))
    const latency = new Histogram()
    for (const r of results) latency.merge(r.connectLatency)
    return {
      opened: sum(results.map((r) => r.opened)),
      failed: sum(results.map((r) => r.failed)),
      firstError: results.find((r) => r.firstError !== undefined)?.firstError,
      wallMs: end - start,
      connectLatency: latency,
      cpuMicros: sum(results.map((r) => r.cpuMicros)),
      ...utilization(results.map((r) => [r.cpuMicros, r.endWall - r.startWall]))
    }
  }

  async arm (args: ArmArgs): Promise<void> {
    await Promise.all(this.workers.map((w) => w.call('arm', args as unknown as Record<string, unknown>, CALL_MS)))
  }

  async collect (timeoutMs: number): Promise<PoolCollectResult> {
    const results = await Promise.all(this.workers.map((w) => w.call<CollectResult>('collect', { timeoutMs }, timeoutMs + CALL_MS)))
    const latency = new Histogram()
    const seqTimes = new Map<number, [number, number]>()
    for (const r of results) {
      latency.merge(r.latency)
      for (const [seq, t, last] of r.seqTimes) {
        const seen = seqTimes.get(seq)
        if (seen === undefined || last > seen[1]) seqTimes.set(seq, [t, last])
      }
    }
    const withData = results.filter((r) => r.received > 0)
    return {
      received: sum(results.map((r) => r.received)),
      expected: sum(results.map((r) => r.expected)),
      firstWall: withData.length === 0 ? NaN : Math.min(...withData.map((r) => r.firstWall)),
      lastWall: withData.length === 0 ? NaN : Math.max(...withData.map((r) => r.lastWall)),
      latency,
      seqTimes,
      timedOut: results.some((r) => r.timedOut),
      cpuMicros: sum(results.map((r) => r.cpuMicros)),
      ...utilization(results.map((r) => [r.cpuMicros, r.endWall - r.armWall]))
    }
  }

  async requests (perClient: number, window: number, timeoutMs: number): Promise<PoolRequestsResult> {
    const results = await Promise.all(this.workers.map((w) => w.call<RequestsResult>('requests', { perClient, window, timeoutMs }, timeoutMs + CALL_MS)))
    const latency = new Histogram()
    for (const r of results) latency.merge(r.latency)
    const start = Math.min(...results.map((r) => r.startWall))
    const end = Math.max(...results.map((r) => r.endWall))
    return {
      completed: sum(results.map((r) => r.completed)),
      failed: sum(results.map((r) => r.failed)),
      expected: sum(results.map((r) => r.expected)),
      wallMs: end - start,
      latency,
      timedOut: results.some((r) => r.timedOut),
      cpuMicros: sum(results.map((r) => r.cpuMicros)),
      ...utilization(results.map((r) => [r.cpuMicros, r.endWall - r.startWall]))
    }
  }

  /** Starts round trips on a connection of the first worker's own (see worker.ts probeStart). */
  async probeStart (kind: ClientKind, url: string): Promise<void> {
    await this.workers[0].call('probeStart', { kind, url, timeoutMs: CALL_MS }, 2 * CALL_MS)
  }

  async probeStop (): Promise<{ latency: Histogram, failed: number }> {
    const r = await this.workers[0].call<{ latency: SparseHistogram, failed: number }>('probeStop', {}, CALL_MS)
    const latency = new Histogram()
    latency.merge(r.latency)
    return { latency, failed: r.failed }
  }

  /** Total CPU microseconds used so far by the load-generator processes. */
  async cpuMicros (): Promise<number> {
    const all = await Promise.all(this.workers.map((w) => w.call<{ cpuMicros: number }>('stats', {}, CALL_MS)))
    return sum(all.map((s) => s.cpuMicros))
  }

  async closeAll (timeoutMs = 5000): Promise<void> {
    await withTimeout(
      Promise.all(this.workers.map((w) => w.call('closeAll', { timeoutMs }, timeoutMs + CALL_MS))),
      timeoutMs + 2 * CALL_MS,
      'closing the load-generator connections took too long'
    )
  }

  async stop (): Promise<void> {
    await Promise.all(this.workers.map((w) => w.stop(3000)))
  }
}

/** Per-process CPU share of one core, from [cpu µs, wall ms] pairs. */
function utilization (pairs: Array<[number, number]>): { utilizations: number[], maxUtilization: number } {
  const utilizations = pairs.map(([cpu, wallMs]) => cpu / 1000 / Math.max(1, wallMs))
  return { utilizations, maxUtilization: Math.max(...utilizations) }
}

function sumRoutes (list: Array<Record<string, number>>): Record<string, number> {
  const total: Record<string, number> = {}
  for (const routes of list) for (const [route, n] of Object.entries(routes)) total[route] = (total[route] ?? 0) + n
  return total
}

function sum (values: number[]): number {
  let total = 0
  for (const v of values) total += v
  return total
}

/** Splits n into `parts` integers that differ by at most one. */
export function split (n: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(n / parts) + (i < n % parts ? 1 : 0))
}
