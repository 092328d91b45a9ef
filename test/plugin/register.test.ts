// fastify-realtime in encapsulated contexts: each context gets its own `app.realtime`,
// one WebSocket server serves them all, no upgrade is handled twice, and `app.close()`
// settles even after an upgrade to a path no context serves. An instance that shares a
// WebSocket server registered elsewhere refuses options that server cannot honour
// (`websocket`, and `compression` unless the server's perMessageDeflate matches it).
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import websocket from '@fastify/websocket'
import { WebSocket } from 'ws'
import { Socket } from 'node:net'
import { Writable } from 'node:stream'
import { Type } from '@sinclair/typebox'
import realtime, { type Realtime } from '../../lib/index.js'
import { connect } from '../fixtures/helpers.js'

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

/** ~2 KB that deflate shrinks, as it does real JSON. */
const LONG_TEXT = Array.from({ length: 120 }, (_, i) => `item${(i * 7) % 13} price ${100 + (i % 17)}`).join(' ')

/** The first byte of every Buffer written to a socket while `fn` runs (0xc1: a compressed text frame, 0x81: a plain one). */
async function firstBytesWritten (fn: () => Promise<unknown>): Promise<number[]> {
  const write = Socket.prototype.write
  const firstBytes: number[] = []
  Socket.prototype.write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
    if (Buffer.isBuffer(chunk)) firstBytes.push(chunk[0])
    return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest)
  } as typeof write
  try {
    await fn()
  } finally {
    Socket.prototype.write = write
  }
  return firstBytes
}

t.test('compression on a shared WebSocket server that does not offer what it asks for is refused, naming compression', async (t) => {
  const attempts: Array<[string, object | undefined, object, RegExp]> = [
    ['no permessage-deflate', undefined, { compression: true }, /"compression".*does not offer permessage-deflate.*serverNoContextTakeover: true, clientNoContextTakeover: true/],
    ['ws defaults (context takeover)', { perMessageDeflate: true }, { compression: true }, /"compression".*differs \(serverNoContextTakeover is not true; clientNoContextTakeover is not true\)/],
    ['another threshold', { perMessageDeflate: { serverNoContextTakeover: true, clientNoContextTakeover: true, threshold: 512 } }, { compression: true }, /"compression".*differs \(threshold 512, not 1024\)/],
    ['another level and memLevel', { perMessageDeflate: { serverNoContextTakeover: true, clientNoContextTakeover: true } }, { compression: { level: 9, memLevel: 4 } }, /"compression".*differs \(level -1, not 9; memLevel 8, not 4\)/]
  ]
  for (const [what, serverOptions, options, message] of attempts) {
    const app = Fastify()
    await app.register(websocket, serverOptions === undefined ? {} : { options: serverOptions })
    await t.rejects(async () => { await app.register(realtime, options) }, { code: 'FST_REALTIME_INVALID_OPTION', message }, what)
    await closes(app)
  }
})

t.test('compression on a shared WebSocket server is accepted where the server matches it, and applied', async (t) => {
  const app = Fastify()
  // What `compression: { level: 1 }` asks for, with ws's defaults for the rest (level 6 is zlib's -1).
  await app.register(websocket, { options: { perMessageDeflate: { serverNoContextTakeover: true, clientNoContextTakeover: true, zlibDeflateOptions: { level: 1 } } } })
  await app.register(realtime, { compression: { level: 1 } })
  app.realtime.topic('feed', { message: Type.Object({ text: Type.String() }) })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const c = await connect(t, `${base(app)}/ws`)
  t.equal(c.ws.extensions, 'permessage-deflate', 'negotiated')
  t.equal((await c.request('subscribe', { topic: 'feed' })).type, 'reply')
  const written = await firstBytesWritten(() => app.realtime.publish('feed', { text: LONG_TEXT }))
  t.same(written, [0xc1], 'the publication went as one compressed frame')
  t.same((await c.nextOfType('message')).data, { text: LONG_TEXT }, 'and reads intact')
  c.ws.close()
  await closes(app)
})

t.test('a child context shares its parent fastify-realtime\'s compressing server with the same compression, and refuses another', async (t) => {
  const app = Fastify()
  await app.register(realtime, { path: '/a', compression: true })
  await app.register(async (context) => { await context.register(realtime, { path: '/b', compression: true }) })
  // Compression off asks nothing of the server: publications of /c simply go plain.
  await app.register(async (context) => { await context.register(realtime, { path: '/c' }) })
  await app.ready()
  await closes(app)

  const refused = Fastify()
  await refused.register(realtime, { path: '/a', compression: true })
  refused.register(async (context) => { await context.register(realtime, { path: '/b', compression: { threshold: 64 } }) })
  await t.rejects(async () => { await refused.ready() }, { code: 'FST_REALTIME_INVALID_OPTION', message: /"compression".*threshold 1024, not 64/ })
  await closes(refused)
})
