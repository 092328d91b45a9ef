// How the plugin registers on a Fastify app: options resolved and frozen,
// the WebSocket endpoint (through @fastify/websocket, so every Fastify hook runs on
// the upgrade request), the `app.realtime` namespace and its shutdown.
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify'
import type { EventEmitter } from 'node:events'
import type { Duplex } from 'node:stream'
import type { WebSocketServer } from 'ws'
import { errorCodes } from '../protocol/errors.js'
import { compressionOf, resolveOptions, sharedCompressionProblem, type RealtimeOptions } from '../config/options.js'
import { perMessageDeflateOf } from '../wire/compress-once.js'
import { msgpackInstalled } from '../wire/msgpack.js'
import { RealtimeFacade } from './realtime.js'
import type { Realtime } from './public.js'
import type { Refusal } from '../inbound/lifecycle.js'
import { corkHandshake } from '../connection/connection.js'
import { MemoryBroker } from '../broker/memory.js'
import { SUBPROTOCOL, SUBPROTOCOL_MSGPACK } from '../protocol/constants.js'
import { metricsRegistry, registerMetrics, type MetricsOptions } from './metrics.js'
import { watchSilentSockets } from '../connection/http-sockets.js'
import { releaseUpgrade } from '../connection/upgrade-memory.js'
import { registerAsyncApi } from '../asyncapi/serve.js'
import { adoptLaterWebsocket } from './websocket-order.js'

declare module 'fastify' {
  interface FastifyInstance {
    realtime: Realtime<RealtimeUser>
  }
}

/**
 * The type of `connection.user`. Augment it to type your users:
 * `declare module 'fastify-realtime' { interface RealtimeUserRegistry { user: { id: string, name: string } } }`
 */
export interface RealtimeUserRegistry {}
export type RealtimeUser = RealtimeUserRegistry extends { user: infer U } ? U : unknown

/** The subprotocols an endpoint speaks: JSON always, MessagePack when the `msgpack` option is on. */
function spokenOf (msgpack: boolean): readonly string[] {
  return msgpack ? [SUBPROTOCOL, SUBPROTOCOL_MSGPACK] : [SUBPROTOCOL]
}

/** Picks the first subprotocol the client offers that we speak (the client lists them in its order of preference). */
function handleProtocolsOf (spoken: readonly string[]): (protocols: Set<string>) => string | false {
  return (protocols) => {
    for (const protocol of protocols) if (spoken.includes(protocol)) return protocol
    return false
  }
}

/**
 * A client that offers subprotocols, none of them ours, is refused before the upgrade
 * (HTTP 400) rather than silently accepted with a protocol it does not speak.
 */
function subprotocolRefusal (request: FastifyRequest, spoken: readonly string[]): Refusal | null {
  const header = request.headers['sec-websocket-protocol']
  // What every client of ours sends: no list to split.
  if (header === undefined || header === SUBPROTOCOL) return null
  const offered = String(header).split(',').map((p) => p.trim()).filter((p) => p.length > 0)
  if (offered.length > 0 && !offered.some((p) => spoken.includes(p))) {
    return { status: 400, message: `Unsupported WebSocket subprotocol; this endpoint speaks ${spoken.join(', ')}` }
  }
  return null
}

/**
 * The HTTP servers on which a fastify-realtime registered @fastify/websocket, with that
 * instance's path. @fastify/websocket listens to every upgrade of the server once per
 * registration, so a second one in a sibling context (which cannot see the first's
 * decorator) would handle each upgrade twice; that instance refuses to register instead.
 */
const websocketOwners = new WeakMap<object, string>()

/**
 * Upgrade sockets that no WebSocket took are destroyed on close. When @fastify/websocket
 * sits in an encapsulated context, an upgrade to a path outside it (a 404 at the root)
 * misses its onResponse hook, and the socket, no longer an HTTP connection Node tracks,
 * would keep `app.close()` waiting for the client forever.
 */
function trackUpgrades (server: EventEmitter): () => void {
  const sockets = new Set<Duplex>()
  // One listener for every socket ('close' comes once): no closure kept per connection.
  const untrack = function (this: Duplex): void { sockets.delete(this) }
  const track = (_request: unknown, socket: Duplex): void => {
    sockets.add(socket)
    socket.on('close', untrack)
  }
  server.on('upgrade', track)
  return () => {
    server.removeListener('upgrade', track)
    for (const socket of sockets) socket.destroy()
  }
}

/** @fastify/websocket's ws server (its types load the CommonJS flavour of @types/ws). */
function websocketServerOf (app: FastifyInstance): WebSocketServer {
  return (app as unknown as { websocketServer: WebSocketServer }).websocketServer
}

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 403: 'Forbidden', 429: 'Too Many Requests', 503: 'Service Unavailable' }

