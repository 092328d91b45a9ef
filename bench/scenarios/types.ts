// What a scenario is: a driver run in the orchestrator, once per variant, that uses
// the variant's server processes and the shared load generators, and returns
// figures named by its columns.

import type { LoadPhase, LoadPool, ServerGroup } from '../lib/pool.js'
import type { Variant } from '../variants.js'

export interface Counts {
  fanoutSubscribers: number
  fanoutPublications: number
  fanoutWarmup: number
  /** Publications in the paced (latency) phase of fan-out. */
  fanoutPacedPublications: number
  /** Offered load of the paced phase, deliveries per second (the same for every variant). */
  fanoutPacedRate: number
  deflateSubscribers: number
  deflatePublications: number
  deflateWarmup: number
  /** Characters of text in each compressed-scenario publication. */
  deflatePadLength: number
  memoryConnections: number
  reqresClients: number
  reqresRounds: number
  connectConnections: number
  /** Connections opened and closed before the measured ones, so the servers' code is compiled (JIT) by then. */
  connectWarmup: number
  connectConcurrency: number
  seedBroadcastClients: number
  seedBroadcasts: number
  seedBroadcastIntervalMs: number
  seedInboundClients: number
  seedInboundMessages: number
  seedInboundWindow: number
  /** Idle subscribed connections of the scale scenario (default: what the fd limit allows). */
  scaleConnections: number
  /** Publications of its sustained fan-out. */
  scalePublications: number
  /** Ms of its idle window (longer than the plugin's 25 s heartbeat interval). */
  scaleIdleMs: number
}

export interface Timeouts {
  /** Opening every connection of a scenario. */
  openMs: number
  /** Waiting for every delivery / reply of one measured phase. */
  phaseMs: number
}

export interface VariantResult {
  metrics: Record<string, number>
  /** CPU use of each load-generator process during the measured phase (1 = one full core). */
  loadUtilization: number[] | null
  /** Server CPU use during the measured phase (1 = one full core). */
  serverUtilization: number | null
  /** True when a load generator used >= 90% of a core: figures may be capped by the client side. */
  loadSaturated: boolean
  /** False when some expected delivery, reply or connection did not happen. */
  complete: boolean
  notes: string[]
  error?: string
  /** Share of the whole machine's CPU used by processes outside the bench while this ran (Linux only). */
  otherCpuShare?: number
  /** With --repeat: the lowest and highest value of each figure over the runs. */
  spread?: Record<string, [number, number]>
}

export interface Column {
  key: string
  label: string
  better: 'higher' | 'lower'
  digits: number
  /** Variant ids this figure is also given as a ratio to. */
  ratioTo?: string[]
  /** Title of a chart panel for this figure, if it is charted. */
  chart?: string
  unit?: string
}

export interface ScenarioContext {
  mode: 'quick' | 'full'
  counts: Counts
  timeouts: Timeouts
  variant: Variant
  server: ServerGroup
  load: LoadPool
  /** This scenario's latest result for the baseline variant, when it has already run in this round or an earlier one. */
  baseline: VariantResult | undefined
  log: (message: string) => void
}

export interface Scenario {
  id: string
  title: (counts: Counts) => string
  /** What the figures mean, for the README and the JSON. */
  description: string
  columns: Column[]
  /** Only these variants run it (the baseline always does); all when absent. */
  variants?: string[]
  /** Run against freshly started server processes (restarted if a scenario already used them). */
  freshServer?: boolean
  /** Run only when named with --scenarios (long, or needing a raised fd limit). */
  explicit?: boolean
  run: (ctx: ScenarioContext) => Promise<VariantResult>
}

export const SATURATED = 0.9
export const TOPIC = 'bench/a'
export const PAD_LENGTH = 60

/** Opens `count` connections and checks the server sees them all; throws otherwise. */
export async function openChecked (ctx: ScenarioContext, count: number, options: { concurrency: number, topic?: string, deflate?: boolean, spreadSources?: boolean }) {
  // At least 10 ms per connection: 20,000 of them take longer than quick mode's phase timeout on a busy machine.
  const result = await ctx.load.open(ctx.variant.client, ctx.server.urls, count, { ...options, timeoutMs: Math.max(ctx.timeouts.openMs, count * 10) })
  if (result.opened !== count) {
    throw new Error(`opened ${result.opened} of ${count} connections (${result.failed} failed${result.firstError === undefined ? '' : `: ${result.firstError}`})`)
  }
  if (!await ctx.server.waitConnections(count, 10_000)) {
    throw new Error(`the server does not count ${count} connections`)
  }
  return result
}

/** The load-generator figures of a measured phase. */
export function loadOf (phase: LoadPhase): { loadUtilization: number[], loadSaturated: boolean } {
  return { loadUtilization: phase.utilizations.map((u) => round(u, 2)), loadSaturated: phase.maxUtilization >= SATURATED }
}

export function round (value: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(value * f) / f
}
