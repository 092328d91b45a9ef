// A contract names an application's message routes, topics and events with their
// TypeBox schemas, once, in a module that both the server and the client import.
// The server passes the schemas to `route()`, `topic()` and `event()`; the client
// (`fastify-realtime/client`) takes its types from the very same objects. Nothing is
// generated or copied, so the two sides cannot drift apart.
//
// Its one runtime import, topic-names.ts, has none: this module is safe in a browser bundle.
import type { Static, TSchema } from './schema.js'
import { parsePattern } from './topic-names.js'

/** A message route: the schema of its data, and optionally of its reply and its own error codes. */
export interface RouteContract {
  /** The data's schema; a route without one takes no data. */
  data?: TSchema
  reply?: TSchema
  errors?: Record<string, TSchema>
  /**
   * The route remembers its answer per (user, key): the typed client then sends a `key`
   * with every request to it and retries it after a lost connection.
   */
  idempotent?: boolean
}

/** A topic pattern (`room/:name`): the schema of its params and of a publication. */
export interface TopicContract {
  params?: TSchema
  message: TSchema
}

/** Everything an application declares, keyed by route name, topic pattern and event name. */
export interface Contract {
  routes?: Record<string, RouteContract>
  topics?: Record<string, TopicContract>
  events?: Record<string, TSchema>
}

const ROUTE_NAME = /^[A-Za-z][A-Za-z0-9_.:-]{0,63}$/

