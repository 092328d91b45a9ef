// The connection of the fastify-realtime client, for browsers and Node. It speaks
// realtime.v1 over any WebSocket implementation with the browser's interface (the
// global one, or `ws` in Node 20), and keeps a connection alive by itself: it
// reconnects with jittered backoff, authenticates again, resubscribes every topic from
// the last offset it saw (topics.ts), and sends the requests that waited meanwhile
// (requests.ts). In a browser it also follows the network and the page's visibility
// (network.ts, liveness.ts).
//
// Nothing here imports a Node module: the same file is bundled for browsers.
import type { Contract } from '../protocol/contract.js'
import { backoffDelay, type ResolvedBackoff } from './backoff.js'
import { Emitter } from './emitter.js'
import { fromWire, RealtimeClientError } from './errors.js'
import { Liveness } from './liveness.js'
import { NetworkWatch } from './network.js'
import { resolveClientOptions } from './options.js'
import { answeredBeforeClose, CloseCode, ReadyState, shouldReconnect } from './protocol.js'
import { codecOf, type Codec } from './codec.js'
import { Requests } from './requests.js'
import { Topics } from './topics.js'
import {
  CLIENT_EVENTS, type ClientOptions, type ClientState, type ServerFrame, type TokenSource,
  type WebSocketConstructor, type WelcomeInfo
} from './types.js'
import { clientError, closeSocket, ref, unref, type InternalSocket, type Timer } from './util.js'

/**
 * The connection under the typed client: the socket and its lifecycle (reconnection,
 * authentication, welcome, liveness, the browser's network), with the requests and
 * topics it carries. `RealtimeClient` adds the typed public calls.
 */
export class ConnectionCore {
  readonly url: string
  /** The server's id of the current connection; undefined while not connected. */
  connectionId: string | undefined
  /** The user as the server's `auth` reply gave it, when the client authenticated. */
  user: unknown

  readonly #WebSocket: WebSocketConstructor
  readonly #getToken: TokenSource | undefined
  protected readonly contract: Contract | undefined
  readonly #connectTimeout: number
  readonly #backoff: ResolvedBackoff
  readonly #keepAlive: boolean
  protected readonly emitter: Emitter
  protected readonly requests: Requests
  protected readonly topics: Topics
  readonly #liveness: Liveness
  readonly #network: NetworkWatch
  readonly #codec: Codec

  #state: ClientState = 'closed'
  #socket: InternalSocket | null = null
  /** Incremented for every socket; replies and timers of an older one are ignored. */
  #serial = 0
  #welcomed = false
  /** Attempts since the last welcome: the backoff's exponent. */
  #failures = 0
  #attempts = 0
  #reconnectTimer: Timer | undefined
  #connectTimer: Timer | undefined
  /** Requests wait for a connection: in Node, the reconnect timer keeps the process alive. */
  #holding = false

