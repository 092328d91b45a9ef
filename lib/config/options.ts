// The plugin's options: a TypeBox schema with the defaults named beside it. They are
// checked once, at register, and a wrong one fails with an error naming the option.
import type { Static, TSchema } from '../protocol/schema.js'
import type { TObject } from '../wire/json-schema.js'
import { Kind, Type } from '../wire/json-schema.js'
import { clone, firstError, withDefaults } from './options-check.js'
import type { FastifyRequest } from 'fastify'
import { errorCodes } from '../protocol/errors.js'
import { CloseCode } from '../protocol/constants.js'
import type { AjvConfig } from '../wire/schema-compiler.js'
import type { Broker } from '../broker/types.js'
import type { CompressionOptions } from '../wire/compression-options.js'
import type { WebSocketServerOptions } from './websocket-options.js'

export const defaults = {
  path: '/ws',
  heartbeatInterval: 25_000,
  heartbeatTimeout: 10_000,
  authTimeout: 10_000,
  closeTimeout: 5_000,
  closeCode: CloseCode.RESTARTING,
  closeGrace: 1_000,
  maxPayload: 64 * 1024,
  maxSubscriptions: 128,
  maxTopicLength: 256,
  maxQueue: 1024 * 1024,
  fanOutSlice: 500,
  historySize: 100,
  historyTtl: 5 * 60_000,
  recoveryLimit: 1000,
  rate: 100,
  burst: 200,
  closeAfter: 100,
  errorBudgetMax: 20,
  errorBudgetWindow: 10_000,
  maxConnections: 100_000,
  maxConnectionsPerIp: 10_000,
  maxConnectionsPerUser: 100,
  maxDepth: 32,
  validateReplies: true,
  msgpack: false,
  writeDelay: 0,
  compressionThreshold: 1024,
  compressionLevel: -1,
  compressionMemLevel: 8,
  asyncapiPath: '/asyncapi',
  idempotencyTtl: 5 * 60_000,
  idempotencyPendingTimeout: 30_000,
  filterMaxSize: 64,
  filterMaxDepth: 4,
  filtersPerTopic: 100
} as const

const Ms = (def: number, description: string) => Type.Integer({ minimum: 1, maximum: 2_147_483_647, default: def, description })

