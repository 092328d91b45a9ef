// Defaults and the first error of the JSON options, walked over their schema (options.ts)
// by hand: the few keywords that schema uses, with TypeBox's messages. A second schema
// engine (TypeBox's Value, some 250 modules) or a compiled validator would cost every
// start more than the options they check, once.
import { Kind, OptionalKind } from '../wire/json-schema.js'

type Schema = Record<string | symbol, unknown> & {
  type?: string
  properties?: Record<string, Schema>
  required?: string[]
  anyOf?: Schema[]
  items?: Schema
  default?: unknown
}

export interface OptionError { path: string, message: string }

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** A deep copy of plain objects and arrays; anything else is kept by reference. */
export function clone (value: unknown): unknown {
  if (Array.isArray(value)) return value.map(clone)
  if (isObject(value) && (Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null)) {
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, clone(inner)]))
  }
  return value
}

/** The value with the schema's defaults filled in where it has nothing (as TypeBox's Value.Default). */
export function withDefaults (schema: Schema, value: unknown): unknown {
  const current = value === undefined && 'default' in schema ? clone(schema.default) : value
  if (schema[Kind] === 'Object' && isObject(current)) {
    for (const [key, property] of Object.entries(schema.properties ?? {})) {
      const filled = withDefaults(property, current[key])
      if (filled !== undefined) current[key] = filled
    }
  }
  if (schema[Kind] === 'Union') {
    // The first member the value, with that member's defaults, matches.
    for (const member of schema.anyOf ?? []) {
      const candidate = withDefaults(member, clone(current))
      if (firstError(member, candidate, '') === null) return candidate
    }
  }
  return current
}

const comparisons = [
  ['minimum', (v: number, l: number) => v >= l, 'greater or equal to'],
  ['exclusiveMinimum', (v: number, l: number) => v > l, 'greater than'],
  ['maximum', (v: number, l: number) => v <= l, 'less or equal to']
] as const

/** The first way the value fails the schema, with a path of `/`-separated names, or null. */
export function firstError (schema: Schema, value: unknown, path: string): OptionError | null {
  const fail = (message: string): OptionError => ({ path, message })
  switch (schema[Kind]) {
    case 'Unknown':
      return null
    case 'Boolean':
      return typeof value === 'boolean' ? null : fail('Expected boolean')
    case 'Literal':
      return value === schema.const ? null : fail(`Expected ${typeof schema.const === 'string' ? `'${schema.const}'` : String(schema.const)}`)
    case 'Union': {
      const members = schema.anyOf ?? []
      if (members.some((member) => firstError(member, value, path) === null)) return null
      // A choice of constants (closeCode) names them, so that the error says what is allowed.
      const literals = members.every((member) => member[Kind] === 'Literal')
      return fail(literals ? `Expected one of ${members.map((member) => JSON.stringify(member.const)).join(', ')}` : 'Expected union value')
    }
    case 'Integer':
    case 'Number': {
      const name = schema.type as string
      if (typeof value !== 'number' || !Number.isFinite(value) || (name === 'integer' && !Number.isInteger(value))) return fail(`Expected ${name}`)
      for (const [keyword, holds, words] of comparisons) {
        const limit = schema[keyword] as number | undefined
        if (limit !== undefined && !holds(value, limit)) return fail(`Expected ${name} to be ${words} ${limit}`)
      }
      return null
    }
    case 'String': {
      if (typeof value !== 'string') return fail('Expected string')
      const pattern = schema.pattern as string | undefined
      if (pattern !== undefined && !new RegExp(pattern).test(value)) return fail(`Expected string to match '${pattern}'`)
      return null
    }
    case 'Array': {
      if (!Array.isArray(value)) return fail('Expected array')
      for (let i = 0; i < value.length; i++) {
        const error = firstError(schema.items as Schema, value[i], `${path}/${i}`)
        if (error !== null) return error
      }
      return null
    }
    case 'Object': {
      if (!isObject(value)) return fail('Expected object')
      const properties = schema.properties ?? {}
      for (const key of schema.required ?? []) {
        if (value[key] === undefined) return { path: `${path}/${key}`, message: 'Expected required property' }
      }
      for (const [key, property] of Object.entries(properties)) {
        if (value[key] === undefined && property[OptionalKind] === 'Optional') continue
        const error = firstError(property, value[key], `${path}/${key}`)
        if (error !== null) return error
      }
      if (schema.additionalProperties === false) {
        const extra = Object.keys(value).find((key) => !(key in properties))
        if (extra !== undefined) return { path: `${path}/${extra}`, message: 'Unexpected property' }
      }
      return null
    }
    default:
      throw new Error(`options-check: no check for schema kind ${String(schema[Kind])}`)
  }
}
