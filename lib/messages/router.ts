// Message routes: a type name, the schemas of its data, reply and errors, and a handler.
// Everything is compiled when the route is declared; dispatch only calls it.
import type { Static, TSchema } from '../protocol/schema.js'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { errorCodes, PROTOCOL_ERROR_CODES, type RealtimeError, type WireErrorDetail } from '../protocol/errors.js'
import type { Checker, SchemaCompiler, Serializer, Validator } from '../wire/schema-compiler.js'
import type { Connection } from '../connection/public.js'
import { RESERVED_TYPES } from '../protocol/constants.js'
import type { PublishFunction } from '../pubsub/typed.js'

export type ErrorSchemas = Record<string, TSchema>

export interface RouteSchema<D extends TSchema | undefined = TSchema | undefined, R extends TSchema | undefined = TSchema | undefined, E extends ErrorSchemas = ErrorSchemas> {
  /** The message's data. A route without it takes no data: a frame with `data` is refused. */
  data?: D
  /** As `route({ idempotent })`; set by a contract's route. */
  idempotent?: boolean
  reply?: R
  errors?: E
}

export type ReplyOf<R> = R extends TSchema ? Static<R> : void
/** What a handler receives: the data's static type, or undefined for a route that takes none. */
export type DataOf<D> = D extends TSchema ? Static<D> : undefined

export interface MessageContext<R extends TSchema | undefined = TSchema | undefined, E extends ErrorSchemas = ErrorSchemas, U = unknown> {
  /** The route's name (the message's `type`). */
  type: string
  /** The connection the message came on. */
  connection: Connection<U>
  /** The user of the connection, if authenticated. */
  user: U | undefined
  /** The HTTP upgrade request of the connection (headers, ip, decorations of your hooks). */
  request: FastifyRequest
  /** A logger carrying the connection id. */
  log: FastifyBaseLogger
  /** The message's `id`, when the client expects an answer. */
  id: string | number | undefined
  /** Sends the reply now; the handler's return value is then ignored. */
  reply: (data: ReplyOf<R>) => void
  /** Publishes to a topic, like `app.realtime.publish` (typed by RealtimeTopics). */
  publish: PublishFunction
  /** Builds one of the route's declared errors; throw it to answer with it. */
  error: <K extends keyof E & string>(code: K, details: Static<E[K]>, message?: string) => RealtimeError<K, Static<E[K]>>
}

export interface RouteDefinition<D extends TSchema | undefined = TSchema | undefined, R extends TSchema | undefined = TSchema | undefined, E extends ErrorSchemas = ErrorSchemas, U = unknown> {
  type: string
  /** Optional: a route with no schema takes no data and replies without data. */
  schema?: RouteSchema<D, R, E>
  handler: (data: DataOf<D>, context: MessageContext<R, E, U>) => ReplyOf<R> | Promise<ReplyOf<R>>
  /**
   * Remember the first answer per (user, `key`) for `idempotency.ttl`: a request sent
   * again with the same key (after a lost connection, on any node) gets that answer and
   * the handler runs once. Also read from `schema.idempotent`, as contracts carry it.
   */
  idempotent?: boolean
  /** Runs before this route's handler, after validation and the plugin-wide preHandler hooks. Throw to answer with that error. */
  preHandler?: RoutePreHandler<D, R, E, U> | Array<RoutePreHandler<D, R, E, U>>
}

export type RoutePreHandler<D extends TSchema | undefined = TSchema | undefined, R extends TSchema | undefined = TSchema | undefined, E extends ErrorSchemas = ErrorSchemas, U = unknown> =
  (data: DataOf<D>, context: MessageContext<R, E, U>) => void | Promise<void>

export interface CompiledRoute {
  type: string
  /** The schemas as declared, for describing the API (AsyncAPI). */
  schema: RouteSchema
  validate: Validator
  serializeReply: Serializer | null
  /** Checks a reply before it is serialised; null without a reply schema or with `validateReplies: false`. */
  checkReply: Checker | null
  errorSerializers: Map<string, Serializer>
  handler: (data: any, context: MessageContext<any, any, any>) => unknown
  preHandler: ReadonlyArray<(data: any, context: MessageContext<any, any, any>) => void | Promise<void>>
  idempotent: boolean
}

