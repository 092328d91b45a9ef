// What the application sees of a connection, its subscriptions and the registry: the
// members README.md documents ("API: app.realtime"), and nothing else. The classes that
// do the work (connection.ts, subscriptions.ts, registry.ts) implement these; hooks,
// handlers, authorize, diagnostics and the exported types are given these, so the
// internal state (socket, timers, backlog, limits, held publications) is not API.
// A leaf: it imports only fastify's types, so every layer may import it.
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'

/**
 * The application's own state on a connection (`connection.data`), as Socket.IO's
 * `socket.data`. Type it by declaration merging:
 * `declare module 'fastify-realtime' { interface RealtimeConnectionData { room?: string } }`
 */
export interface RealtimeConnectionData {}

/** `authenticating` (waiting for `auth`), `open`, `closing` (a close is under way), `closed`. */
export type ConnectionState = 'authenticating' | 'open' | 'closing' | 'closed'

/** How a connection ended: the WebSocket close code and reason. */
export interface DisconnectInfo {
  code: number
  reason: string
}

/** `connection.toJSON()`: a plain summary for logs and debugging. */
export interface ConnectionInfo {
  id: string
  userId: string | undefined
  state: ConnectionState
  connectedAt: number
  lastSeen: number
  subscriptions: string[]
  messagesIn: number
  messagesOut: number
  bufferedAmount: number
}

/** One subscription of a connection: its topic and the declared pattern the topic matched. */
export interface SubscriptionInfo {
  readonly topic: string
  readonly pattern: string
}

/** `connection.subscriptions`: keyed by topic, read like a Map (pending subscriptions included; see `isSubscribed`). */
export interface ConnectionSubscriptions extends Iterable<[string, SubscriptionInfo]> {
  readonly size: number
  get (topic: string): SubscriptionInfo | undefined
  has (topic: string): boolean
  keys (): IterableIterator<string>
  values (): IterableIterator<SubscriptionInfo>
  entries (): IterableIterator<[string, SubscriptionInfo]>
  forEach (callback: (subscription: SubscriptionInfo, topic: string, subscriptions: ConnectionSubscriptions) => void, thisArg?: unknown): void
}

/** One accepted WebSocket connection, as hooks, handlers, authorize and the registry give it. */
export interface Connection<U = unknown> {
  readonly id: string
  /** The authenticated user (`undefined` until authenticated, or without authentication). */
  readonly user: U | undefined
  readonly userId: string | undefined
  readonly state: ConnectionState
  /** `Date.now()` when the connection was accepted. */
  readonly connectedAt: number
  /** `Date.now()` when the client last showed life (a frame, a pong). */
  readonly lastSeen: number
  readonly messagesIn: number
  readonly messagesOut: number
  /** Bytes queued in the socket and not yet written to the network. */
  readonly bufferedAmount: number
  readonly subscriptions: ConnectionSubscriptions
  /** The upgrade request (README: what a connection keeps of it). */
  readonly request: FastifyRequest
  /** A child of the request's logger carrying the connection id. */
  readonly log: FastifyBaseLogger
  /** The application's own state for this connection, made on first use. */
  data: RealtimeConnectionData
  /** True once a subscription is authorized and confirmed, not while it is pending. */
  isSubscribed (topic: string): boolean
  toJSON (): ConnectionInfo
}

/** `app.realtime.connections`: this node's accepted connections. */
export interface Registry<U = unknown> extends Iterable<Connection<U>> {
  readonly size: number
  get (id: string): Connection<U> | undefined
  /** Every open connection of a user on this node (one per tab or device). */
  byUser (userId: string): Array<Connection<U>>
}
