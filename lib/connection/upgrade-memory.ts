// What an accepted WebSocket keeps of its HTTP upgrade. @fastify/websocket routes the
// upgrade through Fastify: an IncomingMessage (a stream, with its raw header lines),
// a stand-in ServerResponse assigned to the socket, a Reply, and an 'error' listener
// closing over the request and the Reply. Kept for the life of a connection they are
// about 2 KiB of a ten-thousand-connection server's heap each. After the upgrade we
// keep only what the API documents of the request: `connection.request` /
// `ctx.request` with its headers, query, params, ip, logger and the app's decorations.
import type { FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'
import type { WebSocket } from 'ws'

interface UpgradedSocket extends Socket {
  /** The response assigned to the socket (http.ServerResponse#assignSocket). */
  _httpMessage?: { detachSocket?: (socket: Socket) => void } | null
}

/**
 * Headers whose values most clients share (every browser of one version sends the same
 * user-agent, every page of a site the same origin). The kept headers use one string
 * per distinct value of these, not one per connection: about 300 bytes less per
 * browser connection, the same headers to read.
 */
const SHARED_VALUE_HEADERS: ReadonlySet<string> = new Set([
  'host', 'origin', 'user-agent', 'accept', 'accept-encoding', 'accept-language', 'cache-control', 'pragma',
  'connection', 'upgrade', 'sec-websocket-version', 'sec-websocket-protocol', 'sec-websocket-extensions'
])
/** Distinct values kept for sharing: bounded, so clients sending made-up values cannot grow it. */
const MAX_SHARED_VALUES = 1024
const MAX_SHARED_LENGTH = 512
const sharedValues = new Map<string, string>()

function shared (value: string): string {
  const known = sharedValues.get(value)
  if (known !== undefined) return known
  if (sharedValues.size < MAX_SHARED_VALUES && value.length <= MAX_SHARED_LENGTH) sharedValues.set(value, value)
  return value
}

/** A copy of the headers, with the values clients share taken from one string each. */
function keptHeaders (headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const kept: IncomingHttpHeaders = {}
  for (const name in headers) {
    const value = headers[name]
    kept[name] = typeof value === 'string' && SHARED_VALUE_HEADERS.has(name) ? shared(value) : value
  }
  return kept
}

/**
 * What stays of the IncomingMessage as `request.raw`: what Fastify's request getters
 * read (url, method, headers, the socket for ip and protocol), without the stream.
 * Listeners go to the socket, whose 'close' is the connection's end: `request.signal`
 * aborts when the connection closes.
 */
class UpgradeRequest {
  readonly url: string | undefined
  readonly method: string | undefined
  readonly httpVersion: string
  readonly headers: IncomingHttpHeaders
  readonly socket: Socket

  constructor (raw: FastifyRequest['raw']) {
    // A path is shared; a query string often carries a token of this connection alone.
    this.url = raw.url === undefined || raw.url.includes('?') ? raw.url : shared(raw.url)
    this.method = raw.method
    this.httpVersion = shared(raw.httpVersion)
    this.headers = keptHeaders(raw.headers)
    this.socket = raw.socket
  }

  on (event: string, listener: (...args: any[]) => void): this {
    this.socket.on(event, listener)
    return this
  }

  once (event: string, listener: (...args: any[]) => void): this {
    this.socket.once(event, listener)
    return this
  }

  removeListener (event: string, listener: (...args: any[]) => void): this {
    this.socket.removeListener(event, listener)
    return this
  }

  off (event: string, listener: (...args: any[]) => void): this {
    return this.removeListener(event, listener)
  }
}

/**
 * The request a connection keeps: the Fastify request itself (its getters and the app's
 * decorations keep working), its `raw` replaced by an UpgradeRequest. The upgrade's
 * Reply is hijacked and its response detached, so nothing in Fastify reads this
 * request's `raw` again.
 */
function keepRequest (request: FastifyRequest): FastifyRequest {
  const original = request.raw
  const raw = new UpgradeRequest(original)
  const fields = request as unknown as Record<PropertyKey, unknown>
  fields.raw = raw
  // Fastify's own symbol for the payload stream holds the IncomingMessage too.
  for (const key of Object.getOwnPropertySymbols(request)) if (fields[key] === original) fields[key] = raw
  return request
}

/**
 * Lets go of the upgrade: detaches the stand-in ServerResponse from the socket (with
 * it the Reply and its listeners), returns the request to keep, and, when the plugin
 * registered @fastify/websocket itself (`ownErrorHandler`: its errorHandler is ours, a
 * debug log), removes the per-socket error listener closing over request and Reply
 * (Lifecycle.accept adds one listener shared by every socket). An app's own errorHandler is kept, and
 * with it what it closes over. (An upgraded socket is no longer one of the HTTP
 * server's connections, so `closeIdleConnections()` does not see it either way.)
 */
export function releaseUpgrade (socket: WebSocket, request: FastifyRequest, ownErrorHandler: boolean): FastifyRequest {
  const raw = request.raw.socket as UpgradedSocket | null
  const response = raw?._httpMessage
  if (raw != null && response != null && typeof response.detachSocket === 'function') response.detachSocket(raw)
  // The shared listener that replaces it is added by Lifecycle.accept, which the caller
  // runs in this same tick: no error can be emitted in between.
  if (ownErrorHandler) socket.removeAllListeners('error')
  // An injected upgrade (injectWS) has no net.Socket: its request is kept whole.
  return raw == null ? request : keepRequest(request)
}
