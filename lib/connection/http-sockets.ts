// Browsers open HTTP connections speculatively and may never send a request on them,
// and keep idle keep-alive connections open. Node's server.close() waits for such
// sockets until headersTimeout (60 s), so app.close() took 8–11 s with two browsers
// connected. After the real-time side has closed, these are let go at once.
import type { Server } from 'node:http'
import type { Socket } from 'node:net'

export interface SilentSockets {
  /** Destroys sockets that never sent a byte, and closes idle keep-alive connections. */
  release: () => void
}

export function watchSilentSockets (server: Server): SilentSockets {
  const sockets = new Set<Socket>()
  // One listener for every socket ('close' comes once): no closure kept per connection.
  const forget = function (this: Socket): void { sockets.delete(this) }
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', forget)
  })
  return {
    release () {
      for (const socket of sockets) if (socket.bytesRead === 0) socket.destroy()
      server.closeIdleConnections()
    }
  }
}
