// What the application sees of `app.realtime`: the members README.md documents (the
// API table, `describe()`/`asyncapi()`, `metrics`, `broker` as an identity) and the
// types of their arguments and results. The facade (realtime.ts) implements it; the
// plugin's own wiring (start, shutdown, admission, accept) is not part of it.
import type { Static, TSchema } from '../protocol/schema.js'
import type { Registry } from '../connection/public.js'
import type { AuthorizeContext, PresenceOptions } from '../pubsub/topics.js'
import type { PublishOptions, PublishResult } from '../pubsub/publish.js'
import type { DeclaredEventName, DeclaredTopicName, EventPayload, TopicData } from '../pubsub/typed.js'
import type { HookName, RealtimeHooks } from '../messages/hooks.js'
import type { ErrorSchemas, RouteDefinition } from '../messages/router.js'
import type { ResolvedOptions } from '../config/options.js'
import type { ShutdownCode } from '../protocol/constants.js'
import type { TopicParams } from '../protocol/contract.js'
import type { HistoryOptions, StreamPosition } from '../broker/types.js'
import type { TagFilter } from '../protocol/contract.js'
import type { TagsOptions } from '../pubsub/tags.js'
import type { ApiDescription, AsyncApiOptions } from '../asyncapi/description.js'
import type { AsyncApiDocument } from '../asyncapi/document.js'
import type { MetricsRegistry } from './metrics-registry.js'

/** A typed handle on a declared topic pattern. */
export interface TopicHandle<P, M> {
  readonly pattern: string
  /** The topic name for these params: `room/:name` with `{ name: 'a' }` is `room/a`. */
  name: (params: P) => string
  publish: (params: P, data: M, options?: PublishOptions) => Promise<PublishResult>
}

/** A typed handle on a declared server event. */
export interface EventHandle<T> {
  readonly name: string
  send: (connectionId: string, data: T) => boolean
  broadcast: (data: T, options?: BroadcastOptions) => number
}

export interface BroadcastOptions {
  /** Connection ids that must not receive it. */
  except?: string | string[]
}

export interface TopicOptions<P extends TSchema | undefined, M extends TSchema, U = unknown, N extends string = string> {
  /** Schema of the pattern's params; they arrive as strings and are coerced to it. */
  params?: P
  /** Schema of a publication; it validates client publications and serialises all of them. */
  message: M
  /** Decides subscribe, publish and presence. A topic without it is open to every accepted connection. */
  authorize?: (context: AuthorizeContext<P extends TSchema ? Static<P> : { [K in keyof TopicParams<N>]: string }, U>) => boolean | Promise<boolean>
  /** Whether clients may publish with the `publish` message (after authorize). Default false. */
  clientPublish?: boolean
  /** Presence: subscribers hear `join`/`leave`, and `presence` lists members. `{ meta, maxMetaBytes }` accepts member meta. */
  presence?: boolean | PresenceOptions
  /** History kept for recovery; defaults to the plugin's `history` option. */
  history?: Partial<HistoryOptions>
  /** A slow subscriber's messages are dropped and counted instead of closing it with 4008 (tickers, metrics). */
  volatile?: boolean
  /**
   * Delta compression: a subscriber that asks for it (`delta: 'fossil'` in `subscribe`) gets,
   * after a full publication, Fossil deltas against the previous one it received (quotes,
   * dashboards: a large object with a few fields changed). Default false.
   */
  delta?: boolean
  /** A subscribe without `since` gets the latest publication still in history first, then what follows (tickers, tiles). */
  latest?: boolean
  /** Tags of each publication (`{ schema, from? }`), which subscriptions filter on. */
  tags?: TagsOptions<Static<M>>
}

/** What `app.realtime.subscribe` may give, as a client's `subscribe` would. */
export interface ServerSubscribeOptions {
  /** Presence meta of the member, on a topic whose presence declares a meta schema. */
  meta?: unknown
  /** A filter over the topic's tags (README, Filtered subscriptions). */
  filter?: TagFilter
}

