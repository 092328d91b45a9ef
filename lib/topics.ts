// Topic patterns (`room/:name`), their typed params, message schemas and authorization.
import type { TSchema } from '@sinclair/typebox'
import { errorCodes } from './errors.js'
import type { Checker, SchemaCompiler, Serializer, Validator } from './schema-compiler.js'
import type { Connection } from './connection.js'
import type { HistoryOptions } from './broker/types.js'

export type TopicAction = 'subscribe' | 'publish' | 'presence'

export interface AuthorizeContext<P = Record<string, unknown>, U = unknown> {
  action: TopicAction
  topic: string
  params: P
  user: U | undefined
  connection: Connection<U>
}

export interface TopicDefinition {
  params?: TSchema
  message: TSchema
  authorize?: (context: AuthorizeContext<any, any>) => boolean | Promise<boolean>
  clientPublish?: boolean
  history?: Partial<HistoryOptions>
  volatile?: boolean
  presence?: boolean | PresenceOptions
}

export interface PresenceOptions {
  /** Schema of a member's meta (status, device…), sent by the client in `subscribe`. */
  meta?: TSchema
  /** Largest serialised meta in bytes (default 1024). */
  maxMetaBytes?: number
}

export interface CompiledPresence {
  validateMeta: Validator | null
  serializeMeta: Serializer | null
  maxMetaBytes: number
}

export interface CompiledTopic {
  pattern: string
  /** The definition as declared, for describing the API (AsyncAPI). */
  definition: TopicDefinition
  segments: Array<{ literal: string } | { param: string }>
  validateParams: Validator | null
  validateMessage: Validator
  /** Checks a publication made by the server (a client's is validated with validateMessage). */
  checkMessage: Checker
  serialize: Serializer
  authorize: TopicDefinition['authorize']
  clientPublish: boolean
  history: HistoryOptions
  volatile: boolean
  presence: CompiledPresence | null
}

export interface TopicMatch {
  topic: CompiledTopic
  params: Record<string, unknown>
}

const PARAM = /^:([A-Za-z_][A-Za-z0-9_]*)$/
const FORBIDDEN_PARAMS = new Set(['__proto__', 'constructor', 'prototype'])

export class Topics {
  readonly #list: CompiledTopic[] = []
  readonly #byPattern = new Map<string, CompiledTopic>()
  readonly #compiler: SchemaCompiler

  readonly #history: HistoryOptions

  constructor (compiler: SchemaCompiler, history: HistoryOptions) {
    this.#compiler = compiler
    this.#history = history
  }

