// This plugin (fastify-realtime), as an application would use it: one topic pattern
// with a message schema, one request route with data and reply schemas.
// plugin-metrics.ts runs the same server with `metrics` on.
import Fastify from 'fastify'
import { Type } from '@sinclair/typebox'
import type { RealtimeOptions } from '../../lib/index.js'
import { plugin } from '../package.js'
import { bytesWrittenBy, runServer, type BenchServer } from './harness.js'
import { BENCH_DEFLATE_ONCE } from './deflate.js'

export async function startPlugin (extra: RealtimeOptions = {}): Promise<BenchServer> {
  const app = Fastify()
  await app.register(plugin.default, {
    ...extra,
    path: '/ws',
    heartbeat: { interval: 25000, timeout: 10000 },
    // Every bench client comes from 127.0.0.1 and sends as fast as it can: the
    // per-connection rate limit and the per-IP connection cap would refuse that
    // load, so they are raised out of the way. Their checks still run.
    rateLimit: { rate: 1e9, burst: 1e9 },
    maxConnectionsPerIp: 1_000_000,
    maxConnections: 1_000_000,
    // Accepted only when a client offers it (the deflate scenario): each publication
    // is compressed once, with the same threshold and zlib level as the others use.
    compression: BENCH_DEFLATE_ONCE
  })
  app.realtime.topic('bench/:name', {
    message: Type.Object({ t: Type.Number(), seq: Type.Integer(), pad: Type.String() })
  })
  app.realtime.route({
    type: 'echo',
    schema: {
      data: Type.Object({ t: Type.Number(), text: Type.String() }),
      reply: Type.Object({ t: Type.Number(), text: Type.String() })
    },
    handler: (data) => data
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  let failures = 0
  return {
    port,
    publish (topic, message) {
      app.realtime.publish(topic, message).catch((err) => {
        if (failures++ === 0) console.error('[bench server plugin] publish failed:', err)
      })
    },
    connections: () => app.realtime.stats().connections.active,
    bytesWritten: () => bytesWrittenBy(app.websocketServer.clients),
    close: () => app.close()
  }
}

// Run directly (not imported by plugin-metrics.ts).
if (process.argv[1]?.endsWith('plugin.ts') === true) runServer('plugin', () => startPlugin())