  constructor (options: ClientOptions<any>) {
    const o = resolveClientOptions(options)
    this.url = o.url
    this.#WebSocket = o.WebSocket
    this.#getToken = o.getToken
    this.contract = o.contract
    this.#connectTimeout = o.connectTimeout
    this.#backoff = o.backoff
    this.#keepAlive = o.keepAlive
    this.#codec = codecOf(o.encoding)
    this.emitter = new Emitter((err, event) => this.#listenerFailed(err, event))
    const client = this
    const later = (fn: () => void, ms: number): Timer => this.#later(fn, ms)
    this.requests = new Requests({
      get open () { return client.#welcomed },
      write: (frame) => this.write(frame),
      later,
      waiting: (count) => this.#hold(count > 0)
    }, o)
    this.topics = new Topics({
      get open () { return client.#welcomed },
      get serial () { return client.#serial },
      call: (type, data, onReply, onError) => this.#call(type, data, onReply, onError),
      emit: (event, ...args) => this.emitter.emit(event, ...args),
      later,
      retryDelay: this.#backoff.initialDelay,
      authenticate: () => this.#authenticate(),
      authFailed: (err, serial) => this.#authFailed(err, serial),
      listenerFailed: (err, event) => this.#listenerFailed(err, event)
    })
    this.#liveness = new Liveness({ ping: () => this.write({ type: 'ping' }), dead: (reason) => this.#abandon(reason), later, keepAlive: o.keepAlive }, o.heartbeat)
    this.#network = new NetworkWatch(o.network, o.online, {
      offline: () => this.#onOffline(),
      online: () => this.#onOnline(),
      visible: () => this.#onVisible()
    })
    if (o.autoConnect) this.connect()
  }

  /** Whether the connection is welcomed: requests are written at once. */
  protected get welcomed (): boolean {
    return this.#welcomed
  }

  /** connecting, open, reconnecting or closed. */
  get state (): ClientState {
    return this.#state
  }

  /** False after the browser said it went offline, until it says it is online again. Always true in Node. */
  get online (): boolean {
    return this.#network.online
  }

  /** Requests waiting for a connection. */
  get queued (): number {
    return this.requests.queued
  }

  /** The topics subscribed (or being subscribed) and the last position seen on each. */
  get subscriptions (): Array<{ topic: string, active: boolean, offset: number | undefined, epoch: string | undefined }> {
    return this.topics.list
  }

  /**
   * A request of the client's own (auth, subscribe, unsubscribe) on the current
   * connection. The server answers every one; no answer in time means the connection
   * is broken, and it is dropped.
   */
  #call (type: string, data: unknown, onReply: (value: unknown) => void, onError: (err: any) => void = () => {}): void {
    const serial = this.#serial
    this.requests.call(type, data, onReply, onError, () => {
      if (this.#serial === serial) this.#abandon(`no answer to ${type}`)
    })
  }

  /** Writes a frame on the open socket; false when there is none. Throws when JSON cannot hold it. */
  protected write (frame: Record<string, unknown>): boolean {
    const socket = this.#socket
    if (socket === null || socket.readyState !== ReadyState.OPEN) return false
    socket.send(this.#codec.encode(frame))
    return true
  }

  // ---------------------------------------------------------------- authentication

  /**
   * Sends `auth` again with a fresh token from `getToken` on the live connection (the
   * server then serves it as that user). Reconnections call `getToken` by themselves.
   */
  async reauthenticate (): Promise<void> {
    if (!this.#welcomed) throw clientError('DISCONNECTED', 'Not connected')
    await this.#authenticate()
  }

  /** Gets a token and sends `auth` on the current connection; resolves once answered. */
  async #authenticate (): Promise<void> {
    if (this.#getToken === undefined) return
    const serial = this.#serial
    const token = await this.#getToken()
    if (this.#serial !== serial || this.#socket === null) throw clientError('DISCONNECTED', 'The connection was lost while getting a token')
    if (token === null || token === undefined) return
    await new Promise<void>((resolve, reject) => this.#call('auth', { token: String(token) }, (reply) => {
      // Set at once, so that `welcome` listeners (the frame right behind) see the user.
      if (this.#serial === serial) this.user = (reply as { user?: unknown } | undefined)?.user
      resolve()
    }, reject))
  }

  // ---------------------------------------------------------------- connection

  /** Opens the connection when the client is closed (new, or after `close()` or a final close code). */
  connect (): void {
    if (this.#state !== 'closed') return
    this.#failures = 0
    this.#setState('connecting')
    this.#open()
  }

  /**
   * Closes the connection and stops everything: no reconnection, no timer left;
   * waiting and pending requests fail with CLOSED. Subscriptions are kept, so
   * `connect()` later resumes them. Resolves when the socket is closed.
   */
  close (code: number = CloseCode.NORMAL, reason = 'client closed'): Promise<void> {
    const socket = this.#socket
    this.#socket = null
    clearTimeout(this.#reconnectTimer)
    this.#reconnectTimer = undefined
    const wasOpen = this.#state !== 'closed'
    // Closed from this side: what the server got may have run.
    this.#ended(code, reason, true, true)
    this.#setState('closed')
    if (wasOpen) this.emitter.emit('close', { code, reason, reconnect: false })
    if (socket === null) return Promise.resolve()
    return closeSocket(socket, code, reason, (fn, ms) => this.#later(fn, ms))
  }

  #open (): void {
    this.#reconnectTimer = undefined
    // MessagePack's encoder loads before the first socket; one that cannot load closes the client.
    if (!this.#codec.ready) return this.#codec.whenReady(() => { if (this.#state !== 'closed') this.#open() }, (err) => { this.#error(err); this.close(CloseCode.ABNORMAL, 'the MessagePack encoder could not be loaded').catch(() => {}) })
    const serial = ++this.#serial
    this.#attempts++
    this.emitter.emit('attempt', { attempt: this.#attempts, url: this.url })
    if (this.#serial !== serial || this.#state === 'closed') return // a listener closed the client
    let socket: InternalSocket
    try {
      socket = new this.#WebSocket(this.url, this.#codec.protocol) as unknown as InternalSocket
      socket.binaryType = 'arraybuffer'
    } catch (err) {
      // A URL the WebSocket refuses outright: trying again cannot help.
      this.#error(err)
      this.#ended(CloseCode.ABNORMAL, 'the WebSocket could not be created', true, false)
      this.#setState('closed')
      this.emitter.emit('close', { code: CloseCode.ABNORMAL, reason: 'the WebSocket could not be created', reconnect: false })
      return
    }
    this.#socket = socket
    socket.onopen = () => { if (this.#socket === socket) this.#onOpen() }
    socket.onmessage = (event) => { if (this.#socket === socket) this.#onData(event.data) }
    socket.onclose = (event) => {
      if (this.#socket !== socket) return
      this.#socket = null
      this.#lost(event.code, event.reason)
    }
    socket.onerror = () => {} // a close event follows
    this.#connectTimer = this.#later(() => this.#abandon('no welcome in time'), this.#connectTimeout)
  }

  #onOpen (): void {
    if (this.#getToken === undefined) return
    const serial = this.#serial
    this.#authenticate().catch((err: unknown) => this.#authFailed(err, serial))
  }

  #authFailed (err: unknown, serial: number): void {
    // Lost with its connection: the next connection authenticates again.
    if (err instanceof RealtimeClientError && (err.code === 'DISCONNECTED' || err.code === 'CLOSED' || err.code === 'TIMEOUT')) return
    // A refusal (UNAUTHORIZED) is followed by the server's close (4500), which decides
    // what comes next; a getToken that failed is retried with a new connection.
    this.#error(err)
    if (!(err instanceof RealtimeClientError) && this.#serial === serial) this.#abandon('getToken failed')
  }

  #onData (raw: unknown): void {
    this.#liveness.seen()
    const frame = this.#codec.decode(raw)
    if (frame === null) return
    this.emitter.emit('*', frame)
    switch (frame.type) {
      case 'reply':
      case 'error':
        this.#onAnswer(frame)
        return
      case 'welcome':
        this.#onWelcome(frame.data as Partial<WelcomeInfo> | undefined)
        return
      case 'message':
      case 'unsubscribed':
      case 'subscribed':
      case 'presence':
        this.topics.onFrame(frame)
        return
      case 'join':
      case 'leave':
        this.emitter.emit(frame.type, { topic: frame.topic, member: frame.member })
        return
      case 'pong':
        return
    }
    if (!CLIENT_EVENTS.has(frame.type)) this.emitter.emit(frame.type, frame.data)
  }

  #onAnswer (frame: ServerFrame): void {
    // An error without an id answers a fire-and-forget message.
    if (!this.requests.answer(frame) && frame.type === 'error') this.#error(fromWire(frame.error))
  }

  #onWelcome (data: Partial<WelcomeInfo> | undefined): void {
    if (this.#welcomed) return
    clearTimeout(this.#connectTimer)
    this.#welcomed = true
    this.#failures = 0
    const info: WelcomeInfo = {
      connectionId: typeof data?.connectionId === 'string' ? data.connectionId : '',
      heartbeat: {
        interval: Number(data?.heartbeat?.interval) || 25_000,
        timeout: Number(data?.heartbeat?.timeout) || 10_000
      }
    }
    this.connectionId = info.connectionId
    this.#liveness.start(info.heartbeat)
    // Subscribe frames go first: the server handles a connection's frames in order and
    // holds what follows a subscribe until it is answered, so the requests queued while
    // away run once the topics are back.
    const serial = this.#serial
    this.topics.resubscribe()
    if (this.#serial === serial) this.requests.flush()
    if (this.#serial !== serial || !this.#welcomed) return
    this.#setState('open')
    this.emitter.emit('welcome', info)
  }

  /** Gives up on the current socket (dead, or too slow to be welcomed) and reconnects. */
  #abandon (reason: string): void {
    const socket = this.#socket
    if (socket === null) return
    this.#socket = null
    try {
      if (typeof socket.terminate === 'function') socket.terminate()
      else socket.close(CloseCode.ABANDONED, reason)
    } catch {}
    this.#lost(CloseCode.ABNORMAL, reason)
  }

  /** The connection ended (the socket is already let go). */
  #lost (code: number, reason: string): void {
    const again = shouldReconnect(code)
    this.#ended(code, reason, !again, !answeredBeforeClose(code))
    if (again) {
      const delayMs = backoffDelay(this.#failures++, this.#backoff)
      this.#reconnectTimer = this.#later(() => this.#open(), delayMs)
      if (this.#holding) ref(this.#reconnectTimer)
      this.emitter.emit('close', { code, reason, reconnect: true, delayMs })
      this.#setState('reconnecting')
    } else {
      this.#setState('closed')
      this.emitter.emit('close', { code, reason, reconnect: false })
    }
  }

  /**
   * Clears what belonged to the connection: requests in flight fail (DISCONNECTED, or
   * CLOSED when `final`, which also fails the queued ones; `maybeRan` says whether they
   * may have run) or, idempotent, wait to be sent again.
   */
  #ended (code: number, reason: string, final: boolean, maybeRan: boolean): void {
    this.#welcomed = false
    this.connectionId = undefined
    clearTimeout(this.#connectTimer)
    this.#connectTimer = undefined
    this.#liveness.stop()
    this.topics.reset()
    this.requests.lost(code, reason, final, maybeRan)
  }

  // ---------------------------------------------------------------- network

  #onOffline (): void {
    this.emitter.emit('network', false)
    // Nothing can get through: say so now rather than after the heartbeat gives up.
    this.#abandon('the browser went offline')
  }

  #onOnline (): void {
    this.emitter.emit('network', true)
    if (this.#welcomed) {
      this.#liveness.probe()
      return
    }
    // An attempt started while offline may never open (a network that stalls answers
    // nothing until connectTimeout): give it up and start afresh on the network now back.
    if (this.#socket !== null) this.#abandon('the browser came back online')
    if (this.#reconnectTimer === undefined) return // closed (or never connected)
    // Back online: the delays grown while offline say nothing about the server.
    this.#failures = 0
    this.#reconnectNow()
  }

  #onVisible (): void {
    if (this.#welcomed) this.#liveness.probe()
    else if (this.#reconnectTimer !== undefined) this.#reconnectNow()
  }

  #reconnectNow (): void {
    clearTimeout(this.#reconnectTimer)
    this.#open()
  }

  /** In Node, a script awaiting a queued request is not ended while the client reconnects. */
  #hold (waiting: boolean): void {
    this.#holding = waiting && !this.#keepAlive
    if (this.#reconnectTimer === undefined || this.#keepAlive) return
    if (this.#holding) ref(this.#reconnectTimer)
    else unref(this.#reconnectTimer)
  }

  // ---------------------------------------------------------------- helpers

  #setState (state: ClientState): void {
    const previous = this.#state
    if (previous === state) return
    this.#state = state
    this.#network.active(state !== 'closed')
    this.emitter.emit('state', state, previous)
  }

  #later (fn: () => void, ms: number): Timer {
    const timer = setTimeout(fn, ms)
    if (!this.#keepAlive) unref(timer)
    return timer
  }

  #error (err: unknown): void {
    this.emitter.emit('error', err instanceof Error ? err : new Error(String(err)))
  }

  /** A listener threw: tell the `error` listeners, or rethrow it where the host reports uncaught errors. */
  #listenerFailed (err: unknown, event: string): void {
    if (event !== 'error' && this.emitter.has('error')) this.#error(err)
    else queueMicrotask(() => { throw err })
  }
}