/** The JSON part of the options. Functions and objects with behaviour are checked by `checkFunctions`. */
export const OptionsSchema = Type.Object({
  path: Type.String({ pattern: '^/', default: defaults.path, description: 'URL path of the WebSocket endpoint' }),
  heartbeat: Type.Object({
    interval: Ms(defaults.heartbeatInterval, 'ms of silence after which the server pings a connection'),
    timeout: Ms(defaults.heartbeatTimeout, 'ms a pinged connection has to show life before it is terminated')
  }, { default: {} }),
  authTimeout: Ms(defaults.authTimeout, 'ms a connection has to send `auth` when `authenticate` is set (close 4502)'),
  closeTimeout: Ms(defaults.closeTimeout, 'ms app.close() lets handlers in flight finish (and send their replies) before closing the connections'),
  closeCode: Type.Union([Type.Literal(CloseCode.RESTARTING), Type.Literal(CloseCode.GOING_AWAY), Type.Literal(CloseCode.NORMAL)], { default: defaults.closeCode, description: 'close code of a shutdown: 1012 (restarting: clients come back at once, with jitter), 1001 (going away) or 1000 (stopped for good: clients do not reconnect)' }),
  closeGrace: Ms(defaults.closeGrace, 'ms a connection the server closed has to complete the close handshake before it is terminated (a slow consumer never reads its 4008)'),
  maxPayload: Type.Integer({ minimum: 64, default: defaults.maxPayload, description: 'largest frame in bytes; a larger one closes with 1009' }),
  maxSubscriptions: Type.Integer({ minimum: 1, default: defaults.maxSubscriptions, description: 'subscriptions per connection (LIMIT_EXCEEDED past it)' }),
  maxTopicLength: Type.Integer({ minimum: 1, default: defaults.maxTopicLength, description: 'longest topic name in characters' }),
  maxQueue: Type.Integer({ minimum: 1024, default: defaults.maxQueue, description: 'bytes a connection may have waiting to be sent; past it: close 4008, or drop on volatile topics' }),
  fanOutSlice: Type.Integer({ minimum: 1, default: defaults.fanOutSlice, description: 'subscribers one publication is written to per event-loop turn; a larger fan-out goes on in the next turns (replies, pings and other topics run between), after the earlier fan-outs of its topic' }),
  history: Type.Object({
    size: Type.Integer({ minimum: 0, default: defaults.historySize, description: 'publications kept per topic for recovery (0: none)' }),
    ttl: Type.Integer({ minimum: 0, default: defaults.historyTtl, description: 'ms a publication is kept (0: no age limit)' })
  }, { default: {} }),
  filters: Type.Object({
    maxSize: Type.Integer({ minimum: 1, maximum: 10_000, default: defaults.filterMaxSize, description: 'nodes plus `in` values of one subscription filter; more is LIMIT_EXCEEDED' }),
    maxDepth: Type.Integer({ minimum: 1, maximum: 32, default: defaults.filterMaxDepth, description: 'levels of and/or in a filter, a comparison being 1; deeper is LIMIT_EXCEEDED' }),
    maxPerTopic: Type.Integer({ minimum: 1, default: defaults.filtersPerTopic, description: 'distinct filters in use on one topic on one node (each is judged once per publication); one more is LIMIT_EXCEEDED' })
  }, { default: {} }),
  recoveryLimit: Type.Integer({ minimum: 0, default: defaults.recoveryLimit, description: 'most publications one recovery may replay; more is recovered: false' }),
  rateLimit: Type.Object({
    rate: Type.Number({ exclusiveMinimum: 0, default: defaults.rate, description: 'messages per second per connection, sustained' }),
    burst: Type.Number({ minimum: 1, default: defaults.burst, description: 'messages that may arrive at once above the rate' }),
    closeAfter: Type.Integer({ minimum: 1, default: defaults.closeAfter, description: 'refused messages in a row that close the connection with 4013' })
  }, { default: {} }),
  errorBudget: Type.Object({
    max: Type.Number({ minimum: 0, default: defaults.errorBudgetMax, description: 'protocol errors allowed per window; one more closes with 4501' }),
    window: Ms(defaults.errorBudgetWindow, 'window of the error budget in ms')
  }, { default: {} }),
  maxConnections: Type.Integer({ minimum: 1, default: defaults.maxConnections, description: 'connections in all; past it: HTTP 503 before the upgrade (1013 after)' }),
  maxConnectionsPerIp: Type.Integer({ minimum: 1, default: defaults.maxConnectionsPerIp, description: 'connections per client IP; past it: HTTP 429 before the upgrade (4504 after)' }),
  maxConnectionsPerUser: Type.Integer({ minimum: 1, default: defaults.maxConnectionsPerUser, description: 'connections per user; past it: HTTP 429 before the upgrade, or 4504' }),
  maxDepth: Type.Integer({ minimum: 2, maximum: 1000, default: defaults.maxDepth, description: 'deepest nesting of objects and arrays in a frame; deeper is BAD_REQUEST' }),
  idempotency: Type.Object({
    ttl: Ms(defaults.idempotencyTtl, 'ms the answer of an idempotent route is remembered per (user, key)'),
    pendingTimeout: Ms(defaults.idempotencyPendingTimeout, 'ms a repeat waits for the first run of its key, and a dead node\'s claim on a key lasts')
  }, { default: {} }),
  validateReplies: Type.Boolean({ default: defaults.validateReplies, description: 'check each route reply against its schema before sending it (a mismatch answers INTERNAL and is logged); publications and events are always checked' }),
  writeDelay: Type.Integer({ minimum: 0, maximum: 1000, default: defaults.writeDelay, description: 'ms a socket\'s frames wait to leave together in one write (0: those of one event-loop iteration only); a few ms cuts server CPU per delivery under load, at that much added latency' }),
  msgpack: Type.Boolean({ default: defaults.msgpack, description: 'accept the `realtime.v1.msgpack` subprotocol (the same protocol in binary MessagePack frames) from clients that offer it; needs msgpackr, an optional peer, loaded on the first such connection' }),
  compression: Type.Union([
    Type.Boolean(),
    Type.Object({
      threshold: Type.Optional(Type.Integer({ minimum: 0, default: defaults.compressionThreshold, description: 'payloads smaller than this many bytes are sent uncompressed' })),
      level: Type.Optional(Type.Integer({ minimum: -1, maximum: 9, default: defaults.compressionLevel, description: 'zlib level: 1 fast … 9 small, -1 zlib\'s default (6)' })),
      memLevel: Type.Optional(Type.Integer({ minimum: 1, maximum: 9, default: defaults.compressionMemLevel, description: 'zlib memLevel' }))
    }, { additionalProperties: false })
  ], { default: false, description: 'permessage-deflate without context takeover, each publication compressed once for every subscriber that negotiated it (true, or { threshold, level, memLevel }); off by default' }),
  allowedOrigins: Type.Optional(Type.Array(Type.String(), { description: 'browser origins allowed to connect; others get 403 before the upgrade (default: any)' })),
  asyncapi: Type.Optional(Type.Object({
    path: Type.Optional(Type.String({ pattern: '^/', default: defaults.asyncapiPath, description: 'serves the page at path, JSON at path.json, YAML at path.yaml (or by Accept)' })),
    info: Type.Optional(Type.Object({
      title: Type.Optional(Type.String({ description: 'default: "Real-time API"' })),
      version: Type.Optional(Type.String({ description: 'default: "1.0.0"' })),
      description: Type.Optional(Type.String())
    })),
    server: Type.Optional(Type.Object({ url: Type.String({ pattern: '^wss?://[^/]+$', description: 'ws://host:port or wss://host; default: the host the document was asked from' }) }))
  }, { description: 'serve the AsyncAPI 3.0 document of the declarations (absent: not served; app.realtime.asyncapi() works regardless)' })),
  metrics: Type.Optional(Type.Union([Type.Boolean(), Type.Object({
    prefix: Type.Optional(Type.String({ pattern: '^[a-zA-Z_:][a-zA-Z0-9_:]*$', description: 'prefix of every metric name (default realtime_)' })),
    registry: Type.Optional(Type.Unknown({ description: 'the prom-client Registry to use (default: a new Registry per registration, served as app.realtime.metrics)' }))
  }, { additionalProperties: false })], { description: 'Prometheus metrics through prom-client (an optional peer); off by default' }))
}, { additionalProperties: true })

