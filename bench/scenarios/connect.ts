// Connection rate: open C connections, a bounded number at a time, and count how
// many the server accepts per second. A connection counts once it is usable: open
// for raw ws, `welcome` received for the plugin, `connect` for Socket.IO.

import { BASELINE } from '../variants.js'
import { openChecked, loadOf, round, type Scenario } from './types.js'

export const connect: Scenario = {
  id: 'connect',
  title: (c) => `Connection rate: ${c.connectConnections.toLocaleString('en-US')} connections, ${c.connectConcurrency} opening at a time`,
  description: 'Connections made usable per second, the time each took from the start of its handshake, and server CPU time per accepted connection.',
  columns: [
    { key: 'connectionsPerSec', label: 'conns/s', better: 'higher', digits: 0, ratioTo: [BASELINE], chart: 'Connections accepted per second' },
    { key: 'p99Ms', label: 'connect p99 ms', better: 'lower', digits: 1 },
    { key: 'cpuPerConnUs', label: 'srv CPU µs/conn', better: 'lower', digits: 0, ratioTo: [BASELINE] }
  ],
  async run (ctx) {
    const { counts, load, server } = ctx
    // Warm: the first few hundred upgrades of a process also pay for compiling its code
    // (more code for a Fastify plugin than for raw ws), which is not the steady rate.
    await openChecked(ctx, counts.connectWarmup, { concurrency: counts.connectConcurrency })
    await load.closeAll()
    await server.waitConnections(0, 10_000)
    const before = await server.stats()
    // Past 10,000 each connection comes from a loopback source of its own: from 127.0.0.1
    // alone, the variants run later would find the ephemeral ports of the earlier ones
    // still in TIME_WAIT, and be measured on the kernel's port search instead.
    const r = await openChecked(ctx, counts.connectConnections, { concurrency: counts.connectConcurrency, spreadSources: counts.connectConnections > 10_000 })
    const after = await server.stats()
    const cpu = after.cpuMicros - before.cpuMicros
    return {
      metrics: {
        connectionsPerSec: Math.round(r.opened / (r.wallMs / 1000)),
        p50Ms: r.connectLatency.summaryMs().p50,
        p99Ms: r.connectLatency.summaryMs().p99,
        cpuPerConnUs: Math.round(cpu / r.opened),
        wallMs: round(r.wallMs, 1)
      },
      ...loadOf(r),
      serverUtilization: round(cpu / 1000 / r.wallMs, 2),
      complete: true,
      notes: []
    }
  }
}
