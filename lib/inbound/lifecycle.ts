// The life of a connection, from the upgrade request to its one cleanup: admission
// (origin, connection caps) before the upgrade, accepting the socket, the onConnect
// hooks and `welcome`, the counts per address and per user, and the cleanup that
// leaves every topic and tells onDisconnect, whatever ended the connection.
import type { FastifyRequest } from 'fastify'
import type { RawData, WebSocket } from 'ws'
import type { Answers } from '../connection/answer.js'
import { Connection, type ConnectionLimits } from '../connection/connection.js'
import type { Dispatcher } from './dispatch.js'
import { isRealtimeError, wireErrors } from '../protocol/errors.js'
import { authReplyData, welcomeFrame, type MessageId } from '../wire/frames.js'
import { runHooks, runObservers, type DisconnectInfo, type Hooks } from '../messages/hooks.js'
import type { ResolvedOptions } from '../config/options.js'
import { CloseCode, ReadyState } from '../protocol/constants.js'
import type { Registry } from '../connection/registry.js'
import type { Heartbeat } from '../connection/heartbeat.js'
import type { TopicCommands } from './topic-commands.js'
import type { Users } from '../config/users.js'
import { channels } from '../protocol/diagnostics.js'

export const kConnection = Symbol('fastify-realtime.connection')
// Optional in the type: ws's listener signatures are typed for a plain WebSocket.
type SocketWithConnection = WebSocket & { [kConnection]?: Connection<any> }

/**
 * The close codes ws sends when a peer breaks the protocol. ws then stops reading, so
 * the peer's answering close frame is never parsed and its 'close' event says 1006;
 * the hooks and metrics are to hear the code that was sent.
 */
const PROTOCOL_ERROR_CODES: Record<string, number> = {
  WS_ERR_INVALID_UTF8: CloseCode.INVALID_PAYLOAD,
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: CloseCode.TOO_BIG,
  WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH: CloseCode.TOO_BIG,
  WS_ERR_TOO_MANY_BUFFERED_PARTS: CloseCode.TOO_BIG
}

/**
 * One error listener for every socket. A peer's protocol errors (bad UTF-8, too big) are
 * its fault, not the server's: logged at debug, and ws closes the connection itself.
 */
function onSocketError (this: SocketWithConnection, error: Error & { code?: string }): void {
  const connection = this[kConnection] as Connection<any>
  connection.request.log.debug({ err: error }, 'websocket error')
  const code = error.code
  if (typeof code !== 'string' || !code.startsWith('WS_ERR_')) return
  // Every other WS_ERR_ (bad opcode, mask, RSV bits, close code) is a 1002 in ws.
  connection.closeInfo ??= { code: PROTOCOL_ERROR_CODES[code] ?? CloseCode.PROTOCOL_ERROR, reason: error.message }
}

function onPong (this: SocketWithConnection): void {
  (this[kConnection] as Connection<any>).lastSeen = Date.now()
}

export interface Refusal {
  status: number
  message: string
}

export class Lifecycle<U> {
  /** Every socket we accepted, admitted or not: what app.close() must wait for. */
  readonly live = new Set<Connection<U>>()
  /** Connections whose onConnect hooks run, by id: `app.realtime.subscribe` reaches them before they are registered. */
  readonly admitting = new Map<string, Connection<U>>()
  readonly #perIp = new Map<string, number>()
  readonly #options: Readonly<ResolvedOptions>
  readonly #registry: Registry<U>
  readonly #hooks: Hooks<U>
  readonly #users: Users
  readonly #dispatcher: Dispatcher<U>
  readonly #commands: TopicCommands<U>
  readonly #answers: Answers
  readonly #limits: ConnectionLimits
  readonly #heartbeat: Heartbeat
  /** Socket listeners shared by every connection: three closures less per connection. */
  readonly #onMessage: (this: SocketWithConnection, raw: RawData, isBinary: boolean) => void
  readonly #onClose: (this: SocketWithConnection, code: number, reason: Buffer) => void
  /** Set when shutdown starts: no new connection is admitted. */
  closing = false
  /** The shutdown's close code and reason, for a socket accepted after it started. */
  #closeWith: { code: number, reason: string } | null = null
  /** Set when shutdown has ended: every connection is gone. */
  closed = false
  #shutdown: Promise<void> | null = null

  constructor (options: Readonly<ResolvedOptions>, registry: Registry<U>, hooks: Hooks<U>, users: Users, dispatcher: Dispatcher<U>, commands: TopicCommands<U>, answers: Answers, limits: ConnectionLimits, heartbeat: Heartbeat) {
    this.#options = options
    this.#heartbeat = heartbeat
    this.#registry = registry
    this.#hooks = hooks
    this.#users = users
    this.#dispatcher = dispatcher
    this.#commands = commands
    this.#answers = answers
    this.#limits = limits
    this.#onMessage = function (raw, isBinary) { dispatcher.onFrame(this[kConnection] as Connection<U>, raw, isBinary) }
    const cleanup = this.#cleanup.bind(this)
    this.#onClose = function (code, reason) { cleanup(this[kConnection] as Connection<U>, code, reason) }
  }

