// Scale: as many idle subscribed connections as one server process may hold (its
// file-descriptor limit, or --set scaleConnections=N), the clients spread over loopback
// source addresses (127.0.0.0/8) in the load-generator processes. Then, in order:
//
//  1. memory: RSS and V8 heap growth per connection (after global.gc()), beside the
//     kernel's TCP memory (both ends of every loopback connection, /proc/net/sockstat);
//  2. idle: server CPU per second and the longest event-loop block over `scaleIdleMs`
//     (longer than the plugin's 25 s heartbeat interval, so every connection is pinged);
//  3. one publication to all: time from publish to the last delivery;
//  4. sustained fan-out: `scalePublications` publications as fast as the server takes
//     them, while a separate connection makes one request at a time: event-loop delay
//     p50/p99/max, that connection's round-trip p50/p99, and deliveries per second.
//
// Only when named (--scenarios scale): it takes minutes and a raised `ulimit -n`.

import { readFileSync } from 'node:fs'
import { sleep } from '../lib/clock.js'
import { BASELINE } from '../variants.js'
import { openChecked, round, TOPIC, type Scenario } from './types.js'

const KB = 1024

/** Kernel memory of TCP sockets in bytes (Linux: /proc/net/sockstat, in pages); null elsewhere. */
function kernelTcpBytes (): number | null {
  try {
    const line = readFileSync('/proc/net/sockstat', 'utf8').split('\n').find((l) => l.startsWith('TCP:'))
    const pages = Number(/ mem (\d+)/.exec(line ?? '')?.[1])
    return Number.isFinite(pages) ? pages * 4096 : null
  } catch {
    return null
  }
}

