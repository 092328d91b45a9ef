// What an accepted WebSocket keeps of its HTTP upgrade. @fastify/websocket routes
// the upgrade through Fastify with a stand-in ServerResponse assigned to the socket,
// and attaches an 'error' listener closing over the request and the Reply, which
// would live as long as the connection. The request itself stays (it is
// `connection.request`); the Reply of an upgrade that is done is let go.
import type { WebSocket } from 'ws'
import { kConnection } from './lifecycle.js'
import type { Connection } from './connection.js'

/**
 * Lets go of the Reply: when the plugin registered @fastify/websocket itself
 * (`ownErrorHandler`: its errorHandler is ours, a debug log), the per-socket error
 * listener closing over request and Reply is replaced by one shared listener that
 * logs the same. An app's own errorHandler is kept. (The stand-in ServerResponse
 * stays assigned to the socket: Node's closeIdleConnections() would otherwise take
 * the upgraded socket for an idle HTTP connection and destroy it at shutdown.)
 */
export function releaseUpgradeResponse (socket: WebSocket, ownErrorHandler: boolean): void {
  if (!ownErrorHandler) return
  socket.removeAllListeners('error')
  socket.on('error', onSocketError)
}

/** One listener for every socket: the connection (set by accept) leads to the request's logger. */
function onSocketError (this: WebSocket & { [kConnection]?: Connection<any> }, error: Error): void {
  this[kConnection]?.request.log.debug({ err: error }, 'websocket error')
}