export interface RealtimeStats {
  connections: { active: number, total: number, authenticating: number }
  messages: { in: number, out: number, dropped: number }
  topics: Record<string, number>
}

/** `app.realtime`: declarations and the server-side API (README, "API: app.realtime"). */
export interface Realtime<U = unknown> {
  /** The resolved, frozen options. */
  readonly options: Readonly<ResolvedOptions>
  /** This node's accepted connections. */
  readonly connections: Registry<U>
  /**
   * Identifies this plugin instance in the diagnostics events that carry no connection
   * (`event.broker === app.realtime.broker`). To use a broker yourself, keep the one you
   * give in the `broker` option.
   */
  readonly broker: object
  /** The prom-client Registry of the `metrics` option; undefined when metrics are off. */
  readonly metrics: MetricsRegistry | undefined
  /** Declares a message route. Its data is validated before the handler; its reply is serialised by its schema. */
  route<D extends TSchema | undefined = undefined, R extends TSchema | undefined = undefined, E extends ErrorSchemas = Record<never, TSchema>>(definition: RouteDefinition<D, R, E, U>): this
  /** Declares a topic pattern such as `room/:name`. */
  topic<M extends TSchema, P extends TSchema | undefined = undefined, const N extends string = string>(pattern: N, options: TopicOptions<P, M, U, N>): TopicHandle<P extends TSchema ? Static<P> : TopicParams<N>, Static<M>>
  /** Declares a server-to-client event and its schema. */
  event<S extends TSchema>(name: string, schema: S): EventHandle<Static<S>>
  /** Adds a lifecycle hook (README, Hooks). Chains. */
  addHook<K extends HookName>(name: K, hook: RealtimeHooks<U>[K]): this
  /** Publishes to a declared topic from anywhere in the process. */
  publish<T extends string>(topic: DeclaredTopicName<T>, data: NoInfer<TopicData<T>>, options?: PublishOptions): Promise<PublishResult>
  /** The latest publications still held for a topic, oldest first. */
  history<T extends string>(topic: DeclaredTopicName<T>, options?: { limit?: number }): Promise<{ offset: number, epoch: string, publications: Array<{ offset: number, data: TopicData<T> }> }>
  /** Sends a declared event to one connection; false when it is not connected here. */
  send<E extends string>(connectionId: string, event: DeclaredEventName<E>, data: NoInfer<EventPayload<E>>): boolean
  /** Sends a declared event to every accepted connection; returns how many. */
  broadcast<E extends string>(event: DeclaredEventName<E>, data: NoInfer<EventPayload<E>>, options?: BroadcastOptions): number
  /** Subscribes a connection to a topic from the server, on any node; `authorize` is not asked. */
  subscribe<T extends string>(connectionId: string, topic: DeclaredTopicName<T>, options?: ServerSubscribeOptions): Promise<StreamPosition | null>
  /** Ends a connection's subscription from the server; false when there is none. */
  unsubscribe (connectionId: string, topic: string, reason?: string): boolean
  /** Closes one connection (4503 by default); false when it is not open here. */
  disconnect (connectionId: string, code?: number, reason?: string): boolean
  /** Closes every connection of a user, on every node. */
  disconnectUser (userId: string, code?: number, reason?: string): Promise<void>
  stats (): RealtimeStats
  /**
   * Closes the real-time side ahead of `app.close()`, with `code` 1000 (stop for good:
   * clients do not reconnect), 1001 (going away) or 1012 (restarting; the `closeCode` option by default).
   */
  close (options?: { code?: ShutdownCode, reason?: string }): Promise<void>
  /** The declarations as a plain description, which the AsyncAPI generator reads. */
  describe (): ApiDescription
  /** The AsyncAPI 3.0 document of this server's declarations. */
  asyncapi (options?: AsyncApiOptions): AsyncApiDocument
}