export type JsonOptions = Static<typeof OptionsSchema>

/** The compression settings of resolved options, or undefined when compression is off. */
export function compressionOf (options: Pick<JsonOptions, 'compression'>): CompressionOptions | undefined {
  const value = options.compression
  if (value === false) return undefined
  const given = value === true ? {} : value
  return {
    threshold: given.threshold ?? defaults.compressionThreshold,
    level: given.level ?? defaults.compressionLevel,
    memLevel: given.memLevel ?? defaults.compressionMemLevel
  }
}

/** zlib's level for Z_DEFAULT_COMPRESSION (-1). */
const ZLIB_DEFAULT_LEVEL = 6

/**
 * Why a WebSocket server registered elsewhere (the app's @fastify/websocket, or a parent
 * context's fastify-realtime) cannot give what the compression option asks for, or null
 * when it can: off asks for nothing; on asks for permessage-deflate without context
 * takeover either way (so a publication deflated once decodes on every socket) with the
 * same threshold, level and memLevel. ws's own defaults (threshold 1024, zlib's default
 * level, memLevel 8) count as given, as they are ours.
 */
export function sharedCompressionProblem (compression: CompressionOptions | undefined, perMessageDeflate: WebSocketServerOptions['perMessageDeflate']): string | null {
  if (compression === undefined) return null
  const shared = 'the WebSocket server is already registered (@fastify/websocket) and'
  const remedy = 'so it cannot be applied here: where that server is registered, give it perMessageDeflate { serverNoContextTakeover: true, clientNoContextTakeover: true } with the same threshold and zlibDeflateOptions level and memLevel, or leave compression off'
  if (perMessageDeflate === undefined || perMessageDeflate === false) return `${shared} does not offer permessage-deflate, ${remedy}`
  const server = perMessageDeflate === true ? {} : perMessageDeflate
  const level = (value: number): number => value === -1 ? ZLIB_DEFAULT_LEVEL : value
  const differences: string[] = []
  if (server.serverNoContextTakeover !== true) differences.push('serverNoContextTakeover is not true')
  if (server.clientNoContextTakeover !== true) differences.push('clientNoContextTakeover is not true')
  const threshold = server.threshold ?? 1024
  if (threshold !== compression.threshold) differences.push(`threshold ${threshold}, not ${compression.threshold}`)
  const serverLevel = server.zlibDeflateOptions?.level ?? -1
  if (level(serverLevel) !== level(compression.level)) differences.push(`level ${serverLevel}, not ${compression.level}`)
  const memLevel = server.zlibDeflateOptions?.memLevel ?? 8
  if (memLevel !== compression.memLevel) differences.push(`memLevel ${memLevel}, not ${compression.memLevel}`)
  if (differences.length === 0) return null
  return `${shared} its perMessageDeflate differs (${differences.join('; ')}), ${remedy}`
}

