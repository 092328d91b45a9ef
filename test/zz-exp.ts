import Fastify from 'fastify'
import { WebSocket } from 'ws'
import realtime from '/work/wt12/lib/index.js'
const mode = process.argv[2]
const app = Fastify({ logger: { level: 'warn' } })
if (mode === 'two') {
  app.register(async (a) => { await a.register(realtime, { path: '/a' }) })
  app.register(async (b) => { await b.register(realtime, { path: '/b' }) })
} else {
  app.register(async (a) => { await a.register(realtime, { path: '/a' }) })
}
await app.listen({ port: 0, host: '127.0.0.1' })
const port = (app.server.address() as any).port
for (const p of (process.argv[3] ?? '/a,/nope').split(',')) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${p}`, 'realtime.v1')
  const r = await new Promise((res) => { ws.on('open', () => res('open')); ws.on('error', (e) => res('error ' + e.message)) })
  console.log(p, r)
  ws.close()
}
const h = (process as any)._getActiveHandles(); console.log('handles', h.map((x: any) => x.constructor.name + (x.remotePort ? ':' + x.remotePort : '')))
const timer = setTimeout(() => { console.log('CLOSE HANGS'); process.exit(1) }, 3000)
await app.close()
clearTimeout(timer)
console.log('closed')
