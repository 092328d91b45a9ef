// Request/response: C clients each make R round trips one after the other through
// a route with a validated schema (the plugin's `echo` route with TypeBox schemas;
// JSON.parse plus typeof checks in the hand-written servers; an acknowledgement in
// Socket.IO).

import { BASELINE } from '../variants.js'
import { openChecked, loadOf, round, type Scenario } from './types.js'

export const reqres: Scenario = {
  id: 'reqres',
  title: (c) => `Request/response: ${c.reqresClients} clients × ${c.reqresRounds.toLocaleString('en-US')} sequential round trips through a validated route`,
  description: 'Round trips per second over all clients (each client waits for its reply before the next request), the round-trip latency seen by the client, and server CPU time per round trip.',
  columns: [
    { key: 'roundTripsPerSec', label: 'round trips/s', better: 'higher', digits: 0, ratioTo: [BASELINE, 'fastify-websocket'], chart: 'Request/response, round trips/s' },
    { key: 'p50Ms', label: 'p50 ms', better: 'lower', digits: 2 },
    { key: 'p99Ms', label: 'p99 ms', better: 'lower', digits: 2 },
    { key: 'cpuPerRoundTripUs', label: 'srv CPU µs/rt', better: 'lower', digits: 1, ratioTo: [BASELINE] }
  ],
  async run (ctx) {
    const { counts, load, server, timeouts } = ctx
    await openChecked(ctx, counts.reqresClients, { concurrency: 50 })
    await load.requests(20, 1, timeouts.phaseMs)
    const before = await server.stats()
    const r = await load.requests(counts.reqresRounds, 1, timeouts.phaseMs)
    const after = await server.stats()
    const cpu = after.cpuMicros - before.cpuMicros
    const latency = r.latency.summaryMs()
    const notes: string[] = []
    if (r.failed > 0) notes.push(`${r.failed} requests answered with an error`)
    if (r.timedOut) notes.push(`${r.completed + r.failed} of ${r.expected} requests answered before the timeout`)
    return {
      metrics: {
        roundTripsPerSec: Math.round(r.completed / (r.wallMs / 1000)),
        p50Ms: latency.p50,
        p99Ms: latency.p99,
        cpuPerRoundTripUs: round(cpu / Math.max(1, r.completed), 2),
        wallMs: round(r.wallMs, 1)
      },
      ...loadOf(r),
      serverUtilization: round(cpu / 1000 / r.wallMs, 2),
      complete: r.completed === r.expected,
      notes
    }
  }
}
