// Topic patterns (`room/:name`, `ticker/*symbol`), their typed params, message schemas
// and authorization. The rules of names and patterns are in topic-names.ts.
import type { TSchema } from '../protocol/schema.js'
import { errorCodes } from '../protocol/errors.js'
import { defaults } from '../config/options.js'
import { nameProblem, parsePattern, type PatternSegment } from '../protocol/topic-names.js'
import type { Checker, SchemaCompiler, Serializer, Validator } from '../wire/schema-compiler.js'
import type { Connection } from '../connection/public.js'
import type { HistoryOptions } from '../broker/types.js'
import { compileTags, type CompiledTags, type TagsOptions } from './tags.js'

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
  /** A subscribe without `since` is answered with the latest publication (within history), then what follows. */
  latest?: boolean
  /** Tags of each publication, which a subscribe's filter matches (tags.ts, filters.ts). */
  tags?: TagsOptions
  /** Subscribers may ask for Fossil deltas (`delta: 'fossil'` in subscribe). */
  delta?: boolean
}

export interface PresenceOptions {
  /** Schema of a member's meta (status, device…), sent by the client in `subscribe`. */
  meta?: TSchema
  /** Largest serialised meta in bytes (default 1024). */
  maxMetaBytes?: number
  /**
   * 'members' (the default): subscribers hear each `join` and `leave`. 'count': they hear
   * the number of members instead, at most once per `countInterval`, for topics with
   * thousands of members.
   */
  mode?: 'members' | 'count'
  /** Ms between two counts of a topic in count mode (default 1000). */
  countInterval?: number
}

export interface CompiledPresence {
  validateMeta: Validator | null
  serializeMeta: Serializer | null
  maxMetaBytes: number
  /** Null in members mode; in count mode, the ms between two counts. */
  countInterval: number | null
}

export interface CompiledTopic {
  pattern: string
  /** The definition as declared, for describing the API (AsyncAPI). */
  definition: TopicDefinition
  segments: PatternSegment[]
  /** The plugin's maxTopicLength: name() refuses to build a longer name. */
  maxLength: number
  validateParams: Validator | null
  validateMessage: Validator
  /** Checks a publication made by the server (a client's is validated with validateMessage). */
  checkMessage: Checker
  serialize: Serializer
  authorize: TopicDefinition['authorize']
  clientPublish: boolean
  history: HistoryOptions
  volatile: boolean
  delta: boolean
  presence: CompiledPresence | null
  latest: boolean
  tags: CompiledTags | null
}

export interface TopicMatch {
  topic: CompiledTopic
  params: Record<string, unknown>
}

export class Topics {
  readonly #list: CompiledTopic[] = []
  readonly #byPattern = new Map<string, CompiledTopic>()
  readonly #compiler: SchemaCompiler

  readonly #history: HistoryOptions
  readonly #maxLength: number

  constructor (compiler: SchemaCompiler, history: HistoryOptions, maxTopicLength: number = defaults.maxTopicLength) {
    this.#compiler = compiler
    this.#history = history
    this.#maxLength = maxTopicLength
  }

