// The client of fastify-realtime for browsers and Node. It speaks realtime.v1 over any
// WebSocket implementation with the browser's interface (the global one, or `ws` in
// Node 20), and keeps a connection alive by itself: it reconnects with jittered
// backoff, authenticates again, resubscribes every topic from the last offset it
// saw, and sends the requests that waited meanwhile.
//
// Nothing here imports a Node module: the same file is bundled for browsers.
import type {
  Contract, EventData, EventName, RouteData, RouteErrorMap, RouteName, RouteReply, TopicMessage, TopicNames
} from '../contract.js'
import { backoffDelay, resolveBackoff, type BackoffOptions, type ResolvedBackoff } from './backoff.js'
import { Emitter } from './emitter.js'
import { fromWire, RealtimeClientError, type AnyRealtimeClientError, type ClientErrorCode } from './errors.js'
import { CLIENT_BUILTINS, shouldReconnect, SUBPROTOCOL, UnsubscribeCode, type ProtocolErrorCode } from './protocol.js'

// ------------------------------------------------------------------ public types

export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed'

/** The part of a WebSocket the client uses; the browser's and `ws`'s both fit. */
export interface WebSocketLike {
  readonly readyState: number
  send (data: string): void
  close (code?: number, reason?: string): void
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike

export type TokenSource = () => string | null | undefined | Promise<string | null | undefined>

export interface ClientOptions<C extends Contract = Contract> {
  /** `ws://host/ws`; in a browser a path such as `/ws` is resolved against the page's host. */
  url: string
  /** The contract shared with the server; only its type is used (`createClient<typeof contract>()` works as well). */
  contract?: C
  /** The WebSocket constructor. Default: `globalThis.WebSocket` (browsers, Node 22+); in Node 20 pass `ws`'s. */
  WebSocket?: WebSocketConstructor
  /**
   * Called before every connection, first one and reconnections alike, for the token
   * sent in the `auth` frame; may be async, so an expired token can be refreshed.
   * Returning null or undefined sends no `auth`.
   */
  getToken?: TokenSource
  /** Default timeout of a request in ms, time waiting in the queue included. Default 10000. */
  requestTimeout?: number
  /** Requests that may wait for a connection; one more fails with QUEUE_FULL. Default 100. */
  maxQueue?: number
  /** Ms from creating the socket to the server's `welcome`; longer counts as a failed attempt. Default 10000. */
  connectTimeout?: number
  /** Reconnection delays: exponential backoff with full jitter. */
  backoff?: BackoffOptions
  /**
   * Liveness check. By default the client follows the `heartbeat` of the server's
   * `welcome`: it sends `ping` after `interval` ms of silence and drops a connection
   * silent for `interval + timeout` ms. Numbers given here take precedence; false
   * turns the check off.
   */
  heartbeat?: false | { interval?: number, timeout?: number }
  /** Connect at once. Default true; with false, call `connect()`. */
  autoConnect?: boolean
  /**
   * In Node, whether the client keeps the process alive while it waits to reconnect.
   * Default false: its timers are unref'd, except a request's timeout, so a script
   * awaiting a request is not cut short (for at most that timeout).
   */
  keepAlive?: boolean
}

export interface RequestOptions {
  /** Overrides the client's `requestTimeout` for this request. */
  timeoutMs?: number
}

export interface MessageMeta {
  topic: string
  /** The publication's offset in its topic; undefined for ephemeral messages. */
  offset: number | undefined
  epoch: string | undefined
  /** Published outside the topic's stream (typing indicators): never recovered, no offset. */
  ephemeral: boolean
}

export interface SubscribeOptions {
  /** Presence meta of this connection on the topic (for topics with presence meta), sent with every (re)subscribe. */
  meta?: unknown
}

export interface SubscribeInfo {
  topic: string
  offset: number
  epoch: string
}

/** What `subscribe()` returns: call it to unsubscribe. */
export interface Subscription {
  (): void
  readonly topic: string
  /** Resolves once the server confirmed the subscription; rejects when it refused it. */
  readonly ready: Promise<SubscribeInfo>
}

export interface WelcomeInfo {
  connectionId: string
  heartbeat: { interval: number, timeout: number }
}

export interface PresenceMember {
  connectionId: string
  user?: unknown
  meta?: unknown
}

export interface PresenceEvent {
  topic: string
  member: PresenceMember
}

export interface RecoveredEvent {
  topic: string
  /** True: every publication missed while away follows (or none was missed). False: some were lost. */
  recovered: boolean
}

export interface UnsubscribedEvent {
  topic: string
  /** The `unsubscribed` frame's code, or 2000 when the server refused a (re)subscription. */
  code: number
  reason: string
  /** The refusal, when a subscribe was answered with an error. */
  error?: AnyRealtimeClientError
}

export interface CloseEvent {
  code: number
  reason: string
  /** Whether the client will try again. */
  reconnect: boolean
  /** When it will, in how many ms. */
  delayMs?: number
}

export interface AttemptEvent {
  /** Attempts since the client was created, this one included. */
  attempt: number
  url: string
}

/** A frame as the server sent it. */
export interface ServerFrame {
  type: string
  [key: string]: unknown
}

/** The client's own events. Application events are listened to by their declared names. */
export interface ClientEvents {
  /** The state changed: connecting, open, reconnecting or closed. */
  state: (state: ClientState, previous: ClientState) => void
  /** A connection was accepted (after `auth`, once resubscriptions and queued requests are sent). */
  welcome: (info: WelcomeInfo) => void
  /** A topic was resubscribed from its last position; tells whether nothing was lost. */
  recovered: (event: RecoveredEvent) => void
  /** A subscription ended for good on the server's side. */
  unsubscribed: (event: UnsubscribedEvent) => void
  /** Presence on a subscribed topic. */
  join: (event: PresenceEvent) => void
  leave: (event: PresenceEvent) => void
  /** A connection attempt starts. */
  attempt: (event: AttemptEvent) => void
  /** A connection ended. */
  close: (event: CloseEvent) => void
  /** An error nobody awaits: a failed fire-and-forget message, a refused `auth`, a failing `getToken`, a throwing listener. */
  error: (error: Error) => void
  /** Every frame from the server, for debugging. */
  '*': (frame: ServerFrame) => void
}

/** Client event names; an application event should not take one of these. */
export const CLIENT_EVENTS: ReadonlySet<string> = new Set(['state', 'welcome', 'recovered', 'unsubscribed', 'join', 'leave', 'attempt', 'close', 'error', '*'])

/**
 * The error a request of route K may reject with: one of the route's declared codes
 * with its typed details, or a code of the protocol or of the client.
 */
export type RequestError<C extends Contract, K extends RouteName<C>> =
  string extends K
    ? AnyRealtimeClientError
    : | { [Code in keyof RouteErrorMap<C, K> & string]: RealtimeClientError<Code, RouteErrorMap<C, K>[Code]> }[keyof RouteErrorMap<C, K> & string]
      | RealtimeClientError<ProtocolErrorCode | ClientErrorCode, unknown>

/** The error codes a request of route K may reject with. */
export type RequestErrorCode<C extends Contract, K extends RouteName<C>> = RequestError<C, K>['code']

// ------------------------------------------------------------------ internals

type Timer = ReturnType<typeof setTimeout>
type Listener = (message: any, meta: MessageMeta) => void

interface InternalSocket extends WebSocketLike {
  onopen: ((event: unknown) => void) | null
  onmessage: ((event: { data: unknown }) => void) | null
  onclose: ((event: { code: number, reason: string }) => void) | null
  onerror: ((event: unknown) => void) | null
  terminate?: () => void
}

interface Pending {
  type: string
  data: unknown
  resolve: (value: any) => void
  reject: (error: unknown) => void
  timer: Timer | undefined
  id: number | undefined
}

interface Sub {
  topic: string
  listeners: Set<Listener>
  /** The last publication seen (or the position subscribed at): what `since` resumes from. */
  position: { offset: number, epoch: string } | null
  /** Confirmed on the current connection: only then are its messages delivered. */
  active: boolean
  /** The connection (serial) its subscribe went out on; 0 when not sent on this one. */
  sentOn: number
  ready: Promise<SubscribeInfo>
  settle: { resolve: (info: SubscribeInfo) => void, reject: (error: unknown) => void } | null
  retry: Timer | undefined
  meta: unknown
}

const OPEN = 1

function unref (timer: unknown): void {
  const t = timer as { unref?: () => void } | null
  if (t !== null && typeof t === 'object' && typeof t.unref === 'function') t.unref()
}

function positiveNumber (label: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
    throw new TypeError(`${label} must be a positive number`)
  }
  return value
}