  add (pattern: string, definition: TopicDefinition): CompiledTopic {
    if (typeof pattern !== 'string' || pattern.length === 0) {
      throw new errorCodes.FST_REALTIME_INVALID_PATTERN(String(pattern), 'a pattern is a non-empty string')
    }
    if (this.#byPattern.has(pattern)) throw new errorCodes.FST_REALTIME_DUPLICATE_TOPIC(pattern)
    if (definition?.message === undefined) {
      throw new errorCodes.FST_REALTIME_INVALID_PATTERN(pattern, 'a topic declares its message schema')
    }
    const names = new Set<string>()
    const segments = pattern.split('/').map((segment) => {
      if (segment.length === 0) throw new errorCodes.FST_REALTIME_INVALID_PATTERN(pattern, 'empty segment')
      if (segment[0] !== ':') return { literal: segment }
      const m = PARAM.exec(segment)
      if (m === null) throw new errorCodes.FST_REALTIME_INVALID_PATTERN(pattern, `bad parameter "${segment}"`)
      if (FORBIDDEN_PARAMS.has(m[1])) throw new errorCodes.FST_REALTIME_INVALID_PATTERN(pattern, `"${m[1]}" cannot name a parameter`)
      if (names.has(m[1])) throw new errorCodes.FST_REALTIME_INVALID_PATTERN(pattern, `parameter "${m[1]}" appears twice`)
      names.add(m[1])
      return { param: m[1] }
    })
    const owner = `topic "${pattern}"`
    const compiled: CompiledTopic = {
      pattern,
      definition,
      segments,
      validateParams: definition.params === undefined ? null : this.#compiler.paramsValidator(definition.params, owner),
      validateMessage: this.#compiler.validator(definition.message, 'message', owner),
      checkMessage: this.#compiler.checker(definition.message, 'message', owner),
      serialize: this.#compiler.serializer(definition.message, 'message', owner),
      authorize: definition.authorize,
      clientPublish: definition.clientPublish === true,
      history: { ...this.#history, ...definition.history },
      volatile: definition.volatile === true,
      presence: this.#presence(definition.presence, owner)
    }
    for (const key of ['size', 'ttl'] as const) {
      const value = compiled.history[key]
      if (!Number.isInteger(value) || value < 0) throw new errorCodes.FST_REALTIME_INVALID_PATTERN(pattern, `history.${key} must be a whole number >= 0`)
    }
    this.#list.push(compiled)
    this.#byPattern.set(pattern, compiled)
    return compiled
  }

  #presence (presence: TopicDefinition['presence'], owner: string): CompiledPresence | null {
    if (presence === undefined || presence === false) return null
    const options: PresenceOptions = presence === true ? {} : presence
    const maxMetaBytes = options.maxMetaBytes ?? 1024
    if (!Number.isInteger(maxMetaBytes) || maxMetaBytes < 1) {
      throw new errorCodes.FST_REALTIME_INVALID_PATTERN(owner, 'presence.maxMetaBytes must be a whole number >= 1')
    }
    return {
      validateMeta: options.meta === undefined ? null : this.#compiler.validator(options.meta, 'presence meta', owner),
      serializeMeta: options.meta === undefined ? null : this.#compiler.serializer(options.meta, 'presence meta', owner),
      maxMetaBytes
    }
  }

  /** The declared topics, in declaration order (read-only: for describing the API). */
  list (): readonly CompiledTopic[] {
    return this.#list
  }

  /**
   * The first declared pattern that the name matches, with its params validated (and
   * coerced) by the params schema. Null when none matches or the params are invalid:
   * callers answer both with FORBIDDEN, which says nothing about what exists.
   */
  match (name: string): TopicMatch | null {
    const parts = name.split('/')
    for (const topic of this.#list) {
      const params = matchSegments(topic, parts)
      if (params === null) continue
      if (topic.validateParams !== null) {
        if (topic.validateParams(params) !== null) continue
        // Coercion makes `user/01`, `user/1.0` and `user/+1` all `{ id: 1 }`: only the
        // canonical spelling is that topic, so one authorize decision covers one name.
        if (formatTopic(topic, params) !== name) continue
      }
      return { topic, params }
    }
    return null
  }
}

function matchSegments (topic: CompiledTopic, parts: string[]): Record<string, unknown> | null {
  if (parts.length !== topic.segments.length) return null
  const params: Record<string, unknown> = {}
  for (let i = 0; i < parts.length; i++) {
    const segment = topic.segments[i]
    const part = parts[i]
    if ('literal' in segment) {
      if (segment.literal !== part) return null
    } else {
      if (part.length === 0) return null
      params[segment.param] = part
    }
  }
  return params
}

/** Fills a pattern with params: `room/:name` + `{ name: 'a' }` is `room/a`. */
export function formatTopic (topic: CompiledTopic, params: Record<string, unknown>): string {
  return topic.segments.map((s) => {
    if ('literal' in s) return s.literal
    const value = params[s.param]
    if (value === undefined || value === null || String(value).length === 0 || String(value).includes('/')) {
      throw new errorCodes.FST_REALTIME_INVALID_DATA(`topic "${topic.pattern}"`, `parameter "${s.param}" must be a non-empty value without "/"`)
    }
    return String(value)
  }).join('/')
}