function isSchema (value: unknown): boolean {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/**
 * A contract written wrong (code FST_REALTIME_INVALID_CONTRACT, listed with the others
 * in lib/protocol/errors.ts). Defined here rather than with @fastify/error: this module goes into
 * browser bundles, which must not pull in Node's `util`.
 */
export class ContractError extends TypeError {
  readonly code = 'FST_REALTIME_INVALID_CONTRACT'

  constructor (message: string) {
    super(message)
    this.name = 'TypeError'
  }
}

function fail (where: string, why: string): never {
  throw new ContractError(`defineContract: ${where} ${why}`)
}

/**
 * Declares a contract and returns it unchanged, typed as written (`as const`), so its
 * schemas can be handed to the server (`schema: contract.routes['chat.send']`) and its
 * type to the client (`createClient<typeof contract>(…)`).
 *
 * The shape is checked at once, so a typo fails where the contract is written rather
 * than at the first message: every route has a `data` schema, every topic a `message`
 * schema, every event a schema, and names have the form the server accepts. Topic
 * patterns follow the server's rules (lib/protocol/topic-names.ts): non-empty segments with no
 * control character; `:param` segments (a value without `/`); a `*param` wildcard only as
 * the last segment (the rest of the name, slashes included); `%` is an ordinary character.
 */
export function defineContract<const C extends Contract> (contract: C): C {
  if (!isSchema(contract)) fail('the contract', 'must be an object')
  const { routes, topics, events } = contract as Contract
  for (const [key, value] of [['routes', routes], ['topics', topics], ['events', events]] as const) {
    if (value !== undefined && !isSchema(value)) fail(`"${key}"`, 'must be an object')
  }
  for (const [name, route] of Object.entries(routes ?? {})) {
    if (!ROUTE_NAME.test(name)) fail(`route "${name}"`, 'is not a valid name (a letter, then letters, digits or _ . : -)')
    if (!isSchema(route)) fail(`route "${name}"`, 'is not an object of schemas')
    if (route.data !== undefined && !isSchema(route.data)) fail(`route "${name}"`, 'has a `data` that is not a schema')
    if (route.reply !== undefined && !isSchema(route.reply)) fail(`route "${name}"`, 'has a `reply` that is not a schema')
    if (route.idempotent !== undefined && typeof route.idempotent !== 'boolean') fail(`route "${name}"`, 'has `idempotent` that is not a boolean')
    if (route.errors !== undefined) {
      if (!isSchema(route.errors)) fail(`route "${name}"`, 'has `errors` that are not an object of schemas')
      for (const [code, schema] of Object.entries(route.errors)) {
        if (!isSchema(schema)) fail(`route "${name}"`, `error "${code}" is not a schema`)
      }
    }
  }
  for (const [pattern, topic] of Object.entries(topics ?? {})) {
    const segments = parsePattern(pattern)
    if (typeof segments === 'string') fail(`topic "${pattern}"`, `is not a valid pattern: ${segments}`)
    if (!isSchema(topic) || !isSchema(topic.message)) fail(`topic "${pattern}"`, 'needs a `message` schema')
    if (topic.params !== undefined && !isSchema(topic.params)) fail(`topic "${pattern}"`, 'has `params` that are not a schema')
  }
  for (const [name, schema] of Object.entries(events ?? {})) {
    if (!ROUTE_NAME.test(name)) fail(`event "${name}"`, 'is not a valid name')
    if (!isSchema(schema)) fail(`event "${name}"`, 'is not a schema')
  }
  return contract
}

// ------------------------------------------------------------------ types taken from a contract

type Entries<T> = T extends Record<string, unknown> ? T : Record<never, never>

/** The routes of a contract (an empty map when it declares none). */
export type RoutesOf<C> = C extends { routes?: infer R } ? Entries<NonNullable<R>> : Record<never, never>
/** The topics of a contract, keyed by pattern. */
export type TopicsOf<C> = C extends { topics?: infer T } ? Entries<NonNullable<T>> : Record<never, never>
/** The events of a contract. */
export type EventsOf<C> = C extends { events?: infer E } ? Entries<NonNullable<E>> : Record<never, never>

/** Names of the contract's routes. */
export type RouteName<C> = keyof RoutesOf<C> & string

/** What `request(name, data)` must send. */
export type RouteData<C, K extends RouteName<C>> =
  RoutesOf<C>[K] extends { data: infer D extends TSchema }
    ? Static<D>
    // A declared route without a data schema takes none; without a contract, anything goes.
    : string extends RouteName<C> ? unknown : undefined

/** What a request resolves to: the reply schema's type, or `void` for a route without a reply. */
export type RouteReply<C, K extends RouteName<C>> =
  string extends K
    ? unknown
    : RoutesOf<C>[K] extends { reply: infer R extends TSchema } ? Static<R> : void

/** The route's own error codes, mapped to the type of their details. */
export type RouteErrorMap<C, K extends RouteName<C>> =
  RoutesOf<C>[K] extends { errors: infer E extends Record<string, TSchema> }
    ? { [Code in keyof E & string]: Static<E[Code]> }
    : Record<never, never>

/** A segment of a pattern as it may appear in a name: a `:param` or `*param` is any string. */
type NameSegment<S extends string> = S extends `:${string}` | `*${string}` ? string : S

/**
 * The topic names a pattern stands for: `'room/:name'` is `` `room/${string}` ``,
 * `'ticker/*symbol'` is `` `ticker/${string}` `` (slashes included), `'feed'` is `'feed'`.
 */
export type TopicName<P extends string> =
  P extends `${infer Head}/${infer Rest}`
    ? `${NameSegment<Head>}/${TopicName<Rest>}`
    : NameSegment<P>

/** The names of a pattern's params: `'org/:org/file/*path'` is `'org' | 'path'`. */
export type TopicParamNames<P extends string> =
  P extends `${infer Head}/${infer Rest}`
    ? ParamName<Head> | TopicParamNames<Rest>
    : ParamName<P>

type ParamName<S extends string> = S extends `:${infer N}` | `*${infer N}` ? N : never

/**
 * A pattern's params when it has no params schema: each a string (as the name spells
 * it) or a number (name() writes it with String()). A pattern that is not a literal
 * type gives any string keys.
 */
export type TopicParams<P extends string> =
  string extends P ? Record<string, string | number> : { [K in TopicParamNames<P>]: string | number }

/** Every topic name of the contract's patterns. */
export type TopicNames<C> = { [P in keyof TopicsOf<C> & string]: TopicName<P> }[keyof TopicsOf<C> & string]

/** The pattern (or patterns) a topic name belongs to. */
export type TopicPatternOf<C, T extends string> = {
  [P in keyof TopicsOf<C> & string]: T extends TopicName<P> ? P : never
}[keyof TopicsOf<C> & string]

/** The type of a publication on a topic, from its pattern's message schema. */
export type TopicMessage<C, T extends string> =
  TopicsOf<C>[TopicPatternOf<C, T>] extends { message: infer M extends TSchema } ? Static<M> : unknown

/** Names of the contract's events. */
export type EventName<C> = keyof EventsOf<C> & string

/** The data an event carries. */
export type EventData<C, K extends EventName<C>> = EventsOf<C>[K] extends infer S extends TSchema ? Static<S> : unknown

/** A subscription's filter over a topic's tags (docs/protocol.md, Filters): equals, in, and, or. */
export type TagFilter =
  | { tag: string, eq: string | number }
  | { tag: string, in: Array<string | number> }
  | { and: TagFilter[] }
  | { or: TagFilter[] }
