// Socket.IO 4.8, WebSocket transport only: a room per topic, `io.to(room).emit`
// for publications (Socket.IO encodes a broadcast once) and acknowledgements for
// requests, with the same hand-written checks as the raw servers.
import { createServer } from 'node:http'
import { Server } from 'socket.io'
import { listenLocal, runServer } from './harness.js'

runServer('socketio', async () => {
  const http = createServer()
  const io = new Server(http, {
    transports: ['websocket'],
    serveClient: false,
    perMessageDeflate: false,
    maxHttpBufferSize: 64 * 1024
  })
  io.on('connection', (socket) => {
    socket.on('subscribe', (topic: unknown, ack: unknown) => {
      if (typeof ack !== 'function') return
      if (typeof topic !== 'string' || topic.length === 0 || topic.length > 256) {
        ack({ error: { code: 'VALIDATION_FAILED' } })
        return
      }
      socket.join(topic)
      ack({ topic })
    })
    socket.on('echo', (data: any, ack: unknown) => {
      if (typeof ack !== 'function') return
      if (data !== null && typeof data === 'object' && typeof data.t === 'number' && typeof data.text === 'string') {
        ack({ t: data.t, text: data.text })
      } else {
        ack({ error: { code: 'VALIDATION_FAILED' } })
      }
    })
  })
  const port = await listenLocal(http)
  return {
    port,
    publish (topic, message) {
      io.to(topic).emit('message', message)
    },
    connections: () => io.engine.clientsCount,
    close: async () => {
      io.disconnectSockets(true)
      await new Promise((resolve) => io.close(resolve))
    }
  }
})
