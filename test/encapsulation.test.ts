// fastify-realtime in encapsulated contexts: each context gets its own `app.realtime`,
// one WebSocket server serves them all, no upgrade is handled twice, and `app.close()`
// settles even after an upgrade to a path no context serves.
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import websocket from '@fastify/websocket'
import { WebSocket } from 'ws'
import { Writable } from 'node:stream'
import realtime, { type Realtime } from '../lib/index.js'
import { connect } from './fixtures/helpers.js'

/** An app whose logs (warnings up) are kept, to prove nothing complained. */
function appWithLogs (): { app: FastifyInstance, logs: string[] } {
  const logs: string[] = []
  const stream = new Writable({ write (chunk, _encoding, done) { logs.push(String(chunk)); done() } })
  return { app: Fastify({ logger: { level: 'warn', stream } }), logs }
}

/**
 * The status an upgrade request gets when it is refused. The client keeps its socket open
 * (as a careless or hostile one may) until the test ends.
 */
function refusedUpgrade (t: { teardown: (fn: () => void) => void }, url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, 'realtime.v1')
    t.teardown(() => ws.terminate())
    ws.on('unexpected-response', (_request, response) => { resolve(response.statusCode ?? 0) })
    ws.on('open', () => { reject(new Error(`${url} was upgraded`)) })
    ws.on('error', () => {})
  })
}

/** `app.close()` must settle; a hang fails here with a message instead of the file timing out. */
async function closes (app: FastifyInstance): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error('app.close() did not settle')), 10_000) })
  try {
    await Promise.race([app.close(), deadline])
  } finally {
    clearTimeout(timer)
  }
}

function base (app: FastifyInstance): string {
  return `ws://127.0.0.1:${(app.server.address() as { port: number }).port}`
}

t.test('two encapsulated contexts on two paths share the WebSocket server the app registered at its root', async (t) => {
  const { app, logs } = appWithLogs()
  await app.register(websocket)
  const instances: Record<string, Realtime<unknown>> = {}
  for (const path of ['/a', '/b']) {
    await app.register(async (context) => {
      await context.register(realtime, { path })
      instances[path] = context.realtime
    })
  }
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.not(instances['/a'], instances['/b'], 'each context has its own app.realtime')
  t.notOk(app.hasDecorator('realtime'), 'the root has none')

  const a = await connect(t, `${base(app)}/a`)
  const b1 = await connect(t, `${base(app)}/b`)
  const b2 = await connect(t, `${base(app)}/b`)
  t.equal(instances['/a'].stats().connections.active, 1, '/a serves its connection')
  t.equal(instances['/b'].stats().connections.active, 2, '/b serves its two')
  t.equal(await refusedUpgrade(t, `${base(app)}/nowhere`), 404, 'an upgrade to an unknown path is a 404')
  a.ws.close()
  b1.ws.close()
  b2.ws.close()

  await closes(app)
  t.same(logs, [], 'no warning: every upgrade was handled once')
})

t.test('one encapsulated context: app.close() settles after an upgrade to a path outside it', async (t) => {
  const { app, logs } = appWithLogs()
  let inner: Realtime<unknown> | undefined
  await app.register(async (context) => {
    await context.register(realtime, { path: '/ws' })
    inner = context.realtime
  }, { prefix: '/api' })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const c = await connect(t, `${base(app)}/api/ws`)
  t.equal(inner?.stats().connections.active, 1, 'the prefixed endpoint serves')
  t.equal(await refusedUpgrade(t, `${base(app)}/nowhere`), 404, 'an upgrade outside the context is a 404')
  c.ws.close()
  await closes(app)
  t.same(logs, [], 'no warning')
})

t.test('sibling contexts without a common @fastify/websocket: the second refuses to register, naming both paths', async (t) => {
  const app = Fastify()
  app.register(async (context) => { await context.register(realtime, { path: '/a' }) })
  app.register(async (context) => { await context.register(realtime, { path: '/b' }) })
  await t.rejects(async () => { await app.ready() }, {
    code: 'FST_REALTIME_WEBSOCKET_SCOPE',
    message: /fastify-realtime at "\/b" cannot share the WebSocket server of the fastify-realtime at "\/a".*register @fastify\/websocket once/
  })
  await closes(app)
})

t.test('ws options cannot be given to an instance that shares a WebSocket server', async (t) => {
  const app = Fastify()
  await app.register(websocket)
  await t.rejects(async () => { await app.register(realtime, { websocket: { perMessageDeflate: true } }) }, {
    code: 'FST_REALTIME_INVALID_OPTION',
    message: /"websocket"/
  })
  await closes(app)
})
