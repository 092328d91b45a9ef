// The client of fastify-realtime for browsers and Node. It speaks realtime.v1 over any
// WebSocket implementation with the browser's interface (the global one, or `ws` in
// Node 20), and keeps a connection alive by itself: it reconnects with jittered
// backoff, authenticates again, resubscribes every topic from the last offset it
// saw (topics.ts), and sends the requests that waited meanwhile (requests.ts). In a
// browser it also follows the network and the page's visibility (network.ts).
//
// Nothing here imports a Node module: the same file is bundled for browsers.
import type {
  Contract, EventData, EventName, RouteData, RouteName, RouteReply, TopicMessage, TopicNames
} from '../contract.js'
import { backoffDelay, resolveBackoff, type ResolvedBackoff } from './backoff.js'
import { Emitter } from './emitter.js'
import { fromWire, RealtimeClientError } from './errors.js'
import { browserOnline, defaultTargets, watchNetwork } from './network.js'
import { CLIENT_BUILTINS, shouldReconnect, SUBPROTOCOL } from './protocol.js'
import { Requests } from './requests.js'
import { Topics } from './topics.js'
import {
  CLIENT_EVENTS, type ClientEvents, type ClientOptions, type ClientState, type MessageMeta, type NetworkTargets, type PresenceMember,
  type RequestError, type RequestOptions, type ServerFrame, type SubscribeOptions, type Subscription, type TokenSource,
  type WebSocketConstructor, type WebSocketLike, type WelcomeInfo
} from './types.js'
import { clientError, positiveNumber, ref, resolveUrl, unref, type Timer } from './util.js'

interface InternalSocket extends WebSocketLike {
  onopen: ((event: unknown) => void) | null
  onmessage: ((event: { data: unknown }) => void) | null
  onclose: ((event: { code: number, reason: string }) => void) | null
  onerror: ((event: unknown) => void) | null
  terminate?: () => void
}

const OPEN = 1

export class RealtimeClient<C extends Contract = Contract> {
  readonly url: string
  /** The server's id of the current connection; undefined while not connected. */
  connectionId: string | undefined
  /** The user as the server's `auth` reply gave it, when the client authenticated. */
  user: unknown

  readonly #WebSocket: WebSocketConstructor
  readonly #getToken: TokenSource | undefined
  readonly #contract: Contract | undefined
  readonly #connectTimeout: number
  readonly #backoff: ResolvedBackoff
  readonly #heartbeat: false | { interval?: number, timeout?: number }
  readonly #keepAlive: boolean
  readonly #emitter: Emitter
  readonly #requests: Requests
  readonly #topics: Topics
  readonly #network: NetworkTargets | false

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
  #liveTimer: ReturnType<typeof setInterval> | undefined
  #probeTimer: Timer | undefined
  #liveTimeout = 10_000
  #lastFrameAt = 0
  /** Frames received on the current connection: a probe's answer is any frame after it. */
  #frames = 0
  #pinged = false
  #online: boolean
  /** Requests wait for a connection: in Node, the reconnect timer keeps the process alive. */
  #holding = false
  #unwatch: (() => void) | null = null

