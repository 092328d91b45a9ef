// In-process tests with @fastify/websocket's app.injectWS: no port, a real ws client over
// a stream pair. injectWS (11.3) writes Sec-WebSocket-Version as the number 13, which ws
// 8.23.1 and later refuse (400 "Missing or invalid Sec-WebSocket-Version header"): the
// endpoint hands ws the header as a string, as a real request has it.
import t from 'tap'
import Fastify from 'fastify'
import { Type } from '@sinclair/typebox'
import type { IncomingMessage } from 'node:http'
import type { WebSocket } from 'ws'
import realtime from '../../lib/index.js'
import { FrameQueue, type Frame } from '../fixtures/helpers.js'

t.test('app.injectWS("/ws") speaks the protocol in process: welcome, subscribe, publish, ping', async (t) => {
  const app = Fastify()
  await app.register(realtime)
  app.realtime.topic('room/:name', { message: Type.Object({ text: Type.String() }) })
  t.teardown(() => app.close())
  await app.ready()
  const versions: unknown[] = []
  const handleUpgrade = app.websocketServer.handleUpgrade.bind(app.websocketServer)
  app.websocketServer.handleUpgrade = ((request: IncomingMessage, ...rest: unknown[]) => {
    versions.push(request.headers['sec-websocket-version'])
    return (handleUpgrade as (...args: unknown[]) => void)(request, ...rest)
  }) as typeof app.websocketServer.handleUpgrade
  const frames = new FrameQueue<Frame>()
  // The server speaks first (welcome): listen from onInit, before injectWS resolves.
  const ws = await app.injectWS('/ws', { headers: { 'sec-websocket-protocol': 'realtime.v1' } }, {
    onInit: (ws: WebSocket) => { ws.on('message', (data) => frames.push(JSON.parse(data.toString()) as Frame)) }
  })
  t.teardown(() => ws.terminate())
  t.same(versions, ['13'], 'ws is handed the version as a string, which ws >= 8.23.1 requires')
  t.equal((await frames.next((f) => f.type === 'welcome')).type, 'welcome')
  ws.send(JSON.stringify({ type: 'subscribe', id: 1, data: { topic: 'room/a' } }))
  t.match(await frames.next((f) => f.id === 1), { type: 'reply', data: { topic: 'room/a', offset: 0 } })
  await app.realtime.publish('room/a', { text: 'hi' })
  t.match(await frames.next((f) => f.type === 'message'), { topic: 'room/a', offset: 1, data: { text: 'hi' } })
  ws.send(JSON.stringify({ type: 'ping', id: 2 }))
  t.same(await frames.next((f) => f.id === 2), { type: 'pong', id: 2 })
})

t.test('injectWS without a subprotocol header is accepted too; another subprotocol is refused 400', async (t) => {
  const app = Fastify()
  await app.register(realtime)
  t.teardown(() => app.close())
  await app.ready()
  const ws = await app.injectWS('/ws')
  t.teardown(() => ws.terminate())
  t.pass('opened')
  await t.rejects(app.injectWS('/ws', { headers: { 'sec-websocket-protocol': 'graphql-ws' } }), { message: 'Unexpected server response: 400' })
})
