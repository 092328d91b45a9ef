// Seed figures, two small numbers that are easy to quote:
//  - broadcast to 100 connections: the time from the server's send timestamp to the
//    last of the 100 subscribers receiving the message, for isolated broadcasts
//    (one every few ms, so they do not overlap);
//  - 100 clients × 1,000 messages: every client sends its messages as echo requests
//    with a bounded number in flight; the time until all replies are in.

import { BASELINE } from '../variants.js'
import { percentileOf } from '../lib/histogram.js'
import { openChecked, PAD_LENGTH, loadOf, round, TOPIC, type Scenario } from './types.js'

export const seed: Scenario = {
  id: 'seed',
  title: (c) => `Seed figures: broadcast to ${c.seedBroadcastClients} connections; ${c.seedInboundClients} clients × ${c.seedInboundMessages.toLocaleString('en-US')} messages`,
  description: 'Broadcast: time until the last of the subscribers has a message (median and p99 over isolated broadcasts). Messages: wall time for every client to send its messages (as echo requests, a bounded window in flight) and get every reply, and the resulting messages per second.',
  columns: [
    { key: 'broadcastP50Ms', label: 'bcast100 p50 ms', better: 'lower', digits: 2, ratioTo: [BASELINE], chart: 'Broadcast to 100 connections, median ms' },
    { key: 'broadcastP99Ms', label: 'bcast100 p99 ms', better: 'lower', digits: 2 },
    { key: 'inboundTotalMs', label: '100×msgs total ms', better: 'lower', digits: 0, ratioTo: [BASELINE] },
    { key: 'inboundPerSec', label: 'msgs/s', better: 'higher', digits: 0 }
  ],
  async run (ctx) {
    const { counts, load, server, timeouts } = ctx
    const notes: string[] = []
    const clients = Math.max(counts.seedBroadcastClients, counts.seedInboundClients)
    await openChecked(ctx, clients, { concurrency: 50, topic: TOPIC })
    const publish = (count: number, intervalMs: number) => server.publish({ topic: TOPIC, count, batch: 1, intervalMs, padLength: PAD_LENGTH, timeoutMs: timeouts.phaseMs })

    await load.arm({ perClient: 10, trackSeq: 0 })
    await publish(10, 1)
    await load.collect(timeouts.phaseMs)

    const b = counts.seedBroadcasts
    await load.arm({ perClient: b, trackSeq: b })
    await publish(b, counts.seedBroadcastIntervalMs)
    const broadcast = await load.collect(timeouts.phaseMs)
    const durations = [...broadcast.seqTimes.values()].map(([t, last]) => last - t)
    if (broadcast.received < broadcast.expected) notes.push(`broadcast: ${broadcast.received} of ${broadcast.expected} deliveries arrived`)
    const overlapping = durations.filter((d) => d > counts.seedBroadcastIntervalMs).length
    if (overlapping > 0) notes.push(`${overlapping} broadcasts took longer than the ${counts.seedBroadcastIntervalMs} ms between them`)

    await load.requests(20, 10, timeouts.phaseMs)
    const before = await server.stats()
    const inbound = await load.requests(counts.seedInboundMessages, counts.seedInboundWindow, timeouts.phaseMs)
    const after = await server.stats()
    if (inbound.completed < inbound.expected) notes.push(`messages: ${inbound.completed} of ${inbound.expected} answered`)
    return {
      metrics: {
        broadcastP50Ms: round(percentileOf(durations, 50), 3),
        broadcastP99Ms: round(percentileOf(durations, 99), 3),
        inboundTotalMs: round(inbound.wallMs, 1),
        inboundPerSec: Math.round(inbound.completed / (inbound.wallMs / 1000)),
        inboundCpuPerMessageUs: round((after.cpuMicros - before.cpuMicros) / Math.max(1, inbound.completed), 2)
      },
      ...loadOf(inbound),
      serverUtilization: round((after.cpuMicros - before.cpuMicros) / 1000 / inbound.wallMs, 2),
      complete: broadcast.received === broadcast.expected && inbound.completed === inbound.expected,
      notes
    }
  }
}
