// What the AsyncAPI generator reads: a plain list of an application's declarations,
// with their schemas. A running server describes itself (`Realtime.describe()`); a
// contract (`defineContract`) is described without one (`describeContract`), so a
// client team can generate the same document from the module it already imports.
import type { TSchema } from '../protocol/schema.js'
import type { Contract } from '../protocol/contract.js'

/**
 * Topics under this prefix are the plugin's own (the dashboard's `$realtime/dashboard`):
 * declared through `app.realtime.topic` like any other, but no part of the application's
 * API, so the AsyncAPI document leaves them out.
 */
export const INTERNAL_TOPIC_PREFIX = '$realtime/'

export function isInternalTopic (pattern: string): boolean {
  return pattern.startsWith(INTERNAL_TOPIC_PREFIX)
}

export interface RouteDescription {
  type: string
  /** Absent: the route takes no data. */
  data?: TSchema
  /** Absent: the reply carries no data. */
  reply?: TSchema
  errors?: Record<string, TSchema>
  /** The route honours idempotency keys (`key` in the request). */
  idempotent?: boolean
}

export interface TopicDescription {
  /** `room/:name`, or `ticker/*symbol` where a last segment captures the rest of the name. */
  pattern: string
  params?: TSchema
  message: TSchema
  /** Null where the topic has no presence; `meta` is the schema of a member's meta; `count` when members are counted, not listed. */
  presence: null | { meta?: TSchema, count?: boolean }
  clientPublish: boolean
  volatile?: boolean
  /** A subscribe without `since` gets the latest publication first. */
  latest?: boolean
  /** The schema of the publications' tags, which a subscribe's filter matches. */
  tags?: TSchema
}

export interface ApiDescription {
  routes: RouteDescription[]
  topics: TopicDescription[]
  events: Array<{ name: string, schema: TSchema }>
  /** 'message' when the server authenticates by first message (the `authenticate` option). */
  auth: 'message' | 'none'
  /** Schema of a user as clients see it (auth reply, presence). */
  userSchema?: TSchema
  /** URL path of the WebSocket endpoint. */
  path: string
  heartbeat?: { interval: number, timeout: number }
}

export interface AsyncApiInfo {
  title?: string
  version?: string
  description?: string
}

export interface AsyncApiOptions {
  info?: AsyncApiInfo
  /** Where clients connect: `ws://host:port` or `wss://host`. Default: the listening address, else `ws://localhost`. */
  server?: { url?: string }
}

/** Options for a contract, which knows nothing of the server that will serve it. */
export interface ContractAsyncApiOptions extends AsyncApiOptions {
  /** URL path of the WebSocket endpoint (default `/ws`). */
  path?: string
  /** Whether the server authenticates by first message (`auth` frame). Default false. */
  auth?: boolean
  userSchema?: TSchema
}

/** A contract's declarations as the generator reads them. */
export function describeContract (contract: Contract, options: ContractAsyncApiOptions = {}): ApiDescription {
  return {
    routes: Object.entries(contract.routes ?? {}).map(([type, route]) => ({ type, data: route.data, reply: route.reply, errors: route.errors, idempotent: route.idempotent === true })),
    topics: Object.entries(contract.topics ?? {}).map(([pattern, topic]) => ({
      pattern,
      params: topic.params,
      message: topic.message,
      presence: null,
      clientPublish: false
    })),
    events: Object.entries(contract.events ?? {}).map(([name, schema]) => ({ name, schema })),
    auth: options.auth === true ? 'message' : 'none',
    userSchema: options.userSchema,
    path: options.path ?? '/ws'
  }
}
