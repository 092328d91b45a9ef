// @fastify/websocket with the broadcast written by hand, the way an application
// without a real-time layer would: a Set per topic, the message stringified once,
// and that string sent to each socket.
import Fastify from 'fastify'
import websocket from '@fastify/websocket'
import type { WebSocket } from 'ws'
import { bytesWrittenBy, runServer } from './harness.js'
import { handleSocket, messageEnvelope, type Topics } from './raw-protocol.js'

runServer('fastify-websocket', async () => {
  const app = Fastify()
  await app.register(websocket, { options: { maxPayload: 64 * 1024 } })
  const topics: Topics = new Map()
  app.get('/ws', { websocket: true }, (socket) => handleSocket(socket as unknown as WebSocket, topics))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  return {
    port,
    publish (topic, message) {
      const subscribers = topics.get(topic)
      if (subscribers === undefined) return
      const text = JSON.stringify(messageEnvelope(topic, message))
      for (const socket of subscribers) if (socket.readyState === 1) socket.send(text)
    },
    connections: () => app.websocketServer.clients.size,
    bytesWritten: () => bytesWrittenBy(app.websocketServer.clients),
    close: async () => {
      for (const socket of app.websocketServer.clients) socket.terminate()
      await app.close()
    }
  }
})
