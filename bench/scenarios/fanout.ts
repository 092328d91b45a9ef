// Fan-out: N subscribers on one topic, M publications made by the server.
//
// Burst phase: publications are made as fast as the server loop allows (one per
// event-loop turn), which gives the delivery throughput and the server CPU spent
// per delivery, in all and in user space only. Its latency figures include the
// queueing of a saturated system.
//
// Paced phase: publications offered at a fixed rate in deliveries per second
// (`fanoutPacedRate`, the same for every variant), which gives latency when the
// server is not overloaded.
//
// `measureFanout` is shared with the compression scenario (deflate.ts).

import { BASELINE } from '../variants.js'
import { openChecked, PAD_LENGTH, loadOf, round, TOPIC, type Scenario, type ScenarioContext, type VariantResult } from './types.js'

export interface FanoutSpec {
  subscribers: number
  publications: number
  warmup: number
  /** Paced-phase publications; 0 skips the phase. */
  pacedPublications: number
  /** Offered load of the paced phase, deliveries per second. */
  pacedRate: number
  padLength: number
  padStyle: 'x' | 'text'
  /** Clients offer permessage-deflate. */
  deflate: boolean
}

export async function measureFanout (ctx: ScenarioContext, spec: FanoutSpec): Promise<VariantResult> {
  const { server, load, timeouts } = ctx
  const n = spec.subscribers
  const notes: string[] = []
  await openChecked(ctx, n, { concurrency: 100, topic: TOPIC, deflate: spec.deflate })

  // Long enough for the whole run at a (slow) 10,000 deliveries per second, never shorter than the mode's phase timeout.
  const phaseMs = (publications: number, intervalMs: number) => Math.max(timeouts.phaseMs, n * publications / 10, publications * intervalMs * 2)
  const publish = (count: number, intervalMs: number) => server.publish({
    topic: TOPIC, count, batch: 1, intervalMs, padLength: spec.padLength, padStyle: spec.padStyle, timeoutMs: phaseMs(count, intervalMs)
  })

  // Warm-up: lets the JIT compile the delivery path before anything is measured.
  await load.arm({ perClient: spec.warmup, trackSeq: 0 })
  await publish(spec.warmup, 0)
  await load.collect(phaseMs(spec.warmup, 0))

  // Burst.
  const before = await server.stats()
  await load.arm({ perClient: spec.publications, trackSeq: 0 })
  const published = await publish(spec.publications, 0)
  const burst = await load.collect(phaseMs(spec.publications, 0))
  const after = await server.stats()
  const burstMs = burst.lastWall - published.startWall
  const serverCpu = after.cpuMicros - before.cpuMicros
  const serverUser = after.userMicros - before.userMicros
  const deliveries = Math.max(1, burst.received)
  if (burst.received < burst.expected) notes.push(`burst: ${burst.received} of ${burst.expected} deliveries arrived before the timeout`)
  if (published.timedOut) notes.push('burst: the server stopped publishing at the timeout')

  const metrics: Record<string, number> = {
    deliveriesPerSec: Math.round(burst.received / (burstMs / 1000)),
    cpuPerDeliveryUs: round(serverCpu / deliveries, 3),
    userCpuPerDeliveryUs: round(serverUser / deliveries, 3),
    burstP50Ms: burst.latency.summaryMs().p50,
    burstP99Ms: burst.latency.summaryMs().p99,
    publishLoopMs: round(published.endWall - published.startWall, 1),
    burstMs: round(burstMs, 1),
    deliveries: burst.received
  }
  if (after.bytesWritten !== null && before.bytesWritten !== null) {
    metrics.wireBytesPerDelivery = round((after.bytesWritten - before.bytesWritten) / deliveries, 1)
  }
  if (after.routes !== null && before.routes !== null) {
    // Shows that the true frame-once server really wrote its frames directly (and how often ws's Sender was busy).
    const taken = Object.entries(after.routes).map(([route, n]) => [route, n - (before.routes?.[route] ?? 0)] as const).filter(([, n]) => n > 0)
    notes.push(`burst deliveries by route: ${taken.map(([route, n]) => `${route} ${n.toLocaleString('en-US')}`).join(', ')}`)
  }

  // Paced, at the same offered load for every variant.
  let pacedComplete = true
  if (spec.pacedPublications > 0) {
    const intervalMs = Math.max(0.05, n / spec.pacedRate * 1000)
    await load.arm({ perClient: spec.pacedPublications, trackSeq: 0 })
    await publish(spec.pacedPublications, intervalMs)
    const paced = await load.collect(phaseMs(spec.pacedPublications, intervalMs))
    pacedComplete = paced.received === paced.expected
    if (!pacedComplete) notes.push(`paced: ${paced.received} of ${paced.expected} deliveries arrived before the timeout`)
    notes.push(`paced phase: one publication every ${round(intervalMs, 2)} ms (${Math.round(spec.pacedRate).toLocaleString('en-US')} deliveries/s offered)`)
    if (paced.latency.negative > 0) notes.push(`${paced.latency.negative} negative latencies (clock disagreement) counted as 0`)
    // Near a server's own capacity, paced latency is queueing again: say so rather than compare it silently.
    const share = spec.pacedRate / metrics.deliveriesPerSec
    if (share > 0.7) notes.push(`paced rate is ${Math.round(share * 100)}% of this variant's burst throughput here: its paced latency includes queueing`)
    const p = paced.latency.summaryMs()
    metrics.pacedP50Ms = p.p50
    metrics.pacedP99Ms = p.p99
    metrics.offeredDeliveriesPerSec = Math.round(spec.pacedRate)
  }

  return {
    metrics,
    ...loadOf(burst),
    serverUtilization: round(serverCpu / 1000 / burstMs, 2),
    complete: burst.received === burst.expected && pacedComplete,
    notes
  }
}

