// What a connection keeps of its HTTP upgrade (lib/upgrade-memory.ts): the upgrade's
// Reply is let go, the request stays readable as `connection.request`, and a ws
// error on the socket is still logged and closes only that connection.
import t from 'tap'
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import realtime from '../lib/index.js'
import { connect } from './fixtures/helpers.js'
import { Op, rawConnect } from './fixtures/raw-ws.js'

t.test('a connection keeps its request readable and lets the upgrade Reply go', async (t) => {
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
  const [connection] = [...app.realtime.connections]
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
