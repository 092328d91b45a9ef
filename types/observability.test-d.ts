// Type tests of metrics, diagnostics channels and the dashboard entry.
import Fastify from 'fastify'
import { Registry } from 'prom-client'
import realtime, { diagnosticsChannels, handlerChannel, type HandlerTrace } from '../lib/index.js'
import realtimeDashboard, { DASHBOARD_TOPIC, type Snapshot } from '../lib/dashboard/index.js'

function expectType<T> (_value: T): void {}

const app = Fastify()
await app.register(realtime, { metrics: true })
await app.register(realtime, { metrics: { registry: new Registry(), prefix: 'chat_' } })
// @ts-expect-error: the prefix is a string
await app.register(realtime, { metrics: { prefix: 1 } })

await app.register(realtimeDashboard, { path: '/ops/realtime', authorize: (request) => request.headers.authorization === 'Bearer ops', interval: 2000 })
await app.register(realtimeDashboard, { authorize: async () => true, authToken: () => 'token' })
// @ts-expect-error: authorize is required
await app.register(realtimeDashboard, { path: '/dashboard' })
expectType<string>(DASHBOARD_TOPIC)

handlerChannel.subscribe({
  start (trace) { expectType<HandlerTrace>(trace); expectType<string>(trace.route); expectType<string>(trace.connectionId) },
  end () {},
  asyncStart () {},
  asyncEnd () {},
  error (trace) { expectType<unknown>(trace.error) }
})
expectType<boolean>(diagnosticsChannels.connectionOpen.hasSubscribers)

declare const snapshot: Snapshot
expectType<number>(snapshot.connections.open)
expectType<number | null>(snapshot.latency.p99)
