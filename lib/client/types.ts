// The public types of the client: its options, events and what its calls return.
import type { Contract, RouteErrorMap, RouteName, TagFilter } from '../protocol/contract.js'
import type { BackoffOptions } from './backoff.js'
import type { AnyRealtimeClientError, ClientErrorCode, RealtimeClientError } from './errors.js'
import type { ProtocolErrorCode } from './protocol.js'

export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed'

/** The part of a WebSocket the client uses; the browser's and `ws`'s both fit. */
export interface WebSocketLike {
  readonly readyState: number
  send (data: string | Uint8Array): void
  close (code?: number, reason?: string): void
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike

export type TokenSource = () => string | null | undefined | Promise<string | null | undefined>

export interface ClientOptions<C extends Contract = Contract> {
  /** `ws://host/ws`; in a browser a path such as `/ws` is resolved against the page's host. */
  url: string
  /** The contract shared with the server; only its type is used (`createClient<typeof contract>()` works as well). */
  contract?: C
  /**
   * `'msgpack'`: speak `realtime.v1.msgpack`, the same protocol in binary MessagePack frames
   * (fewer bytes, faster to decode); msgpackr is imported when the first connection opens.
   * Default `'json'`.
   */
  encoding?: 'json' | 'msgpack'
  /** The WebSocket constructor. Default: `globalThis.WebSocket` (browsers, Node 22+); in Node 20 pass `ws`'s. */
  WebSocket?: WebSocketConstructor
  /**
   * Called before every connection, first one and reconnections alike, for the token
   * sent in the `auth` frame; may be async, so an expired token can be refreshed.
   * Returning null or undefined sends no `auth`.
   */
  getToken?: TokenSource
  /**
   * Default timeout of a request in ms, counted from the moment it is written to an open
   * connection (time spent waiting for a connection is not counted). Default 10000.
   */
  requestTimeout?: number
  /** Requests that may wait for a connection; one more fails with QUEUE_FULL. Default 100. */
  maxQueue?: number
  /**
   * Longest wait of a request for a connection, in ms; past it the request fails with
   * QUEUE_TIMEOUT (it was never sent). Default: none, a request waits as long as the
   * client keeps reconnecting.
   */
  queueTimeout?: number
  /**
   * Browser network awareness (default on where the global object is an EventTarget,
   * that is in browsers; nothing in Node): `offline` drops the connection at once and
   * the client reconnects as soon as `online` comes (backoff reset); a page becoming
   * visible again checks the connection with a `ping`. False turns it off; tests may
   * pass their own event targets.
   */
  network?: false | NetworkTargets
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

/** Where the client hears of the network and of the page's visibility. */
export interface NetworkTargets {
  /** Fires `online` and `offline` (the browser's `window`). */
  window?: EventTargetLike
  /** Fires `visibilitychange` and has `visibilityState` (the browser's `document`). */
  document?: EventTargetLike & { readonly visibilityState?: string }
}

export interface EventTargetLike {
  addEventListener (type: string, listener: () => void): void
  removeEventListener (type: string, listener: () => void): void
}

export interface RequestOptions {
  /** Overrides the client's `requestTimeout` for this request. */
  timeoutMs?: number
  /**
   * Sends an idempotency `key` and, when the connection is lost before the answer,
   * sends the request again (same key) after reconnecting instead of failing it with
   * DISCONNECTED. Only for routes the server declares idempotent: elsewhere the server
   * ignores the key and a retry may run twice. Default: the contract route's
   * `idempotent` flag, when the client was given the contract object.
   */
  idempotent?: boolean
  /** The idempotency key to send (1 to 128 characters); implies `idempotent`. Default: a random one per request. */
  key?: string
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
  /**
   * Ask for delta compression (on topics the server declared with `delta: true`): after a
   * whole publication, the next ones may come as Fossil deltas, which the client applies;
   * listeners always get whole objects. Default false.
   */
  delta?: boolean
  /** Only the publications whose tags match (on topics that declare tags), sent with every (re)subscribe. */
  filter?: TagFilter
}

/** A subscription the server made for this connection (`subscribed`), with the position it starts from. */
export interface ServerSubscribedEvent {
  topic: string
  offset: number
  epoch: string
}

/** The member count of a topic whose presence is counted (`presence: { mode: 'count' }`). */
export interface PresenceCountEvent {
  topic: string
  count: number
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
  /**
   * The server subscribed this connection to a topic (it did not ask): listen to its
   * messages with `subscribe(topic, listener)`, which then sends nothing.
   */
  subscribed: (event: ServerSubscribedEvent) => void
  /** The member count of a subscribed topic with count presence (debounced by the server). */
  presence: (event: PresenceCountEvent) => void
  /** Presence on a subscribed topic. */
  join: (event: PresenceEvent) => void
  leave: (event: PresenceEvent) => void
  /** The browser went offline (false) or online (true). */
  network: (online: boolean) => void
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
export const CLIENT_EVENTS: ReadonlySet<string> = new Set(['state', 'network', 'welcome', 'recovered', 'unsubscribed', 'subscribed', 'presence', 'join', 'leave', 'attempt', 'close', 'error', '*'])

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