const TYPE_NAME = /^[A-Za-z][A-Za-z0-9_.:-]{0,63}$/
const ERROR_CODE = /^[A-Z][A-Z0-9_]{0,63}$/

/** Route and event names share one namespace rule, and neither may take a built-in's name. */
export function checkTypeName (what: 'route' | 'event', name: unknown): asserts name is string {
  if (typeof name !== 'string' || !TYPE_NAME.test(name)) {
    throw new errorCodes.FST_REALTIME_INVALID_NAME(what, String(name), 'a letter, then up to 63 letters, digits or _ . : -')
  }
  if (RESERVED_TYPES.has(name)) throw new errorCodes.FST_REALTIME_RESERVED_TYPE(name)
}

/** The data check of a route that takes none. */
const NO_DATA: WireErrorDetail[] = [{ path: '', message: 'this route takes no data' }]
const noData: Validator = (data) => data === undefined ? null : NO_DATA

export class Router {
  readonly #routes = new Map<string, CompiledRoute>()
  readonly #compiler: SchemaCompiler
  readonly #checkReplies: boolean

  constructor (compiler: SchemaCompiler, checkReplies: boolean) {
    this.#compiler = compiler
    this.#checkReplies = checkReplies
  }

  add (definition: RouteDefinition<any, any, any, any>): CompiledRoute {
    const { type, schema, handler, preHandler } = definition ?? {}
    checkTypeName('route', type)
    if (this.#routes.has(type)) throw new errorCodes.FST_REALTIME_DUPLICATE_ROUTE(type)
    if (typeof handler !== 'function') throw new errorCodes.FST_REALTIME_INVALID_NAME('route', type, 'handler must be a function')
    if (schema !== undefined && (schema === null || typeof schema !== 'object')) {
      throw new errorCodes.FST_REALTIME_SCHEMA('route', `route "${type}"`, 'schema must be an object of schemas')
    }
    const preHandlers = preHandler === undefined ? [] : ([] as unknown[]).concat(preHandler)
    for (const fn of preHandlers) {
      if (typeof fn !== 'function') throw new errorCodes.FST_REALTIME_HOOK_INVALID_HANDLER(`route "${type}" preHandler`, Object.prototype.toString.call(fn))
    }
    const owner = `route "${type}"`
    const errorSerializers = new Map<string, Serializer>()
    for (const [code, detailSchema] of Object.entries(schema?.errors ?? {})) {
      if (!ERROR_CODE.test(code)) throw new errorCodes.FST_REALTIME_INVALID_NAME('error code', code, 'upper case letters, digits and _')
      if (PROTOCOL_ERROR_CODES.has(code)) throw new errorCodes.FST_REALTIME_RESERVED_TYPE(code)
      errorSerializers.set(code, this.#compiler.serializer(detailSchema as TSchema, `error ${code}`, owner))
    }
    const compiled: CompiledRoute = {
      type,
      schema: schema ?? {},
      validate: schema?.data === undefined ? noData : this.#compiler.validator(schema.data, 'data', owner),
      serializeReply: schema?.reply === undefined ? null : this.#compiler.serializer(schema.reply, 'reply', owner),
      checkReply: schema?.reply === undefined || !this.#checkReplies ? null : this.#compiler.checker(schema.reply, 'reply', owner),
      errorSerializers,
      handler,
      preHandler: preHandlers as CompiledRoute['preHandler'],
      idempotent: definition.idempotent === true || schema?.idempotent === true
    }
    this.#routes.set(type, compiled)
    return compiled
  }

  get (type: string): CompiledRoute | undefined {
    return this.#routes.get(type)
  }

  /** The declared routes, in declaration order (read-only: for describing the API). */
  list (): Iterable<Readonly<CompiledRoute>> {
    return this.#routes.values()
  }
}
