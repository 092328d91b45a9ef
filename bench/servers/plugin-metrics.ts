// The plugin server of plugin.ts with Prometheus metrics on (`metrics`, its own
// registry): what observability costs on fan-out and request/response.
import { Registry } from 'prom-client'
import { startPlugin } from './plugin.js'
import { runServer } from './harness.js'

runServer('plugin-metrics', () => startPlugin({ metrics: { registry: new Registry() } }))
