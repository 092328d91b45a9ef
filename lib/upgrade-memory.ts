// What an accepted WebSocket keeps of its HTTP upgrade. @fastify/websocket routes
// the upgrade through Fastify with a stand-in ServerResponse assigned to the socket,
// and attaches an 'error' listener closing over the request and the Reply. Both
// would live as long as the connection: the ServerResponse, the Reply and their
// listeners (about 1 KiB per connection). The request itself stays (it is
// `connection.request`); the response part of an upgrade that is done is let go.
import type { FastifyRequest } from 'fastify'
import type { Socket } from 'node:net'
import type { WebSocket } from 'ws'
import { kConnection } from './lifecycle.js'
import type { Connection } from './connection.js'

interface UpgradedSocket extends Socket {
  /** The response assigned to the socket (http.ServerResponse#assignSocket). */
  _httpMessage?: { detachSocket?: (socket: Socket) => void } | null
}

/**
 * Lets go of the upgrade's response: detaches the stand-in ServerResponse from the
 * socket and, when the plugin registered @fastify/websocket itself (`ownErrorHandler`:
 * its errorHandler is ours, a debug log), replaces the error listener by one shared
 * listener that logs the same without the Reply. An app's own errorHandler is kept.
 */
export function releaseUpgradeResponse (socket: WebSocket, request: FastifyRequest, ownErrorHandler: boolean): void {
  const raw = request.raw.socket as UpgradedSocket | null
  const response = raw?._httpMessage
  if (raw != null && response != null && typeof response.detachSocket === 'function') response.detachSocket(raw)
  if (!ownErrorHandler) return
  socket.removeAllListeners('error')
  socket.on('error', onSocketError)
}

/** One listener for every socket: the connection (set by accept) leads to the request's logger. */
function onSocketError (this: WebSocket & { [kConnection]?: Connection<any> }, error: Error): void {
  this[kConnection]?.request.log.debug({ err: error }, 'websocket error')
}