  constructor (options: ClientOptions<C>) {
    if (options === null || typeof options !== 'object') throw new TypeError('createClient: options are required')
    this.url = resolveUrl(options.url)
    const Ctor = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
    if (typeof Ctor !== 'function') {
      throw new TypeError('createClient: no WebSocket available; pass the `WebSocket` option (in Node 20: `import { WebSocket } from \'ws\'`)')
    }
    this.#WebSocket = Ctor
    if (options.getToken !== undefined && typeof options.getToken !== 'function') throw new TypeError('createClient: getToken must be a function')
    this.#getToken = options.getToken
    this.#contract = options.contract
    const requestTimeout = positiveNumber('createClient: requestTimeout', options.requestTimeout, 10_000)
    const maxQueue = options.maxQueue === 0 ? 0 : positiveNumber('createClient: maxQueue', options.maxQueue, 100)
    const queueTimeout = options.queueTimeout === undefined ? undefined : positiveNumber('createClient: queueTimeout', options.queueTimeout, 0)
    this.#connectTimeout = positiveNumber('createClient: connectTimeout', options.connectTimeout, 10_000)
    this.#backoff = resolveBackoff(options.backoff)
    this.#heartbeat = options.heartbeat ?? {}
    this.#keepAlive = options.keepAlive === true
    if (options.network !== undefined && options.network !== false && (options.network === null || typeof options.network !== 'object')) {
      throw new TypeError('createClient: network must be false or an object of event targets')
    }
    this.#network = options.network ?? defaultTargets()
    this.#online = options.network === undefined ? browserOnline() : true
    this.#emitter = new Emitter((err, event) => this.#listenerFailed(err, event))
    const client = this
    this.#requests = new Requests({
      get open () { return client.#welcomed },
      write: (frame) => this.#write(frame),
      later: (fn, ms) => this.#later(fn, ms),
      waiting: (count) => this.#hold(count > 0)
    }, { requestTimeout, maxQueue, queueTimeout })
    this.#topics = new Topics({
      get open () { return client.#welcomed },
      get serial () { return client.#serial },
      call: (type, data, onReply, onError) => this.#call(type, data, onReply, onError),
      emit: (event, ...args) => this.#emitter.emit(event, ...args),
      later: (fn, ms) => this.#later(fn, ms),
      retryDelay: this.#backoff.initialDelay,
      authenticate: () => this.#authenticate(),
      authFailed: (err, serial) => this.#authFailed(err, serial),
      listenerFailed: (err, event) => this.#listenerFailed(err, event)
    })
    if (options.autoConnect !== false) this.connect()
  }

  /** connecting, open, reconnecting or closed. */
  get state (): ClientState {
    return this.#state
  }

  /** False after the browser said it went offline, until it says it is online again. Always true in Node. */
  get online (): boolean {
    return this.#online
  }

  /** Requests waiting for a connection. */
  get queued (): number {
    return this.#requests.queued
  }

  /** The topics subscribed (or being subscribed) and the last position seen on each. */
  get subscriptions (): Array<{ topic: string, active: boolean, offset: number | undefined, epoch: string | undefined }> {
    return this.#topics.list
  }

  // ---------------------------------------------------------------- events

  /** Listens to a client event or to an application event; returns a function that stops listening. */
  on<K extends keyof ClientEvents> (event: K, listener: ClientEvents[K]): () => void
  on<K extends EventName<C>> (event: K, listener: (data: EventData<C, K>) => void): () => void
  on (event: string, listener: (...args: any[]) => void): () => void {
    return this.#emitter.on(event, listener)
  }

  /** Whether `err` is an error of this client, typed as what a request of `type` can reject with. */
  isError<K extends RouteName<C>> (err: unknown, _type?: K): err is RequestError<C, K> {
    return err instanceof RealtimeClientError
  }

  // ---------------------------------------------------------------- requests

  /**
   * Sends a message to a route and resolves with its reply, typed by the route's
   * reply schema. Rejects with a `RealtimeClientError`: the route's own codes, the
   * protocol's, TIMEOUT, QUEUE_FULL, QUEUE_TIMEOUT, DISCONNECTED (sent, then the
   * connection was lost: it may have run; idempotent requests are sent again instead)
   * or CLOSED. While disconnected the request waits in the queue.
   */
  request<K extends RouteName<C>> (type: K, data: RouteData<C, K>, options: RequestOptions = {}): Promise<RouteReply<C, K>> {
    if (typeof type !== 'string' || CLIENT_BUILTINS.has(type)) {
      return Promise.reject(new TypeError(`request: "${String(type)}" is not a route name; use subscribe(), publish() or presence() for built-ins`))
    }
    const idempotent = this.#contract?.routes?.[type]?.idempotent === true
    return this.#request(type, data, options, idempotent) as Promise<RouteReply<C, K>>
  }

  /**
   * Sends a fire-and-forget message (no id, no reply). Returns false, sending nothing,
   * when not connected: such messages are not queued. A failure comes as an `error` event.
   */
  send<K extends RouteName<C>> (type: K, data: RouteData<C, K>): boolean {
    if (typeof type !== 'string' || CLIENT_BUILTINS.has(type)) throw new TypeError(`send: "${String(type)}" is not a route name`)
    if (!this.#welcomed) return false
    return this.#write(data === undefined ? { type } : { type, data })
  }

  /** Publishes on a topic that lets clients publish; resolves with the publication's offset. */
  publish<T extends TopicNames<C>> (topic: T, data: TopicMessage<C, T>, options: RequestOptions = {}): Promise<{ offset: number }> {
    return this.#request('publish', { topic, data }, options, false) as Promise<{ offset: number }>
  }

  /** The members present on a topic with presence on. */
  presence<T extends TopicNames<C>> (topic: T, options: RequestOptions = {}): Promise<{ members: PresenceMember[] }> {
    return this.#request('presence', { topic }, options, false) as Promise<{ members: PresenceMember[] }>
  }

  #request (type: string, data: unknown, options: RequestOptions, idempotent: boolean): Promise<unknown> {
    if (this.#state === 'closed') return Promise.reject(clientError('CLOSED', 'The client is closed'))
    return this.#requests.request(type, data, options, idempotent)
  }

  /**
   * A request of the client's own (auth, subscribe, unsubscribe) on the current
   * connection. The server answers every one; no answer in time means the connection
   * is broken, and it is dropped.
   */
  #call (type: string, data: unknown, onReply: (value: unknown) => void, onError: (err: any) => void = () => {}): void {
    const serial = this.#serial
    this.#requests.call(type, data, onReply, onError, () => {
      if (this.#serial === serial) this.#abandon(`no answer to ${type}`)
    })
  }

  /** Writes a frame on the open socket; false when there is none. Throws when JSON cannot hold it. */
  #write (frame: Record<string, unknown>): boolean {
    const socket = this.#socket
    if (socket === null || socket.readyState !== OPEN) return false
    socket.send(JSON.stringify(frame))
    return true
  }

  // ---------------------------------------------------------------- topics

  /**
   * Subscribes to a topic; the listener gets every publication, typed by the topic's
   * message schema, once and in offset order, across reconnections. Returns a function
   * that unsubscribes this listener (the topic is left when its last listener goes).
   */
  subscribe<T extends TopicNames<C>> (topic: T, listener: (message: TopicMessage<C, T>, meta: MessageMeta) => void, options: SubscribeOptions = {}): Subscription {
    return this.#topics.subscribe(topic, listener, options)
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
  close (code = 1000, reason = 'client closed'): Promise<void> {
    const socket = this.#socket
    this.#socket = null
    clearTimeout(this.#reconnectTimer)
    this.#reconnectTimer = undefined
    const wasOpen = this.#state !== 'closed'
    this.#ended(code, reason, true)
    this.#setState('closed')
    if (wasOpen) this.#emitter.emit('close', { code, reason, reconnect: false })
    if (socket === null) return Promise.resolve()
    return new Promise((resolve) => {
      // A peer that does not answer the close handshake is not waited for long.
      const timer = this.#later(() => {
        socket.terminate?.()
        resolve()
      }, 1000)
      const done = (): void => {
        clearTimeout(timer)
        resolve()
      }
      socket.onclose = done
      socket.onerror = () => {}
      socket.onmessage = null
      socket.onopen = null
      try {
        socket.close(code, reason)
      } catch {
        socket.terminate?.()
        done()
      }
    })
  }

  #open (): void {
    this.#reconnectTimer = undefined
    const serial = ++this.#serial
    this.#attempts++
    this.#emitter.emit('attempt', { attempt: this.#attempts, url: this.url })
    if (this.#serial !== serial || this.#state === 'closed') return // a listener closed the client
    let socket: InternalSocket
    try {
      socket = new this.#WebSocket(this.url, SUBPROTOCOL) as unknown as InternalSocket
    } catch (err) {
      // A URL the WebSocket refuses outright: trying again cannot help.
      this.#error(err)
      this.#ended(1006, 'the WebSocket could not be created', true)
      this.#setState('closed')
      this.#emitter.emit('close', { code: 1006, reason: 'the WebSocket could not be created', reconnect: false })
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
    this.#lastFrameAt = Date.now()
    this.#frames++
    this.#pinged = false
    if (typeof raw !== 'string') return
    let frame: ServerFrame
    try {
      frame = JSON.parse(raw)
    } catch {
      return
    }
    if (frame === null || typeof frame !== 'object' || Array.isArray(frame) || typeof frame.type !== 'string') return
    this.#emitter.emit('*', frame)
    switch (frame.type) {
      case 'reply':
      case 'error':
        this.#onAnswer(frame)
        return
      case 'welcome':
        this.#onWelcome(frame.data as Partial<WelcomeInfo> | undefined)
        return
      case 'message':
        this.#topics.onMessage(frame)
        return
      case 'unsubscribed':
        this.#topics.onUnsubscribed(frame)
        return
      case 'join':
      case 'leave':
        this.#emitter.emit(frame.type, { topic: frame.topic, member: frame.member })
        return
      case 'pong':
        return
    }
    if (!CLIENT_EVENTS.has(frame.type)) this.#emitter.emit(frame.type, frame.data)
  }

  #onAnswer (frame: ServerFrame): void {
    // An error without an id answers a fire-and-forget message.
    if (!this.#requests.answer(frame) && frame.type === 'error') this.#error(fromWire(frame.error))
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
    this.#startLiveness(info.heartbeat)
    // Subscribe frames go first: the server handles a connection's frames in order and
    // holds what follows a subscribe until it is answered, so the requests queued while
    // away run once the topics are back.
    const serial = this.#serial
    this.#topics.resubscribe()
    if (this.#serial === serial) this.#requests.flush()
    if (this.#serial !== serial || !this.#welcomed) return
    this.#setState('open')
    this.#emitter.emit('welcome', info)
  }

  #startLiveness (announced: { interval: number, timeout: number }): void {
    clearInterval(this.#liveTimer)
    if (this.#heartbeat === false) return
    const interval = this.#heartbeat.interval ?? announced.interval
    const timeout = this.#heartbeat.timeout ?? announced.timeout
    this.#liveTimeout = timeout
    this.#lastFrameAt = Date.now()
    this.#pinged = false
    const tick = Math.max(10, Math.floor(Math.min(interval, timeout) / 4))
    this.#liveTimer = setInterval(() => {
      const silent = Date.now() - this.#lastFrameAt
      if (silent > interval + timeout) {
        this.#abandon('no answer from the server')
      } else if (silent >= interval && !this.#pinged) {
        this.#pinged = true
        this.#write({ type: 'ping' })
      }
    }, tick)
    if (!this.#keepAlive) unref(this.#liveTimer)
  }

  /** Gives up on the current socket (dead, or too slow to be welcomed) and reconnects. */
  #abandon (reason: string): void {
    const socket = this.#socket
    if (socket === null) return
    this.#socket = null
    try {
      if (typeof socket.terminate === 'function') socket.terminate()
      else socket.close(4000, reason)
    } catch {}
    this.#lost(1006, reason)
  }

  /** The connection ended (the socket is already let go). */
  #lost (code: number, reason: string): void {
    const again = shouldReconnect(code)
    this.#ended(code, reason, !again)
    if (again) {
      const delayMs = backoffDelay(this.#failures++, this.#backoff)
      this.#reconnectTimer = this.#later(() => this.#open(), delayMs)
      if (this.#holding) ref(this.#reconnectTimer)
      this.#emitter.emit('close', { code, reason, reconnect: true, delayMs })
      this.#setState('reconnecting')
    } else {
      this.#setState('closed')
      this.#emitter.emit('close', { code, reason, reconnect: false })
    }
  }

  /**
   * Clears what belonged to the connection: requests in flight fail (DISCONNECTED, or
   * CLOSED when `final`, which also fails the queued ones) or, idempotent, wait to be
   * sent again.
   */
  #ended (code: number, reason: string, final: boolean): void {
    this.#welcomed = false
    this.connectionId = undefined
    clearTimeout(this.#connectTimer)
    clearInterval(this.#liveTimer)
    clearTimeout(this.#probeTimer)
    this.#connectTimer = undefined
    this.#liveTimer = undefined
    this.#probeTimer = undefined
    this.#topics.reset()
    this.#requests.lost(code, reason, final)
  }

  // ---------------------------------------------------------------- network

  #onOffline (): void {
    this.#online = false
    this.#emitter.emit('network', false)
    // Nothing can get through: say so now rather than after the heartbeat gives up.
    this.#abandon('the browser went offline')
  }

  #onOnline (): void {
    this.#online = true
    this.#emitter.emit('network', true)
    if (this.#welcomed) {
      this.#probe()
    } else if (this.#reconnectTimer !== undefined) {
      // Back online: the delays grown while offline say nothing about the server.
      this.#failures = 0
      this.#reconnectNow()
    }
  }

  #onVisible (): void {
    if (this.#welcomed) this.#probe()
    else if (this.#reconnectTimer !== undefined) this.#reconnectNow()
  }

  #reconnectNow (): void {
    clearTimeout(this.#reconnectTimer)
    this.#open()
  }

  /** Sends a `ping`; no frame within the heartbeat timeout means the connection is dead. */
  #probe (): void {
    if (this.#probeTimer !== undefined) return
    const serial = this.#serial
    const frames = this.#frames
    this.#write({ type: 'ping' })
    this.#probeTimer = this.#later(() => {
      this.#probeTimer = undefined
      if (this.#serial === serial && this.#frames === frames) this.#abandon('no answer to a ping')
    }, this.#liveTimeout)
  }

  /** Listens to the browser's network events while the client is not closed. */
  #watch (on: boolean): void {
    if (!on) {
      this.#unwatch?.()
      this.#unwatch = null
    } else if (this.#unwatch === null && this.#network !== false) {
      this.#unwatch = watchNetwork(this.#network, {
        offline: () => this.#onOffline(),
        online: () => this.#onOnline(),
        visible: () => this.#onVisible()
      })
    }
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
    this.#watch(state !== 'closed')
    this.#emitter.emit('state', state, previous)
  }

  #later (fn: () => void, ms: number): Timer {
    const timer = setTimeout(fn, ms)
    if (!this.#keepAlive) unref(timer)
    return timer
  }

  #error (err: unknown): void {
    this.#emitter.emit('error', err instanceof Error ? err : new Error(String(err)))
  }

  /** A listener threw: tell the `error` listeners, or rethrow it where the host reports uncaught errors. */
  #listenerFailed (err: unknown, event: string): void {
    if (event !== 'error' && this.#emitter.has('error')) {
      this.#error(err)
    } else {
      queueMicrotask(() => { throw err })
    }
  }
}

/**
 * Creates a client. Give it the contract's type, by passing the contract
 * (`createClient({ url, contract })`) or as a type argument (`createClient<typeof contract>({ url })`).
 */
export function createClient<C extends Contract = Contract> (options: ClientOptions<C>): RealtimeClient<C> {
  return new RealtimeClient<C>(options)
}