  add (pattern: string, definition: TopicDefinition): CompiledTopic {
    const segments = parsePattern(pattern)
    if (typeof segments === 'string') throw new errorCodes.FST_REALTIME_INVALID_PATTERN(String(pattern), segments)
    if (this.#byPattern.has(pattern)) throw new errorCodes.FST_REALTIME_DUPLICATE_TOPIC(pattern)
    if (definition?.message === undefined) {
      throw new errorCodes.FST_REALTIME_INVALID_PATTERN(pattern, 'a topic declares its message schema')
    }
    const owner = `topic "${pattern}"`
    const compiled: CompiledTopic = {
      pattern,
      definition,
      segments,
      maxLength: this.#maxLength,
      validateParams: definition.params === undefined ? null : this.#compiler.paramsValidator(definition.params, owner),
      validateMessage: this.#compiler.validator(definition.message, 'message', owner),
      checkMessage: this.#compiler.checker(definition.message, 'message', owner),
      serialize: this.#compiler.serializer(definition.message, 'message', owner),
      authorize: definition.authorize,
      clientPublish: definition.clientPublish === true,
      history: { ...this.#history, ...definition.history },
      volatile: definition.volatile === true,
      delta: definition.delta === true,
      presence: this.#presence(definition.presence, owner),
      latest: definition.latest === true,
      tags: compileTags(definition.tags, this.#compiler, owner)
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
    const mode = options.mode ?? 'members'
    const countInterval = options.countInterval ?? 1000
    if (mode !== 'members' && mode !== 'count') throw new errorCodes.FST_REALTIME_INVALID_PATTERN(owner, 'presence.mode must be "members" or "count"')
    if (!Number.isInteger(countInterval) || countInterval < 1) {
      throw new errorCodes.FST_REALTIME_INVALID_PATTERN(owner, 'presence.countInterval must be a whole number of ms >= 1')
    }
    return {
      validateMeta: options.meta === undefined ? null : this.#compiler.validator(options.meta, 'presence meta', owner),
      serializeMeta: options.meta === undefined ? null : this.#compiler.serializer(options.meta, 'presence meta', owner),
      maxMetaBytes,
      countInterval: mode === 'count' ? countInterval : null
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
    if (nameProblem(name, this.#maxLength) !== null) return null
    const parts = name.split('/')
    for (const topic of this.#list) {
      const params = matchSegments(topic, parts)
      if (params === null) continue
      if (topic.validateParams !== null) {
        if (topic.validateParams(params) !== null) continue
        // Coercion makes `user/01`, `user/1.0` and `user/+1` all `{ id: 1 }`: only the
        // canonical spelling is that topic, so one authorize decision covers one name.
        if (canonicalName(topic, params) !== name) continue
      }
      return { topic, params }
    }
    return null
  }
}

function matchSegments (topic: CompiledTopic, parts: string[]): Record<string, unknown> | null {
  const segments = topic.segments
  const last = segments[segments.length - 1]
  // A wildcard takes one segment or more; everything else takes exactly one.
  const fixed = 'rest' in last ? segments.length - 1 : segments.length
  if ('rest' in last ? parts.length < segments.length : parts.length !== segments.length) return null
  const params: Record<string, unknown> = {}
  for (let i = 0; i < fixed; i++) {
    const segment = segments[i]
    if ('literal' in segment) {
      if (segment.literal !== parts[i]) return null
    } else {
      params[(segment as { param: string }).param] = parts[i]
    }
  }
  if ('rest' in last) params[last.rest] = parts.slice(fixed).join('/')
  return params
}

/** The name coerced params spell, or null when they spell none (formatTopic refuses them). */
function canonicalName (topic: CompiledTopic, params: Record<string, unknown>): string | null {
  try {
    return formatTopic(topic, params)
  } catch {
    return null
  }
}

/**
 * Fills a pattern with params: `room/:name` + `{ name: 'a' }` is `room/a`, and
 * `ticker/*symbol` + `{ symbol: 'BTC/USDT' }` is `ticker/BTC/USDT`. Values are written as
 * they are (String(value)), never percent-encoded; one that cannot be read back the same
 * (a `/` in a `:param`, an empty segment, a control character, too long) is refused.
 */
export function formatTopic (topic: CompiledTopic, params: Record<string, unknown>): string {
  const owner = `topic "${topic.pattern}"`
  const name = topic.segments.map((s) => {
    if ('literal' in s) return s.literal
    const key = 'param' in s ? s.param : s.rest
    const value = params?.[key]
    const text = value === undefined || value === null ? '' : String(value)
    if ('param' in s ? text.length === 0 || text.includes('/') : nameProblem(text, Infinity) !== null) {
      const rule = 'param' in s
        ? 'a non-empty value without "/"'
        : 'non-empty segments joined by "/" (no leading, trailing or doubled "/")'
      throw new errorCodes.FST_REALTIME_INVALID_DATA(owner, `parameter "${key}" must be ${rule}`)
    }
    return text
  }).join('/')
  const problem = nameProblem(name, topic.maxLength)
  if (problem !== null) throw new errorCodes.FST_REALTIME_INVALID_DATA(owner, `"${name.slice(0, 80)}": ${problem}`)
  return name
}
