// @fastify/websocket registered after fastify-realtime (lib/plugin/websocket-order.ts): either
// order works. Before, the second registration threw FST_ERR_DEC_ALREADY_PRESENT from inside
// avvio and the process died of an uncaught exception.
import t from 'tap'
import Fastify from 'fastify'
import websocket from '@fastify/websocket'
import { WebSocket } from 'ws'
import realtime from '../../lib/index.js'
import { connect, watchCrashes } from '../fixtures/helpers.js'

function url (app: ReturnType<typeof Fastify>, path: string): string {
  return `ws://127.0.0.1:${(app.server.address() as { port: number }).port}${path}`
}

/** Opens a plain WebSocket and resolves with its first message. */
function firstMessage (address: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(address)
    ws.once('message', (data) => { resolve(String(data)); ws.close() })
    ws.once('error', reject)
  })
}

t.test('@fastify/websocket registered after the plugin, without options: both the plugin and the app\'s own WebSocket routes work', async (t) => {
  const crashes = watchCrashes(t)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime)
  await app.register(websocket)
  app.get('/echo', { websocket: true }, (socket) => { socket.send('hello from the app') })
  // In an encapsulated context too: it inherits the app's register.
  await app.register(async (child) => {
    await child.register(websocket)
    child.get('/child', { websocket: true }, (socket) => { socket.send('hello from a context') })
  })
  await app.listen({ port: 0, host: '127.0.0.1' })

  const client = await connect(t, url(app, '/ws'))
  client.send({ type: 'ping', id: 'p' })
  t.equal((await client.nextOfType('pong')).id, 'p', 'the plugin serves its endpoint')
  t.equal(await firstMessage(url(app, '/echo')), 'hello from the app', 'the app\'s own route is served by the shared server')
  t.equal(await firstMessage(url(app, '/child')), 'hello from a context')
  t.equal(crashes.uncaught, 0, 'nothing crashed')
})

t.test('the same through register(import(...)), as ES modules write it', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime)
  await app.register(import('@fastify/websocket'))
  app.get('/echo', { websocket: true }, (socket) => { socket.send('ok') })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.equal(await firstMessage(url(app, '/echo')), 'ok')
})

t.test('@fastify/websocket registered after the plugin with options: the app does not start, and the error says which order works', async (t) => {
  const crashes = watchCrashes(t)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime, { path: '/live' })
  await t.rejects(async () => { await app.register(websocket, { options: { maxPayload: 1024 } }) }, {
    code: 'FST_REALTIME_WEBSOCKET_ORDER',
    message: /fastify-realtime at "\/live" registered @fastify\/websocket itself.*register @fastify\/websocket with your options before fastify-realtime/
  })
  t.equal(crashes.uncaught, 0, 'an error at register, not a crash')
})

t.test('registered before the plugin, @fastify/websocket is shared as it always was', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket, { options: { maxPayload: 4096 } })
  await app.register(realtime)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const client = await connect(t, url(app, '/ws'))
  client.send({ type: 'ping', id: 'p' })
  t.equal((await client.nextOfType('pong')).id, 'p')
})
