// What a connection keeps of its HTTP upgrade (lib/connection/upgrade-memory.ts): the upgrade's
// IncomingMessage, ServerResponse and Reply are let go, the request stays readable as
// `connection.request`, and a ws error on the socket is still logged and closes only
// that connection.
import t from 'tap'
import { Writable } from 'node:stream'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import type { IncomingMessage, ServerResponse } from 'node:http'
import Fastify, { type FastifyRequest } from 'fastify'
import realtime from '../../lib/index.js'
import type { Connection as InternalConnection } from '../../lib/connection/connection.js'
import { connect } from '../fixtures/helpers.js'
import { Op, rawConnect } from '../fixtures/raw-ws.js'

t.test('a connection keeps its request readable and lets the rest of the upgrade go', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({ write (chunk, _encoding, done) { lines.push(JSON.parse(chunk.toString())); done() } })
  const app = Fastify({ logger: { level: 'debug', stream } })
  app.decorateRequest('tenant', '')
  app.addHook('onRequest', async (request) => { (request as unknown as { tenant: string }).tenant = 'acme' })
  await app.register(realtime)
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const port = (app.server.address() as { port: number }).port
  await connect(t, `ws://127.0.0.1:${port}/ws?room=lobby`, { headers: { 'x-app': 'test' } })
  // Its socket is internal state (connection.ts), read through the internal class.
  const [connection] = [...app.realtime.connections] as InternalConnection[]
  const request = connection.request as unknown as { headers: Record<string, string>, query: { room: string }, ip: string, tenant: string }
  t.equal(request.headers['x-app'], 'test', 'headers')
  t.same(request.query, { room: 'lobby' }, 'query')
  t.equal(request.ip, '127.0.0.1', 'ip')
  t.equal(request.tenant, 'acme', 'the app\'s decorations')
  t.equal(connection.socket.listenerCount('error'), 1, 'one error listener, shared by every socket')

  // A frame ws refuses: the error is logged (debug) and only that connection closes.
  const bad = await rawConnect(t, port)
  bad.send({ opcode: Op.TEXT, payload: '{"type":"ping"}', rsv2: true })
  t.equal((await bad.closed).code, 1002)
  t.ok(lines.some((line) => line.msg === 'websocket error' && line.level === 20), 'logged at debug')
  t.equal(connection.socket.readyState, 1, 'the other connection is untouched')
})

t.test('the upgrade\'s IncomingMessage and ServerResponse are collected while the connection lives', async (t) => {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  let message: WeakRef<IncomingMessage> | undefined
  let response: WeakRef<ServerResponse> | undefined
  const app = Fastify()
  app.decorateRequest('shout', function (this: FastifyRequest) { return String(this.headers['x-app']).toUpperCase() })
  app.addHook('onRequest', async (request, reply) => {
    message = new WeakRef(request.raw)
    response = new WeakRef(reply.raw)
  })
  await app.register(realtime)
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const port = (app.server.address() as { port: number }).port
  const sent = { 'x-app': 'test', 'x-forwarded-for': '10.0.0.1', 'user-agent': 'Mozilla/5.0 (test)', origin: 'https://app.example' }
  const client = await connect(t, `ws://127.0.0.1:${port}/ws`, { headers: sent })
  // A second client with the same shared values: each connection still reads its own headers.
  const other = await connect(t, `ws://127.0.0.1:${port}/ws?room=b`, { headers: { ...sent, 'x-app': 'other' } })
  const [connection, second] = [...app.realtime.connections]
  const request = connection.request as typeof connection.request & { shout: () => string }
  t.match(request.headers, sent, 'every header the client sent')
  t.match(second.request.headers, { ...sent, 'x-app': 'other' })
  t.same(second.request.query, { room: 'b' })
  t.equal(second.request.url, '/ws?room=b')
  other.close()
  // Collectable once the upgrade's own callbacks have run: a few turns and collections
  // at most, while the connection stays open.
  for (let i = 0; i < 50 && (message?.deref() !== undefined || response?.deref() !== undefined); i++) {
    await new Promise((resolve) => setTimeout(resolve, 10))
    gc()
  }
  t.equal(message?.deref(), undefined, 'the IncomingMessage is collected')
  t.equal(response?.deref(), undefined, 'the ServerResponse (and with it the Reply) is collected')

  t.equal(request.shout(), 'TEST', 'decorations on the prototype still see the headers')
  t.equal(request.raw.headers['x-app'], 'test', 'request.raw keeps the headers')
  t.equal(request.raw.url, '/ws')
  t.equal(request.method, 'GET')
  t.equal(request.url, '/ws')
  t.equal(request.hostname, '127.0.0.1')
  t.equal(request.protocol, 'http')
  t.equal(request.ip, '127.0.0.1', 'the socket\'s address: no proxy is trusted')
  t.equal(request.server, app, 'the Fastify instance')
  // request.signal came in fastify 5.x after 5.0: where it exists, it follows the connection.
  const signal = (request as unknown as { signal?: AbortSignal }).signal
  if (signal === undefined) {
    client.close()
    return
  }
  t.equal(signal.aborted, false)
  client.close()
  await new Promise((resolve) => signal.addEventListener('abort', resolve))
  t.pass('request.signal aborts when the connection closes')
})
