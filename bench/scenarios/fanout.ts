// Fan-out: N subscribers on one topic, M publications made by the server.
//
// Burst phase: publications are made as fast as the server loop allows (one per
// event-loop turn), which gives the delivery throughput and the server CPU spent
// per delivery. Its latency figures include the queueing of a saturated system.
//
// Paced phase: the same publications offered at a fixed rate, equal for every
// variant (a share of the raw ws baseline's burst throughput measured in this run),
// which gives latency when nobody is overloaded.

import { BASELINE } from '../variants.js'
import { openChecked, PAD_LENGTH, loadOf, round, TOPIC, type Scenario } from './types.js'

export const fanout: Scenario = {
  id: 'fanout',
  title: (c) => `Fan-out: ${c.fanoutSubscribers.toLocaleString('en-US')} subscribers on one topic × ${c.fanoutPublications.toLocaleString('en-US')} publications (~100-byte messages)`,
  description: 'Deliveries per second to the clients, server CPU time per delivery (from the server process\'s own cpuUsage), and latency from the send time embedded in each message: in the burst (as fast as possible, includes queueing) and at a paced rate equal for all variants.',
  columns: [
    { key: 'deliveriesPerSec', label: 'deliveries/s', better: 'higher', digits: 0, ratioTo: [BASELINE], chart: 'Fan-out throughput, deliveries/s' },
    { key: 'cpuPerDeliveryUs', label: 'srv CPU µs/deliv', better: 'lower', digits: 2, ratioTo: [BASELINE], chart: 'Fan-out server CPU per delivery, µs' },
    { key: 'burstP50Ms', label: 'burst p50 ms', better: 'lower', digits: 1 },
    { key: 'burstP99Ms', label: 'burst p99 ms', better: 'lower', digits: 1 },
    { key: 'pacedP50Ms', label: 'paced p50 ms', better: 'lower', digits: 2 },
    { key: 'pacedP99Ms', label: 'paced p99 ms', better: 'lower', digits: 2, chart: 'Fan-out p99 latency at equal load, ms' }
  ],
  async run (ctx) {
    const { counts, server, load, timeouts } = ctx
    const n = counts.fanoutSubscribers
    const notes: string[] = []
    await openChecked(ctx, n, { concurrency: 100, topic: TOPIC })

    // Long enough for the whole run at a (slow) 10,000 deliveries per second, never shorter than the mode's phase timeout.
    const phaseMs = (publications: number, intervalMs: number) => Math.max(timeouts.phaseMs, n * publications / 10, publications * intervalMs * 2)
    const publish = (count: number, intervalMs: number) => server.publish({ topic: TOPIC, count, batch: 1, intervalMs, padLength: PAD_LENGTH, timeoutMs: phaseMs(count, intervalMs) })

    // Warm-up: lets the JIT compile the delivery path before anything is measured.
    await load.arm({ perClient: counts.fanoutWarmup, trackSeq: 0 })
    await publish(counts.fanoutWarmup, 0)
    await load.collect(phaseMs(counts.fanoutWarmup, 0))

    // Burst.
    const before = await server.stats()
    await load.arm({ perClient: counts.fanoutPublications, trackSeq: 0 })
    const published = await publish(counts.fanoutPublications, 0)
    const burst = await load.collect(phaseMs(counts.fanoutPublications, 0))
    const after = await server.stats()
    const burstMs = burst.lastWall - published.startWall
    const serverCpu = after.cpuMicros - before.cpuMicros
    if (burst.received < burst.expected) notes.push(`burst: ${burst.received} of ${burst.expected} deliveries arrived before the timeout`)
    if (published.timedOut) notes.push('burst: the server stopped publishing at the timeout')

    // Paced, at the same offered load for every variant.
    const baselineRate = ctx.baseline?.metrics.deliveriesPerSec ?? burst.received / (burstMs / 1000)
    const offered = baselineRate * counts.fanoutPacedShare
    const intervalMs = Math.max(0.05, n / offered * 1000)
    await load.arm({ perClient: counts.fanoutPacedPublications, trackSeq: 0 })
    await publish(counts.fanoutPacedPublications, intervalMs)
    const paced = await load.collect(phaseMs(counts.fanoutPacedPublications, intervalMs))
    if (paced.received < paced.expected) notes.push(`paced: ${paced.received} of ${paced.expected} deliveries arrived before the timeout`)
    notes.push(`paced phase: one publication every ${round(intervalMs, 2)} ms (${Math.round(offered).toLocaleString('en-US')} deliveries/s offered)`)
    if (paced.latency.negative > 0) notes.push(`${paced.latency.negative} negative latencies (clock disagreement) counted as 0`)

    const b = burst.latency.summaryMs()
    const p = paced.latency.summaryMs()
    return {
      metrics: {
        deliveriesPerSec: Math.round(burst.received / (burstMs / 1000)),
        cpuPerDeliveryUs: round(serverCpu / Math.max(1, burst.received), 3),
        burstP50Ms: b.p50,
        burstP99Ms: b.p99,
        pacedP50Ms: p.p50,
        pacedP99Ms: p.p99,
        publishLoopMs: round(published.endWall - published.startWall, 1),
        burstMs: round(burstMs, 1),
        offeredDeliveriesPerSec: Math.round(offered),
        deliveries: burst.received
      },
      ...loadOf(burst),
      serverUtilization: round(serverCpu / 1000 / burstMs, 2),
      complete: burst.received === burst.expected && paced.received === paced.expected,
      notes
    }
  }
}
