// Raw `ws`, the baseline: each publication is serialised once and turned into a
// Buffer once; every subscriber's socket sends that same Buffer as a text frame.
import { createServer } from 'node:http'
import { WebSocketServer } from 'ws'
import { listenLocal, runServer } from './harness.js'
import { handleSocket, messageEnvelope, type Topics } from './raw-protocol.js'

const TEXT = { binary: false } as const

runServer('ws-frame-once', async () => {
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
      const frame = Buffer.from(JSON.stringify(messageEnvelope(topic, message)))
      for (const socket of subscribers) if (socket.readyState === 1) socket.send(frame, TEXT)
    },
    connections: () => wss.clients.size,
    close: async () => {
      for (const socket of wss.clients) socket.terminate()
      await new Promise((resolve) => wss.close(resolve))
      await new Promise((resolve) => http.close(resolve))
    }
  }
})