/** What `authenticate` returns: the user, and optionally when its credentials expire (ms since the epoch). */
export type AuthResult<U = unknown> = { user: U, expiresAt?: number } | null | undefined | false

export interface BehaviourOptions {
  /** Authenticate by first message: called with the `auth` frame's token. Return `{ user }`, or a falsy value to refuse (close 4500). */
  authenticate?: (token: string, request: FastifyRequest) => AuthResult | Promise<AuthResult>
  /** The user of a connection authenticated by Fastify hooks on the upgrade request. Default: `request.user` where a plugin set it. */
  getUser?: (request: FastifyRequest) => unknown
  /** A stable id for a user, used to find a user's connections. Default: `user.id`, or the user itself when it is a string or number. */
  userId?: (user: unknown) => string | undefined
  /** Schema of the user as clients see it (auth reply, presence). Properties it does not name are not sent. Default: `{ id }`. */
  userSchema?: TSchema
  /** Options for the Ajv instances that validate message data. */
  ajv?: AjvConfig
  /** Options passed to the ws server when the plugin registers @fastify/websocket itself. */
  websocket?: WebSocketServerOptions
  /** Where publications, offsets and history live. Default: an in-memory broker, closed with the app. */
  broker?: Broker
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] }

export type RealtimeOptions = DeepPartial<JsonOptions> & BehaviourOptions
export type ResolvedOptions = JsonOptions & BehaviourOptions

const functionKeys = ['authenticate', 'getUser', 'userId'] as const
const objectKeys = ['userSchema', 'ajv', 'websocket', 'broker'] as const