export const plugin: FastifyPluginAsync<RealtimeOptions> = async function fastifyRealtime (app: FastifyInstance, input) {
  const { register: _register, prefix: _prefix, logLevel: _logLevel, ...rest } = input as RealtimeOptions & Record<string, unknown>
  const options = resolveOptions(rest)
  const ownBroker = options.broker === undefined
  const broker = options.broker ?? new MemoryBroker()
  const metrics = options.metrics === undefined || options.metrics === false ? undefined : options.metrics as true | MetricsOptions
  const realtime = new RealtimeFacade<RealtimeUser>(options, broker, app.log, metrics === undefined ? undefined : await metricsRegistry(metrics))
  const silent = watchSilentSockets(app.server)
  if (options.msgpack && !msgpackInstalled()) throw new errorCodes.FST_REALTIME_MISSING_PEER('The msgpack option', 'msgpackr', 'msgpackr')
  const spoken = spokenOf(options.msgpack)
  const handleProtocols = handleProtocolsOf(spoken)

  const ownWebsocket = !app.hasDecorator('websocketServer')
  if (ownWebsocket) {
    const owner = websocketOwners.get(app.server)
    if (owner !== undefined) throw new errorCodes.FST_REALTIME_WEBSOCKET_SCOPE(options.path, owner)
    websocketOwners.set(app.server, options.path)
    const releaseUpgrades = trackUpgrades(app.server)
    // Loaded here, not at import: @fastify/websocket and ws are most of what importing the
    // package would cost, and an app pays for them when it registers us, as it would with
    // @fastify/websocket alone.
    const { default: websocket } = await import('@fastify/websocket')
    await app.register(websocket, {
      // Cast: @fastify/websocket's types load the CommonJS flavour of @types/ws.
      options: { ...options.websocket, ...perMessageDeflateOf(compressionOf(options)), maxPayload: options.maxPayload, handleProtocols } as never,
      // Our shutdown sends 1012 and waits for the handshakes; @fastify/websocket's
      // default would close with no code and not wait.
      preClose: async function () {
        await realtime.shutdown()
        silent.release()
        await new Promise<void>((resolve) => websocketServerOf(app).close(() => resolve()))
        releaseUpgrades()
        websocketOwners.delete(app.server)
      },
      // Protocol errors of a peer (bad UTF-8, too big) are closed by ws itself with
      // the right code; they are the client's fault, not the server's.
      errorHandler: (error, _socket, request) => {
        request.log.debug({ err: error }, 'websocket error')
      }
    })
    // A later app.register(websocket) would crash the process: it is taken as done instead.
    adoptLaterWebsocket(app, options.path)
  } else {
    // The server is shared (the app's own, or another fastify-realtime's in a parent
    // context): its options are already set.
    if (input.websocket !== undefined) throw new errorCodes.FST_REALTIME_INVALID_OPTION('websocket', 'the WebSocket server is already registered (@fastify/websocket); give these options where it is registered')
    // Compression is negotiated by that server: an option it cannot honour is refused, not ignored.
    const compressionProblem = sharedCompressionProblem(compressionOf(options), websocketServerOf(app).options.perMessageDeflate)
    if (compressionProblem !== null) throw new errorCodes.FST_REALTIME_INVALID_OPTION('compression', compressionProblem)
    websocketServerOf(app).options.handleProtocols ??= handleProtocols
    app.addHook('preClose', async () => {
      await realtime.shutdown()
      silent.release()
    })
  }

  // Once per ws server, which registrations in child contexts share.
  const wss = websocketServerOf(app)
  if (!wss.listeners('headers').includes(corkHandshake)) wss.on('headers', corkHandshake)
  app.decorate('realtime', realtime)
  if (metrics !== undefined) await registerMetrics(app, realtime, metrics)

  app.route({
    method: 'GET',
    url: options.path,
    // A callback hook, not an async one: an upgrade that is let through (nearly all of
    // them) costs no promise and no extra turn of the microtask queue.
    onRequest: (request, reply, done) => {
      // @fastify/websocket's injectWS (11.3) writes Sec-WebSocket-Version as the number 13,
      // which ws 8.23.1 and later refuse with 400; the header of a real request is a string.
      const headers = request.raw.headers as Record<string, unknown>
      if (typeof headers['sec-websocket-version'] === 'number') headers['sec-websocket-version'] = String(headers['sec-websocket-version'])
      const refusal = subprotocolRefusal(request, spoken) ?? realtime.admission(request)
      if (refusal === null) {
        done()
        return
      }
      reply.code(refusal.status).send({ statusCode: refusal.status, error: STATUS_TEXT[refusal.status], message: refusal.message })
    },
    handler: async (_request, reply) => reply.code(426).header('upgrade', 'websocket').send({ statusCode: 426, error: 'Upgrade Required', message: 'This endpoint speaks WebSocket' }),
    wsHandler: (socket, request) => {
      realtime.accept(socket, releaseUpgrade(socket, request, ownWebsocket))
    }
  })

  registerAsyncApi(app, realtime)
  app.addHook('onReady', async () => { await realtime.start() })
  app.addHook('onClose', async () => {
    await realtime.shutdown()
    if (ownBroker) await broker.close()
  })
}