export const scale: Scenario = {
  id: 'scale',
  title: (c) => `Scale: ${c.scaleConnections.toLocaleString('en-US')} idle subscribed connections on one server process; ${c.scalePublications} publications to all of them`,
  description: 'At the connection count one process can hold: RSS and heap per connection, kernel TCP memory per connection (both ends), idle CPU per second and the longest event-loop block at idle (heartbeats included), time from one publication to its last delivery, and during a sustained fan-out to all: event-loop delay p99/max, round-trip p99 of requests on a separate connection, deliveries per second.',
  columns: [
    { key: 'rssPerConnKB', label: 'RSS KB/conn', better: 'lower', digits: 2, ratioTo: [BASELINE] },
    { key: 'heapPerConnKB', label: 'heap KB/conn', better: 'lower', digits: 2, ratioTo: [BASELINE] },
    { key: 'idleCpuMsPerSec', label: 'idle CPU ms/s', better: 'lower', digits: 2 },
    { key: 'idleLoopMaxMs', label: 'idle max block ms', better: 'lower', digits: 1 },
    { key: 'oneToAllMs', label: 'publish→last ms', better: 'lower', digits: 0, ratioTo: [BASELINE] },
    { key: 'loopP99Ms', label: 'fan-out loop p99 ms', better: 'lower', digits: 1 },
    { key: 'loopMaxMs', label: 'fan-out loop max ms', better: 'lower', digits: 0 },
    { key: 'probeP99Ms', label: 'other conn rt p99 ms', better: 'lower', digits: 1 },
    { key: 'deliveriesPerSec', label: 'deliveries/s', better: 'higher', digits: 0, ratioTo: [BASELINE] }
  ],
  variants: ['plugin', 'plugin-unsliced', 'fastify-websocket', 'socketio'],
  freshServer: true,
  explicit: true,
  async run (ctx) {
    const { counts, server, load, variant } = ctx
    const n = counts.scaleConnections
    const notes: string[] = []
    const openMs = Math.max(ctx.timeouts.openMs, n * 10)
    // Warm-up: the first connections load and compile code that every later one shares.
    await openChecked(ctx, 20, { concurrency: 20, topic: TOPIC })
    await load.closeAll()
    await server.waitConnections(0, 10_000)

    // 1. Memory.
    const base = await server.stats('gc')
    const kernelBefore = kernelTcpBytes()
    const opened = await load.open(variant.client, server.urls, n, { concurrency: 200, topic: TOPIC, spreadSources: true, timeoutMs: openMs })
    if (opened.opened !== n) throw new Error(`opened ${opened.opened} of ${n} connections (${opened.failed} failed${opened.firstError === undefined ? '' : `: ${opened.firstError}`})`)
    if (!await server.waitConnections(n, 30_000)) throw new Error(`the server does not count ${n} connections`)
    const after = await server.stats('gc')
    const kernelAfter = kernelTcpBytes()

    // 2. Idle, heartbeats included.
    await server.loopStart()
    const idle0 = await server.stats()
    await sleep(counts.scaleIdleMs)
    const idle1 = await server.stats()
    const idleLoop = await server.loopStop()
    const idleMs = idle1.wall - idle0.wall

    // 3. One publication to all.
    const phaseMs = Math.max(ctx.timeouts.phaseMs, n * counts.scalePublications / 5)
    await load.arm({ perClient: 1, trackSeq: 1 })
    const one = await server.publish({ topic: TOPIC, count: 1, batch: 1, intervalMs: 0, padLength: 60, timeoutMs: phaseMs })
    const oneResult = await load.collect(phaseMs)
    const oneTimes = oneResult.seqTimes.get(0)
    if (oneResult.received < oneResult.expected) notes.push(`one publication: ${oneResult.received} of ${oneResult.expected} deliveries arrived`)

    // 4. Sustained fan-out, with requests on a separate connection.
    await load.probeStart(variant.client, server.urls[0])
    await sleep(300)
    await server.loopStart()
    await load.arm({ perClient: counts.scalePublications, trackSeq: 0 })
    const published = await server.publish({ topic: TOPIC, count: counts.scalePublications, batch: 1, intervalMs: 0, padLength: 60, timeoutMs: phaseMs })
    const burst = await load.collect(phaseMs)
    const loop = await server.loopStop()
    const probe = await load.probeStop()
    if (burst.received < burst.expected) notes.push(`sustained fan-out: ${burst.received} of ${burst.expected} deliveries arrived before the timeout`)
    if (probe.latency.count < 5) notes.push(`only ${probe.latency.count} round trips on the separate connection during the fan-out`)
    const burstMs = burst.lastWall - published.startWall

    const metrics: Record<string, number> = {
      connections: n,
      rssPerConnKB: round((after.rss - base.rss) / n / KB, 2),
      heapPerConnKB: round((after.heapUsed - base.heapUsed) / n / KB, 2),
      openSec: round(opened.wallMs / 1000, 1),
      idleCpuMsPerSec: round((idle1.cpuMicros - idle0.cpuMicros) / 1000 / (idleMs / 1000), 2),
      idleLoopMaxMs: round(idleLoop.maxMs, 1),
      idleLoopP99Ms: round(idleLoop.p99Ms, 1),
      oneToAllMs: oneTimes === undefined ? NaN : round(oneTimes[1] - one.startWall, 1),
      loopP50Ms: round(loop.p50Ms, 1),
      loopP99Ms: round(loop.p99Ms, 1),
      loopMaxMs: round(loop.maxMs, 1),
      probeP50Ms: probe.latency.summaryMs().p50,
      probeP99Ms: probe.latency.summaryMs().p99,
      probeRoundTrips: probe.latency.count,
      deliveriesPerSec: Math.round(burst.received / (burstMs / 1000)),
      rssMB: round(after.rss / KB / KB, 1)
    }
    if (kernelBefore !== null && kernelAfter !== null) {
      // Both ends of each loopback connection live in this kernel: the server's half is about half of it.
      metrics.kernelTcpPerConnKB = round((kernelAfter - kernelBefore) / n / KB, 2)
    }
    notes.push(`idle window ${round(idleMs / 1000, 1)} s; ${n.toLocaleString('en-US')} connections opened in ${round(opened.wallMs / 1000, 1)} s from loopback sources 127.1.0.1 onwards`)
    return {
      metrics,
      loadUtilization: null,
      serverUtilization: null,
      loadSaturated: false,
      complete: oneResult.received === oneResult.expected && burst.received === burst.expected,
      notes
    }
  }
}
