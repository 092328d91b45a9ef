// Message routes: a type name, the schemas of its data, reply and errors, and a handler.
// Everything is compiled when the route is declared; dispatch only calls it.
import type { Static, TSchema } from '@sinclair/typebox'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { errorCodes, PROTOCOL_ERROR_CODES, type RealtimeError } from './errors.js'
import type { SchemaCompiler, Serializer, Validator } from './schema-compiler.js'
import type { Connection } from './connection.js'
import { RESERVED_TYPES } from './protocol.js'
import type { PublishFunction } from './typed.js'

export type ErrorSchemas = Record<string, TSchema>

export interface RouteSchema<D extends TSchema = TSchema, R extends TSchema | undefined = TSchema | undefined, E extends ErrorSchemas = ErrorSchemas> {
  data: D
  reply?: R
  errors?: E
}

export type ReplyOf<R> = R extends TSchema ? Static<R> : void

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

export interface RouteDefinition<D extends TSchema = TSchema, R extends TSchema | undefined = TSchema | undefined, E extends ErrorSchemas = ErrorSchemas, U = unknown> {
  type: string
  schema: RouteSchema<D, R, E>
  handler: (data: Static<D>, context: MessageContext<R, E, U>) => ReplyOf<R> | Promise<ReplyOf<R>>
  /** Runs before this route's handler, after validation and the plugin-wide preHandler hooks. Throw to answer with that error. */
  preHandler?: RoutePreHandler<D, R, E, U> | Array<RoutePreHandler<D, R, E, U>>
}

export type RoutePreHandler<D extends TSchema = TSchema, R extends TSchema | undefined = TSchema | undefined, E extends ErrorSchemas = ErrorSchemas, U = unknown> =
  (data: Static<D>, context: MessageContext<R, E, U>) => void | Promise<void>

export interface CompiledRoute {
  type: string
  validate: Validator
  serializeReply: Serializer | null
  errorSerializers: Map<string, Serializer>
  handler: (data: any, context: MessageContext<any, any, any>) => unknown
  preHandler: ReadonlyArray<(data: any, context: MessageContext<any, any, any>) => void | Promise<void>>
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

export class Router {
  readonly #routes = new Map<string, CompiledRoute>()
  readonly #compiler: SchemaCompiler

  constructor (compiler: SchemaCompiler) {
    this.#compiler = compiler
  }

  add (definition: RouteDefinition<any, any, any, any>): CompiledRoute {
    const { type, schema, handler, preHandler } = definition ?? {}
    checkTypeName('route', type)
    if (this.#routes.has(type)) throw new errorCodes.FST_REALTIME_DUPLICATE_ROUTE(type)
    if (typeof handler !== 'function') throw new errorCodes.FST_REALTIME_INVALID_NAME('route', type, 'handler must be a function')
    if (schema?.data === undefined) throw new errorCodes.FST_REALTIME_SCHEMA('data', `route "${type}"`, 'schema.data is required')
    const preHandlers = preHandler === undefined ? [] : ([] as unknown[]).concat(preHandler)
    for (const fn of preHandlers) {
      if (typeof fn !== 'function') throw new errorCodes.FST_REALTIME_HOOK_INVALID_HANDLER(`route "${type}" preHandler`, Object.prototype.toString.call(fn))
    }
    const owner = `route "${type}"`
    const errorSerializers = new Map<string, Serializer>()
    for (const [code, detailSchema] of Object.entries(schema.errors ?? {})) {
      if (!ERROR_CODE.test(code)) throw new errorCodes.FST_REALTIME_INVALID_NAME('error code', code, 'upper case letters, digits and _')
      if (PROTOCOL_ERROR_CODES.has(code)) throw new errorCodes.FST_REALTIME_RESERVED_TYPE(code)
      errorSerializers.set(code, this.#compiler.serializer(detailSchema as TSchema, `error ${code}`, owner))
    }
    const compiled: CompiledRoute = {
      type,
      validate: this.#compiler.validator(schema.data, 'data', owner),
      serializeReply: schema.reply === undefined ? null : this.#compiler.serializer(schema.reply, 'reply', owner),
      errorSerializers,
      handler,
      preHandler: preHandlers as CompiledRoute['preHandler']
    }
    this.#routes.set(type, compiled)
    return compiled
  }

  get (type: string): CompiledRoute | undefined {
    return this.#routes.get(type)
  }
}