function resolveUrl (url: unknown): string {
  if (typeof url !== 'string' || url.length === 0) throw new TypeError('createClient: url is required')
  const location = (globalThis as { location?: { protocol: string, host: string } }).location
  if (url.startsWith('/') && location !== undefined) {
    return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}${url}`
  }
  return url
}

function clientError (code: ClientErrorCode, message: string, extra: { details?: unknown, closeCode?: number } = {}): AnyRealtimeClientError {
  return new RealtimeClientError(code, message, { ...extra, temporary: code !== 'CLOSED' })
}

// ------------------------------------------------------------------ the client

export class RealtimeClient<C extends Contract = Contract> {
  readonly url: string
  /** The server's id of the current connection; undefined while not connected. */
  connectionId: string | undefined
  /** The user as the server's `auth` reply gave it, when the client authenticated. */
  user: unknown

  readonly #WebSocket: WebSocketConstructor
  readonly #getToken: TokenSource | undefined
  readonly #requestTimeout: number
  readonly #maxQueue: number
  readonly #connectTimeout: number
  readonly #backoff: ResolvedBackoff
  readonly #heartbeat: false | { interval?: number, timeout?: number }
  readonly #keepAlive: boolean
  readonly #emitter: Emitter

  #state: ClientState = 'closed'
  #socket: InternalSocket | null = null
  /** Incremented for every socket; replies and timers of an older one are ignored. */
  #serial = 0
  #welcomed = false
  /** Attempts since the last welcome: the backoff's exponent. */
  #failures = 0
  #attempts = 0
  #nextId = 1
  #reconnectTimer: Timer | undefined
  #connectTimer: Timer | undefined
  #liveTimer: ReturnType<typeof setInterval> | undefined
  #lastFrameAt = 0
  #pinged = false
  readonly #queue: Pending[] = []
  readonly #inflight = new Map<number, Pending>()
  readonly #subs = new Map<string, Sub>()

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
    this.#requestTimeout = positiveNumber('createClient: requestTimeout', options.requestTimeout, 10_000)
    this.#maxQueue = options.maxQueue === 0 ? 0 : positiveNumber('createClient: maxQueue', options.maxQueue, 100)
    this.#connectTimeout = positiveNumber('createClient: connectTimeout', options.connectTimeout, 10_000)
    this.#backoff = resolveBackoff(options.backoff)
    this.#heartbeat = options.heartbeat ?? {}
    this.#keepAlive = options.keepAlive === true
    this.#emitter = new Emitter((err, event) => this.#listenerFailed(err, event))
    if (options.autoConnect !== false) this.connect()
  }

  /** connecting, open, reconnecting or closed. */
  get state (): ClientState {
    return this.#state
  }

  /** Requests waiting for a connection. */
  get queued (): number {
    return this.#queue.length
  }

  /** The topics subscribed (or being subscribed) and the last position seen on each. */
  get subscriptions (): Array<{ topic: string, active: boolean, offset: number | undefined, epoch: string | undefined }> {
    return [...this.#subs.values()].map((s) => ({ topic: s.topic, active: s.active, offset: s.position?.offset, epoch: s.position?.epoch }))
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
   * protocol's, TIMEOUT, QUEUE_FULL, DISCONNECTED (sent, then the connection was lost:
   * it may have run) or CLOSED. While disconnected the request waits in the queue.
   */
  request<K extends RouteName<C>> (type: K, data: RouteData<C, K>, options: RequestOptions = {}): Promise<RouteReply<C, K>> {
    if (typeof type !== 'string' || CLIENT_BUILTINS.has(type)) {
      return Promise.reject(new TypeError(`request: "${String(type)}" is not a route name; use subscribe(), publish() or presence() for built-ins`))
    }
    return this.#request(type, data, options) as Promise<RouteReply<C, K>>
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
    return this.#request('publish', { topic, data }, options) as Promise<{ offset: number }>
  }

  /** The members present on a topic with presence on. */
  presence<T extends TopicNames<C>> (topic: T, options: RequestOptions = {}): Promise<{ members: PresenceMember[] }> {
    return this.#request('presence', { topic }, options) as Promise<{ members: PresenceMember[] }>
  }

  #request (type: string, data: unknown, options: RequestOptions): Promise<unknown> {
    const timeoutMs = options?.timeoutMs === undefined ? this.#requestTimeout : positiveNumber('request: timeoutMs', options.timeoutMs, 0)
    if (this.#state === 'closed') return Promise.reject(clientError('CLOSED', 'The client is closed'))
    return new Promise((resolve, reject) => {
      const entry: Pending = { type, data, resolve, reject, timer: undefined, id: undefined }
      if (!this.#welcomed && this.#queue.length >= this.#maxQueue) {
        reject(clientError('QUEUE_FULL', `Not connected and ${this.#maxQueue} requests are already waiting`, { details: { maxQueue: this.#maxQueue } }))
        return
      }
      // The one timer left ref'd in Node: a script awaiting an answer is not ended
      // under it, and the wait is bounded by the timeout.
      entry.timer = setTimeout(() => this.#expire(entry, timeoutMs), timeoutMs)
      if (this.#welcomed) this.#transmit(entry)
      else this.#queue.push(entry)
    })
  }

  #expire (entry: Pending, timeoutMs: number): void {
    const queued = this.#queue.indexOf(entry)
    if (queued >= 0) {
      this.#queue.splice(queued, 1)
    } else if (entry.id === undefined || this.#inflight.get(entry.id) !== entry) {
      return
    } else {
      this.#inflight.delete(entry.id)
    }
    entry.reject(clientError('TIMEOUT', `No answer to "${entry.type}" within ${timeoutMs} ms`, { details: { timeoutMs } }))
  }

  /** Sends a request with a fresh id on the current connection. */
  #transmit (entry: Pending): void {
    const id = this.#nextId++
    entry.id = id
    this.#inflight.set(id, entry)
    this.#write(entry.data === undefined ? { type: entry.type, id } : { type: entry.type, id, data: entry.data })
  }

  /**
   * A request of the client's own (auth, subscribe, unsubscribe) on the current
   * connection. The server answers every one; no answer in time means the connection
   * is broken, and it is dropped.
   *
   * The callbacks run synchronously with the answer's arrival, not in a later
   * microtask: a subscribe reply must take effect before the frames that follow it
   * in the same read (`ws` dispatches those in one go).
   */
  #call (type: string, data: unknown, onReply: (value: unknown) => void, onError: (err: any) => void = () => {}): void {
    const entry: Pending = { type, data, resolve: onReply, reject: onError, timer: undefined, id: undefined }
    const serial = this.#serial
    entry.timer = this.#later(() => {
      if (entry.id === undefined || this.#inflight.get(entry.id) !== entry) return
      this.#inflight.delete(entry.id)
      onError(clientError('TIMEOUT', `No answer to "${type}" within ${this.#requestTimeout} ms`))
      if (this.#serial === serial) this.#abandon(`no answer to ${type}`)
    }, this.#requestTimeout)
    this.#transmit(entry)
  }

  #write (frame: Record<string, unknown>): boolean {
    const socket = this.#socket
    if (socket === null || socket.readyState !== OPEN) return false
    try {
      socket.send(JSON.stringify(frame))
      return true
    } catch (err) {
      // Data that JSON cannot hold (a cycle, a BigInt) fails the request that carries it.
      const entry = typeof frame.id === 'number' ? this.#inflight.get(frame.id) : undefined
      if (entry !== undefined) {
        this.#inflight.delete(frame.id as number)
        clearTimeout(entry.timer)
        entry.reject(err)
        return false
      }
      throw err
    }
  }

  // ---------------------------------------------------------------- topics

  /**
   * Subscribes to a topic; the listener gets every publication, typed by the topic's
   * message schema, once and in offset order, across reconnections. Returns a function
   * that unsubscribes this listener (the topic is left when its last listener goes).
   */
  subscribe<T extends TopicNames<C>> (topic: T, listener: (message: TopicMessage<C, T>, meta: MessageMeta) => void, options: SubscribeOptions = {}): Subscription {
    if (typeof topic !== 'string' || topic.length === 0) throw new TypeError('subscribe: topic must be a non-empty string')
    if (typeof listener !== 'function') throw new TypeError('subscribe: listener must be a function')
    let sub = this.#subs.get(topic)
    if (sub === undefined) {
      let settle: Sub['settle'] = null
      const ready = new Promise<SubscribeInfo>((resolve, reject) => { settle = { resolve, reject } })
      // Awaiting `ready` is optional: a refusal is also told by the `unsubscribed` event.
      ready.catch(() => {})
      sub = { topic, listeners: new Set(), position: null, active: false, sentOn: 0, ready, settle, retry: undefined, meta: options?.meta }
      this.#subs.set(topic, sub)
      this.#sendSubscribe(sub)
    }
    const own = sub
    const entry: Listener = (message, meta) => listener(message, meta)
    own.listeners.add(entry)
    const off = (): void => {
      if (!own.listeners.delete(entry)) return
      if (own.listeners.size === 0 && this.#subs.get(topic) === own) this.#drop(own)
    }
    return Object.assign(off, { topic: topic as string, ready: own.ready })
  }

  #drop (sub: Sub): void {
    this.#subs.delete(sub.topic)
    clearTimeout(sub.retry)
    sub.settle?.reject(clientError('CLOSED', `Unsubscribed from "${sub.topic}" before the server confirmed it`))
    sub.settle = null
    // Frames of a connection are handled in order, so this unsubscribe follows the
    // subscribe even when its reply is still on the way.
    if (this.#welcomed && sub.sentOn === this.#serial) this.#call('unsubscribe', { topic: sub.topic }, () => {})
  }

  #sendSubscribe (sub: Sub): void {
    if (!this.#welcomed || sub.sentOn === this.#serial) return
    clearTimeout(sub.retry)
    sub.retry = undefined
    const serial = this.#serial
    const since = sub.position
    sub.sentOn = serial
    sub.active = false
    const data: Record<string, unknown> = { topic: sub.topic }
    if (since !== null) data.since = { offset: since.offset, epoch: since.epoch }
    if (sub.meta !== undefined) data.meta = sub.meta
    this.#call('subscribe', data, (value) => {
      if (this.#subs.get(sub.topic) !== sub || this.#serial !== serial) return
      const reply = (value ?? {}) as { offset?: unknown, epoch?: unknown, recovered?: unknown }
      const current = { offset: typeof reply.offset === 'number' ? reply.offset : 0, epoch: typeof reply.epoch === 'string' ? reply.epoch : '' }
      sub.active = true
      if (since === null) {
        sub.position = current
      } else {
        // Recovered: the missed publications follow this reply, each moving the position
        // on. Not recovered: they are lost; carry on from where the topic is now.
        const recovered = reply.recovered === true
        if (!recovered) sub.position = current
        this.#emitter.emit('recovered', { topic: sub.topic, recovered })
      }
      sub.settle?.resolve({ topic: sub.topic, ...current })
      sub.settle = null
    }, (err) => {
      if (this.#subs.get(sub.topic) !== sub || this.#serial !== serial) return
      // Lost with the connection: the next welcome resubscribes it.
      if (err.code === 'DISCONNECTED' || err.code === 'CLOSED' || err.code === 'TIMEOUT') return
      if (err.temporary === true) {
        sub.sentOn = 0
        sub.retry = this.#later(() => this.#sendSubscribe(sub), err.retryAfterMs ?? this.#backoff.initialDelay)
        return
      }
      this.#subs.delete(sub.topic)
      sub.settle?.reject(err)
      sub.settle = null
      this.#emitter.emit('unsubscribed', { topic: sub.topic, code: UnsubscribeCode.SERVER, reason: err.message, error: err })
    })
  }

  #onMessage (frame: ServerFrame): void {
    const topic = frame.topic
    const sub = typeof topic === 'string' ? this.#subs.get(topic) : undefined
    if (sub === undefined || !sub.active) return
    let meta: MessageMeta
    if (frame.ephemeral === true) {
      meta = { topic: sub.topic, offset: undefined, epoch: undefined, ephemeral: true }
    } else {
      const { offset, epoch } = frame
      if (typeof offset !== 'number' || typeof epoch !== 'string') return
      const seen = sub.position
      // Never twice, never backwards: a replay overlapping live delivery is dropped here.
      if (seen !== null && seen.epoch === epoch && offset <= seen.offset) return
      sub.position = { offset, epoch }
      meta = { topic: sub.topic, offset, epoch, ephemeral: false }
    }
    for (const listener of [...sub.listeners]) {
      try {
        listener(frame.data, meta)
      } catch (err) {
        this.#listenerFailed(err, `message on ${sub.topic}`)
      }
    }
  }

  #onUnsubscribed (frame: ServerFrame): void {
    const topic = frame.topic
    const sub = typeof topic === 'string' ? this.#subs.get(topic) : undefined
    if (sub === undefined) return
    sub.active = false
    sub.sentOn = 0
    const code = typeof frame.code === 'number' ? frame.code : UnsubscribeCode.SERVER
    const reason = typeof frame.reason === 'string' ? frame.reason : ''
    if (code === UnsubscribeCode.INSUFFICIENT_STATE) {
      this.#sendSubscribe(sub)
    } else if (code === UnsubscribeCode.PERMISSION_EXPIRED) {
      const serial = this.#serial
      this.#authenticate().then(() => {
        if (this.#serial === serial && this.#subs.get(sub.topic) === sub) this.#sendSubscribe(sub)
      }, (err: unknown) => this.#authFailed(err, serial))
    } else {
      this.#subs.delete(sub.topic)
      clearTimeout(sub.retry)
      sub.settle?.reject(new RealtimeClientError('FORBIDDEN', reason || 'Unsubscribed by the server'))
      sub.settle = null
      this.#emitter.emit('unsubscribed', { topic: sub.topic, code, reason })
    }
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
        this.#onMessage(frame)
        return
      case 'unsubscribed':
        this.#onUnsubscribed(frame)
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
    const id = frame.id
    const entry = typeof id === 'number' ? this.#inflight.get(id) : undefined
    if (entry === undefined) {
      // An error without an id answers a fire-and-forget message.
      if (frame.type === 'error') this.#error(fromWire(frame.error))
      return
    }
    this.#inflight.delete(id as number)
    clearTimeout(entry.timer)
    if (frame.type === 'reply') entry.resolve(frame.data)
    else entry.reject(fromWire(frame.error))
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
    for (const sub of [...this.#subs.values()]) this.#sendSubscribe(sub)
    while (this.#welcomed && this.#serial === serial && this.#queue.length > 0) this.#transmit(this.#queue.shift() as Pending)
    if (this.#serial !== serial || !this.#welcomed) return
    this.#setState('open')
    this.#emitter.emit('welcome', info)
  }

  #startLiveness (announced: { interval: number, timeout: number }): void {
    clearInterval(this.#liveTimer)
    if (this.#heartbeat === false) return
    const interval = this.#heartbeat.interval ?? announced.interval
    const timeout = this.#heartbeat.timeout ?? announced.timeout
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
      this.#emitter.emit('close', { code, reason, reconnect: true, delayMs })
      this.#setState('reconnecting')
    } else {
      this.#setState('closed')
      this.#emitter.emit('close', { code, reason, reconnect: false })
    }
  }

  /**
   * Clears what belonged to the connection: requests in flight fail (DISCONNECTED, or
   * CLOSED when `final`, which also fails the queued ones).
   */
  #ended (code: number, reason: string, final: boolean): void {
    this.#welcomed = false
    this.connectionId = undefined
    clearTimeout(this.#connectTimer)
    clearInterval(this.#liveTimer)
    this.#connectTimer = undefined
    this.#liveTimer = undefined
    for (const sub of this.#subs.values()) {
      sub.active = false
      sub.sentOn = 0
      clearTimeout(sub.retry)
      sub.retry = undefined
    }
    const inflight = [...this.#inflight.values()]
    this.#inflight.clear()
    for (const entry of inflight) {
      clearTimeout(entry.timer)
      entry.reject(final
        ? clientError('CLOSED', 'The client was closed before an answer came', { closeCode: code })
        : clientError('DISCONNECTED', 'The connection was lost before an answer came; the request may or may not have run', { closeCode: code }))
    }
    if (final) this.#failAll(code, reason)
  }

  #failAll (code: number, reason: string): void {
    const queued = this.#queue.splice(0)
    for (const entry of queued) {
      clearTimeout(entry.timer)
      entry.reject(clientError('CLOSED', `The client is closed (${code}${reason ? ': ' + reason : ''})`, { closeCode: code }))
    }
  }

  // ---------------------------------------------------------------- helpers

  #setState (state: ClientState): void {
    const previous = this.#state
    if (previous === state) return
    this.#state = state
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
