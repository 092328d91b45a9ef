// Tags: a few string or number fields a topic declares for its publications, which
// filtered subscriptions match (filters.ts). They are computed from the data by the
// topic's `from` function, or given at publish, and checked against the declared
// schema. They travel with the publication through the broker and its history inside
// the serialised data, ahead of it (`\u0001<tags JSON>\u0001<data>`): brokers keep data
// as an opaque string, so Redis, its history and recovery carry tags unchanged, and no
// client ever sees them (the hub and recovery split them off before framing).
import type { TSchema } from '../protocol/schema.js'
import { errorCodes } from '../protocol/errors.js'
import type { Checker, SchemaCompiler } from '../wire/schema-compiler.js'

export type Tags = Record<string, string | number>

export interface TagsOptions<M = any> {
  /** An object schema whose properties are strings, numbers or integers. */
  schema: TSchema
  /** Computes the tags from a publication's data; without it, tags are given at publish (`{ tags }`). */
  from?: (data: M) => Tags
}

export interface CompiledTags {
  types: Record<string, 'string' | 'number'>
  check: Checker
  from: ((data: any) => Tags) | undefined
}

const MARK = '\u0001'

export function compileTags (options: TagsOptions | undefined, compiler: SchemaCompiler, owner: string): CompiledTags | null {
  if (options === undefined) return null
  const schema = options?.schema as { type?: unknown, properties?: Record<string, { type?: unknown }> } | undefined
  const bad = (why: string): never => { throw new errorCodes.FST_REALTIME_SCHEMA('tags', owner, why) }
  if (schema?.type !== 'object' || schema.properties === undefined) return bad('tags.schema must be an object schema with properties')
  if (options.from !== undefined && typeof options.from !== 'function') return bad('tags.from must be a function')
  const types: Record<string, 'string' | 'number'> = Object.create(null)
  for (const [name, property] of Object.entries(schema.properties)) {
    const type = property?.type
    if (type === 'string') types[name] = 'string'
    else if (type === 'number' || type === 'integer') types[name] = 'number'
    else bad(`tag "${name}" must be a string, number or integer`)
  }
  return { types, check: compiler.checker(options.schema, 'tags', owner), from: options.from }
}

/** The data as the broker carries it: with its tags ahead of it when the topic has tags. */
export function tagData (tags: CompiledTags | null, given: Tags | undefined, message: unknown, payload: string, owner: string): string {
  if (tags === null) {
    if (given !== undefined) throw new errorCodes.FST_REALTIME_INVALID_DATA(owner, 'tags given for a topic that declares none')
    return payload
  }
  const value = given ?? tags.from?.(message)
  if (value === undefined) throw new errorCodes.FST_REALTIME_INVALID_DATA(owner, 'the topic declares tags: give them at publish ({ tags }) or declare tags.from')
  const problem = tags.check(value)
  if (problem !== null) throw new errorCodes.FST_REALTIME_INVALID_DATA(`${owner} tags`, problem)
  return MARK + JSON.stringify(value) + MARK + payload
}

/** Splits what the broker carried into the data clients see and its tags (undefined when it has none). */
export function untag (carried: string): { data: string, tags: Tags | undefined } {
  if (carried.charCodeAt(0) !== 1) return { data: carried, tags: undefined }
  const end = carried.indexOf(MARK, 1)
  return { data: carried.slice(end + 1), tags: JSON.parse(carried.slice(1, end)) as Tags }
}
