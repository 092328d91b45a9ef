// Memory: K idle connections, each subscribed to one topic. The server collects
// garbage (it runs with --expose-gc) before and after they are opened; the growth
// of its RSS and of its V8 heap, divided by K, is the cost of one connection.

import { sleep } from '../lib/clock.js'
import { BASELINE } from '../variants.js'
import { openChecked, round, TOPIC, type Scenario } from './types.js'

const KB = 1024

export const memory: Scenario = {
  id: 'memory',
  title: (c) => `Memory: ${c.memoryConnections.toLocaleString('en-US')} idle connections, each subscribed to one topic`,
  description: 'Growth of the server\'s RSS and V8 heap (heapUsed) per connection, each measured after global.gc() against a baseline taken just before connecting (after a small warm-up).',
  columns: [
    { key: 'rssPerConnKB', label: 'RSS KB/conn', better: 'lower', digits: 1, ratioTo: [BASELINE], chart: 'Server RSS per idle connection, KB' },
    { key: 'heapPerConnKB', label: 'heap KB/conn', better: 'lower', digits: 1, ratioTo: [BASELINE] }
  ],
  // Memory a process has used is rarely given back to the OS: a server that has
  // already held connections would make the RSS growth look smaller than it is.
  freshServer: true,
  async run (ctx) {
    const k = ctx.counts.memoryConnections
    // Warm-up: the first connections load and compile code that every later one shares.
    await openChecked(ctx, 20, { concurrency: 20, topic: TOPIC })
    await ctx.load.closeAll()
    await ctx.server.waitConnections(0, 10_000)
    const base = await ctx.server.stats('gc')
    const opened = await openChecked(ctx, k, { concurrency: 200, topic: TOPIC })
    await sleep(200)
    const after = await ctx.server.stats('gc')
    return {
      metrics: {
        rssPerConnKB: round((after.rss - base.rss) / k / KB, 2),
        heapPerConnKB: round((after.heapUsed - base.heapUsed) / k / KB, 2),
        baselineRssMB: round(base.rss / KB / KB, 1),
        rssMB: round(after.rss / KB / KB, 1),
        openMs: round(opened.wallMs, 1)
      },
      loadUtilization: null,
      serverUtilization: null,
      loadSaturated: false,
      complete: true,
      notes: []
    }
  }
}