export const fanout: Scenario = {
  id: 'fanout',
  title: (c) => `Fan-out: ${c.fanoutSubscribers.toLocaleString('en-US')} subscribers on one topic × ${c.fanoutPublications.toLocaleString('en-US')} publications (~100-byte messages); paced at ${c.fanoutPacedRate.toLocaleString('en-US')} deliveries/s`,
  description: 'Deliveries per second to the clients, server CPU time per delivery (user + system, and user space alone, from the server process\'s own cpuUsage), bytes written to the sockets per delivery, and latency from the send time embedded in each message: in the burst (as fast as possible, includes queueing) and at a fixed offered rate equal for all variants.',
  columns: [
    { key: 'deliveriesPerSec', label: 'deliveries/s', better: 'higher', digits: 0, ratioTo: [BASELINE], chart: 'Fan-out throughput, deliveries/s' },
    { key: 'cpuPerDeliveryUs', label: 'srv CPU µs/deliv', better: 'lower', digits: 2, ratioTo: [BASELINE], chart: 'Fan-out server CPU per delivery, µs' },
    { key: 'userCpuPerDeliveryUs', label: 'user µs/deliv', better: 'lower', digits: 2, ratioTo: [BASELINE], chart: 'Fan-out server user-space CPU per delivery, µs' },
    { key: 'burstP99Ms', label: 'burst p99 ms', better: 'lower', digits: 1 },
    { key: 'pacedP50Ms', label: 'paced p50 ms', better: 'lower', digits: 2 },
    { key: 'pacedP99Ms', label: 'paced p99 ms', better: 'lower', digits: 2, ratioTo: [BASELINE], chart: 'Fan-out p99 latency at a fixed offered rate, ms' }
  ],
  run: (ctx) => measureFanout(ctx, {
    subscribers: ctx.counts.fanoutSubscribers,
    publications: ctx.counts.fanoutPublications,
    warmup: ctx.counts.fanoutWarmup,
    pacedPublications: ctx.counts.fanoutPacedPublications,
    pacedRate: ctx.counts.fanoutPacedRate,
    padLength: PAD_LENGTH,
    padStyle: 'x',
    deflate: false
  })
}
