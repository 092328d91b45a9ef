// Raw `ws`, the naive loop: subscribers in a Set, and the publication serialised
// again for every socket (each send also converts the string to bytes).
import { createServer } from 'node:http'
import { WebSocketServer } from 'ws'
import { listenLocal, runServer } from './harness.js'
import { handleSocket, messageEnvelope, type Topics } from './raw-protocol.js'

runServer('ws-stringify-each', async () => {
  const http = createServer((_req, res) => { res.writeHead(426).end() })
  const wss = new WebSocketServer({ server: http, path: '/ws', maxPayload: 64 * 1024 })
  const topics: Topics = new Map()
  wss.on('connection', (socket) => handleSocket(socket, topics))
  const port = await listenLocal(http)
  return {
    port,
    publish (topic, message) {
      const subscribers = topics.get(topic)
      if (subscribers === undefined) return
      const envelope = messageEnvelope(topic, message)
      for (const socket of subscribers) if (socket.readyState === 1) socket.send(JSON.stringify(envelope))
    },
    connections: () => wss.clients.size,
    close: async () => {
      for (const socket of wss.clients) socket.terminate()
      await new Promise((resolve) => wss.close(resolve))
      await new Promise((resolve) => http.close(resolve))
    }
  }
})