export function resolveOptions (input: RealtimeOptions | undefined): Readonly<ResolvedOptions> {
  const raw: Record<string, unknown> = { ...(input ?? {}) }
  for (const key of functionKeys) {
    if (raw[key] !== undefined && typeof raw[key] !== 'function') {
      throw new errorCodes.FST_REALTIME_INVALID_OPTION(key, 'must be a function')
    }
  }
  for (const key of objectKeys) {
    if (raw[key] !== undefined && (raw[key] === null || typeof raw[key] !== 'object')) {
      throw new errorCodes.FST_REALTIME_INVALID_OPTION(key, 'must be an object')
    }
  }
  const json: Record<string, unknown> = { ...raw }
  for (const key of [...functionKeys, ...objectKeys]) delete json[key]
  // The registry is a prom-client object: checked here, kept by reference, never cloned.
  const metrics = raw.metrics as { registry?: { registerMetric?: unknown } } | undefined
  if (metrics !== null && typeof metrics === 'object' && metrics.registry !== undefined) {
    if (metrics.registry === null || typeof metrics.registry.registerMetric !== 'function') throw new errorCodes.FST_REALTIME_INVALID_OPTION('metrics.registry', 'must be a prom-client Registry')
    json.metrics = { ...metrics, registry: undefined }
  }
  // A misspelt option (`pth`, `heartbeat.intreval`) would otherwise be ignored in silence.
  const unknown = unknownKey(OptionsSchema, json, '')
  if (unknown !== null) throw new errorCodes.FST_REALTIME_INVALID_OPTION(unknown.name, unknown.why)
  if (raw.broker !== undefined) checkBroker(raw.broker as Record<string, unknown>)
  const filled = withDefaults(OptionsSchema as never, clone(json))
  const first = firstError(OptionsSchema as never, filled, '')
  if (first !== null) {
    const name = first.path.replace(/^\//, '').replace(/\//g, '.')
    throw new errorCodes.FST_REALTIME_INVALID_OPTION(name, first.message)
  }
  const resolved = filled as ResolvedOptions
  if (resolved.compression !== false && (raw.websocket as WebSocketServerOptions | undefined)?.perMessageDeflate !== undefined) {
    throw new errorCodes.FST_REALTIME_INVALID_OPTION('websocket.perMessageDeflate', 'the compression option sets it (without context takeover, so each publication is compressed once): give one or the other')
  }
  // Behaviour options are kept by reference: cloning would break class instances such as a broker.
  for (const key of [...functionKeys, ...objectKeys, 'metrics']) {
    if (raw[key] !== undefined) (resolved as unknown as Record<string, unknown>)[key] = raw[key]
  }
  return Object.freeze(resolved)
}

/** The methods a broker must have (lib/broker/types.ts); checked at register, not at the first call. */
const BROKER_METHODS = ['start', 'command', 'publish', 'position', 'recover', 'history', 'join', 'leave', 'members', 'subscribe', 'unsubscribe', 'close'] as const

function checkBroker (broker: Record<string, unknown>): void {
  const missing = BROKER_METHODS.filter((name) => typeof broker[name] !== 'function')
  if (missing.length > 0) {
    throw new errorCodes.FST_REALTIME_INVALID_OPTION('broker', `is not a broker: it lacks ${missing.join(', ')} (see the Broker interface)`)
  }
}

function unknownKey (schema: TObject, value: Record<string, unknown>, prefix: string): { name: string, why: string } | null {
  const known = Object.keys(schema.properties)
  for (const key of Object.keys(value)) {
    const property = schema.properties[key] as TSchema | undefined
    if (property === undefined) {
      const near = prefix === '' ? [...known, ...functionKeys, ...objectKeys] : known
      const guess = near.find((name) => distance(name, key) <= 2)
      return { name: prefix + key, why: `unknown option${guess === undefined ? '' : `; did you mean "${prefix + guess}"?`}` }
    }
    const inner = value[key]
    if (property[Kind] === 'Object' && inner !== null && typeof inner === 'object' && !Array.isArray(inner)) {
      const found = unknownKey(property as TObject, inner as Record<string, unknown>, `${prefix}${key}.`)
      if (found !== null) return found
    }
  }
  return null
}

/** Edit distance, for "did you mean": option names are short, so the square table is cheap. */
function distance (a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1))
      previous = current
    }
  }
  return row[b.length]
}