  /**
   * Decides, before the upgrade, whether a connection may open: an HTTP status and
   * message to refuse it with, or null. Runs as the endpoint's onRequest hook, after
   * the app's own hooks (so `request.user` is known when hooks authenticate).
   */
  admission (request: FastifyRequest): Refusal | null {
    const allowed = this.#options.allowedOrigins
    const origin = request.headers.origin
    if (allowed !== undefined && origin !== undefined && !allowed.includes(origin)) {
      return { status: 403, message: 'Origin not allowed' }
    }
    if (this.live.size >= this.#options.maxConnections) return { status: 503, message: 'Too many connections; try again later' }
    if ((this.#perIp.get(request.ip) ?? 0) >= this.#options.maxConnectionsPerIp) return { status: 429, message: 'Too many connections from this address' }
    const user = this.#users.fromRequest(request)
    const userId = user === undefined ? undefined : this.#users.idOf(user)
    if (userId !== undefined && this.#registry.byUser(userId).length >= this.#options.maxConnectionsPerUser) {
      return { status: 429, message: 'Too many connections for this user' }
    }
    return null
  }

  /**
   * Takes over an upgraded socket. Listeners are attached in this same tick, before
   * any await, so no frame that arrives while authentication runs is lost.
   */
  accept (socket: WebSocket, request: FastifyRequest): Connection<U> {
    const authenticating = this.#dispatcher.auth !== null
    const connection = new Connection<U>(socket, request, authenticating ? 'authenticating' : 'open', this.#limits)
    this.live.add(connection)
    const ip = connection.ip = request.ip
    const fromIp = (this.#perIp.get(ip) ?? 0) + 1
    this.#perIp.set(ip, fromIp)

    // Shared listeners find their connection on the socket.
    const shared = socket as SocketWithConnection
    shared[kConnection] = connection
    shared.on('message', this.#onMessage)
    shared.on('pong', onPong)
    // on, not once: ws emits 'close' once, and once() would wrap the listener per socket.
    shared.on('close', this.#onClose)
    shared.on('error', onSocketError)

    if (this.#closeWith !== null) {
      // Accepted while the server shuts down: told the same code as everyone else.
      connection.close(this.#closeWith.code, this.#closeWith.reason)
    } else if (this.live.size > this.#options.maxConnections) {
      // Connections that raced past admission() together are refused here instead.
      connection.close(CloseCode.TRY_AGAIN_LATER, 'too many connections')
    } else if (fromIp > this.#options.maxConnectionsPerIp) {
      connection.close(CloseCode.CONNECTION_LIMIT, 'too many connections from this address')
    } else if (authenticating) {
      connection.authTimer = setTimeout(() => {
        if (connection.state === 'authenticating') connection.close(CloseCode.AUTH_TIMEOUT, 'authentication timeout')
      }, this.#options.authTimeout).unref()
    } else {
      this.admit(connection, this.#users.fromRequest(request) as U | undefined)
    }
    return connection
  }

  /**
   * An authenticated connection: the onConnect hooks decide, then it is registered and
   * welcomed (after the reply to its `auth`, when it authenticated by message).
   */
  admit (connection: Connection<U>, user: U | undefined, auth?: { id: MessageId }): void {
    connection.user = user
    connection.userId = user === undefined ? undefined : this.#users.idOf(user)
    if (this.#overUserLimit(connection)) return
    if (this.#hooks.onConnect.length === 0) {
      this.#open(connection, auth)
      return
    }
    // Frames sent while onConnect runs wait behind it, as they do behind `auth`.
    connection.backlog ??= []
    this.admitting.set(connection.id, connection)
    runHooks(this.#hooks.onConnect, connection).finally(() => this.admitting.delete(connection.id)).then(() => {
      if (connection.state === 'closed') {
        // It closed while onConnect ran. It passed, so it gets its one onDisconnect.
        this.#disconnected(connection, connection.closeInfo as DisconnectInfo)
      } else if (this.#overUserLimit(connection)) {
        // Another connection of the user was admitted while this one's hooks ran.
        this.#disconnected(connection, { code: CloseCode.CONNECTION_LIMIT, reason: 'too many connections for this user' })
      } else {
        this.#open(connection, auth)
      }
    }, (err: unknown) => {
      if (!connection.isOpen) return
      // A RealtimeError is a refusal the hook meant; anything else is a bug in the hook.
      if (isRealtimeError(err)) connection.log.info({ err }, 'onConnect refused the connection')
      else connection.log.error({ err }, 'onConnect hook failed; the connection is refused')
      const refusal = isRealtimeError(err) ? err : wireErrors.forbidden()
      if (auth !== undefined) this.#answers.error(connection, auth.id, refusal)
      connection.close(refusal.closeCode ?? CloseCode.DISCONNECTED, isRealtimeError(err) ? err.message : 'connection refused')
    })
  }

  #overUserLimit (connection: Connection<U>): boolean {
    const userId = connection.userId
    if (userId === undefined || this.#registry.byUser(userId).length < this.#options.maxConnectionsPerUser) return false
    connection.close(CloseCode.CONNECTION_LIMIT, 'too many connections for this user')
    return true
  }

  #open (connection: Connection<U>, auth: { id: MessageId } | undefined): void {
    connection.state = 'open'
    this.#registry.add(connection)
    this.#heartbeat.add(connection)
    if (auth !== undefined) this.#answers.reply(connection, auth.id, authReplyData(this.#users.serialize(connection.user)))
    connection.send(welcomeFrame(connection.id, this.#options.heartbeat))
    if (channels.connectionOpen.hasSubscribers) channels.connectionOpen.publish({ connection })
    // The request's logger, not connection.log: that child is made only when needed.
    connection.request.log.debug({ connectionId: connection.id, userId: connection.userId }, 'realtime connection accepted')
    this.#dispatcher.drain(connection)
  }

  /** The one cleanup of a connection, whatever ended it (close, error, heartbeat, shutdown). */
  #cleanup (connection: Connection<U>, code: number, reason: Buffer): void {
    clearTimeout(connection.authTimer)
    clearTimeout(connection.expiryTimer)
    clearTimeout(connection.closeTimer)
    const ip = connection.ip
    const fromIp = (this.#perIp.get(ip) as number) - 1
    if (fromIp === 0) this.#perIp.delete(ip)
    else this.#perIp.set(ip, fromIp)
    connection.backlog = null
    connection.state = 'closed'
    connection.closeInfo ??= { code, reason: reason.toString() }
    this.live.delete(connection)
    this.#heartbeat.remove(connection)
    if (channels.connectionClose.hasSubscribers) channels.connectionClose.publish({ connection, code: connection.closeInfo.code, reason: connection.closeInfo.reason })
    const registered = this.#registry.delete(connection)
    const ends: Array<Promise<void>> = []
    // A copy: ending a subscription takes it out of the map. One still in its onConnect
    // hooks may hold the server's subscriptions (app.realtime.subscribe) already.
    for (const subscription of [...connection.subscriptions.values()]) {
      const ended = this.#commands.end(connection, subscription, 'disconnect')
      if (ended !== undefined) ends.push(ended)
    }
    // Only a connection that was opened is registered: one refused, or still in its
    // onConnect hooks, has no onDisconnect here (see admit()).
    if (!registered) return
    connection.request.log.debug({ connectionId: connection.id, code }, 'realtime connection closed')
    if (this.#hooks.onDisconnect.length > 0) {
      const info = connection.closeInfo
      // onDisconnect comes after every onUnsubscribe of the connection.
      Promise.all(ends).then(() => this.#disconnected(connection, info)).catch(() => {})
    }
  }

  #disconnected (connection: Connection<U>, info: DisconnectInfo): void {
    runObservers(this.#hooks.onDisconnect, connection.log, 'onDisconnect', connection, info).catch(() => {})
  }

  /**
   * Graceful shutdown, once however often it is asked for: handlers in flight finish and
   * send their replies (up to `closeTimeout`; those still running then are answered
   * INTERNAL, as any close answers them: connection.ts), then every client is closed with `code`
   * (1012 by default: come back at once, with jitter) and terminated if it has not
   * answered within `closeGrace`. It ends within closeTimeout + closeGrace.
   */
  shutdown (code: number, reason: string): Promise<void> {
    this.#shutdown ??= this.#shutdownNow(code, reason)
    return this.#shutdown
  }

  async #shutdownNow (code: number, reason: string): Promise<void> {
    this.closing = true
    this.#closeWith = { code, reason }
    this.#dispatcher.draining = true
    const waitUntil = Date.now() + this.#options.closeTimeout
    await within(this.#dispatcher.idle(), this.#options.closeTimeout)
    // What the handlers published (and what the broker handed over) reaches every subscriber
    // before the close frames: a sliced fan-out may still be under way.
    await within(this.#commands.hub.idle(), Math.max(0, waitUntil - Date.now()))
    const pending = [...this.live].map((connection) => new Promise<void>((resolve) => {
      if (connection.socket.readyState === ReadyState.CLOSED) return resolve()
      connection.socket.once('close', () => resolve())
      // closeTimeout has passed: what is still running is answered now (INTERNAL, it may have run), then the close.
      connection.close(code, reason, 0)
    }))
    // Each close terminates its socket after closeGrace; the margin covers a busy loop.
    await within(Promise.all(pending), this.#options.closeGrace + 100)
    for (const connection of this.live) connection.terminate()
    this.closed = true
  }
}

/**
 * Waits for `work`, or `ms` at most. The timer is not unref'd: it is bounded and
 * cleared, and a shutdown that app.close() awaits must not see the event loop empty
 * under it when the last sockets go and only unref'd timers are left.
 */
async function within (work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<void>((resolve) => { timer = setTimeout(resolve, ms) })
  await Promise.race([work, timeout])
  clearTimeout(timer)
}
