// TypeBox schemas as AsyncAPI schemas. TypeBox marks its schemas with symbols and
// has a few kinds that JSON cannot carry (Date, Uint8Array, functions…); what goes
// into the document is plain JSON Schema: symbols dropped, non-JSON kinds reduced to
// "any value" with their description, `$id`, `title`, `description` and `examples`
// kept. A schema that has an `$id`, or that the application used in more than one
// place (the same object), is written once under `components.schemas` and referenced.
import { Kind } from '../wire/json-schema.js'

export type JsonSchema = Record<string, unknown>

/** Keywords whose value is one schema. */
const ONE = ['additionalProperties', 'additionalItems', 'contains', 'not', 'if', 'then', 'else', 'propertyNames', 'unevaluatedProperties', 'unevaluatedItems', 'items']
/** Keywords whose value is a list of schemas. */
const LIST = ['anyOf', 'oneOf', 'allOf', 'prefixItems']
/** Keywords whose value maps names to schemas. */
const MAP = ['properties', 'patternProperties', 'dependentSchemas', '$defs', 'definitions']

/** TypeBox kinds with no JSON form: on the wire they are whatever their serializer makes of them. */
const NON_JSON_KINDS = new Set(['Date', 'Uint8Array', 'Undefined', 'BigInt', 'Symbol', 'Function', 'Constructor', 'Promise', 'AsyncIterator', 'Iterator', 'Void', 'RegExp'])
/** What survives of a non-JSON kind: the words about it. */
const KEPT_OF_NON_JSON = ['$id', 'title', 'description', 'examples']

const COMPONENT_KEY = /[^A-Za-z0-9._-]/g

function isObject (value: unknown): value is JsonSchema {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/** Deep copy of JSON data (`const`, `default`, `examples`…): symbols and functions are left out. */
function copyData (value: unknown): unknown {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value))
}

/** `chat.send` + `data` → `ChatSendData`: a readable component name from where a schema was first met. */
export function pascal (...parts: string[]): string {
  return parts.join(' ').split(/[^A-Za-z0-9]+/).filter((p) => p.length > 0)
    .map((p) => p[0].toUpperCase() + p.slice(1)).join('') || 'Schema'
}

/**
 * Collects every schema of a description first (`collect`), so that it knows which
 * objects are shared before writing any of them, then writes them (`write`).
 */
export class SchemaComponents {
  readonly components: Record<string, JsonSchema> = {}
  readonly #uses = new Map<object, number>()
  readonly #byId = new Map<string, object>()
  readonly #names = new Map<object, string>()
  readonly #hints = new Map<object, string>()

  /** Names a shared schema after what the application declared it as (the first hint wins). */
  hint (schema: unknown, name: string): void {
    if (isObject(schema) && !this.#hints.has(schema)) this.#hints.set(schema, name)
  }

  /**
   * Schemas with one `$id` are one schema: TypeBox's `Optional` and `Readonly` copy the
   * schema they wrap, `$id` included, and the copy stands for the first one met.
   */
  #canonical (schema: JsonSchema): JsonSchema {
    return typeof schema.$id === 'string' ? (this.#byId.get(schema.$id) as JsonSchema | undefined) ?? schema : schema
  }

  /** Counts the uses of a schema and of the schemas inside it (once per use of their parent). */
  collect (schema: unknown): void {
    if (!isObject(schema)) return
    if (typeof schema.$id === 'string' && !this.#byId.has(schema.$id)) this.#byId.set(schema.$id, schema)
    const canonical = this.#canonical(schema)
    const uses = this.#uses.get(canonical) ?? 0
    this.#uses.set(canonical, uses + 1)
    if (uses > 0 || canonical !== schema) return
    forEachChild(schema, (child) => this.collect(child))
  }

  /**
   * The schema as it goes into the document: a `$ref` to its component when it is
   * shared, the cleaned schema otherwise. `hint` names the component of a shared
   * schema that has neither `$id` nor `title`.
   */
  write (input: unknown, hint: string): JsonSchema | boolean {
    if (typeof input === 'boolean') return input
    if (!isObject(input)) return {}
    const schema = this.#canonical(input)
    const shared = (this.#uses.get(schema) ?? 0) > 1 || typeof schema.$id === 'string'
    if (!shared) return this.#clean(schema, hint)
    let name = this.#names.get(schema)
    if (name === undefined) {
      name = this.#name(schema, hint)
      // Named before its children are written, so a schema that contains itself ends in a $ref.
      this.#names.set(schema, name)
      this.components[name] = this.#clean(schema, name)
    }
    return { $ref: `#/components/schemas/${name}` }
  }

  #name (schema: JsonSchema, hint: string): string {
    const base = typeof schema.$id === 'string'
      ? schema.$id.replace(COMPONENT_KEY, '_')
      : typeof schema.title === 'string' ? pascal(schema.title) : pascal(this.#hints.get(schema) ?? hint)
    let name = base
    for (let i = 2; name in this.components; i++) name = `${base}${i}`
    return name
  }

  #clean (schema: JsonSchema, hint: string): JsonSchema {
    const kind = (schema as Record<symbol, unknown>)[Kind]
    const out: JsonSchema = {}
    if (typeof kind === 'string' && NON_JSON_KINDS.has(kind)) {
      for (const key of KEPT_OF_NON_JSON) if (schema[key] !== undefined) out[key] = copyData(schema[key])
      return out
    }
    for (const [key, value] of Object.entries(schema)) {
      if (value === undefined || typeof value === 'function') continue
      if (key === '$ref' && typeof value === 'string') {
        // A TypeBox `Type.Ref('Name')` points at a schema by its $id: point at its component instead.
        const target = this.#byId.get(value)
        out.$ref = target === undefined ? value : (this.write(target, value) as JsonSchema).$ref
      } else if (ONE.includes(key) && (isObject(value) || typeof value === 'boolean')) {
        out[key] = this.write(value, `${hint} ${key === 'items' ? 'item' : key}`)
      } else if (LIST.includes(key) && Array.isArray(value)) {
        out[key] = value.map((s, i) => this.write(s, `${hint} ${key === 'prefixItems' ? 'item' : 'option'} ${i + 1}`))
      } else if (key === 'items' && Array.isArray(value)) {
        out[key] = value.map((s, i) => this.write(s, `${hint} item ${i + 1}`))
      } else if (MAP.includes(key) && isObject(value)) {
        const map: JsonSchema = {}
        for (const [name, s] of Object.entries(value)) map[name] = this.write(s, key === 'properties' ? `${hint} ${name}` : `${hint} ${key}`)
        out[key] = map
      } else {
        out[key] = copyData(value)
      }
    }
    return out
  }
}

function forEachChild (schema: JsonSchema, visit: (child: unknown) => void): void {
  const kind = (schema as Record<symbol, unknown>)[Kind]
  if (typeof kind === 'string' && NON_JSON_KINDS.has(kind)) return
  for (const [key, value] of Object.entries(schema)) {
    if (ONE.includes(key)) {
      if (Array.isArray(value)) value.forEach(visit)
      else visit(value)
    } else if (LIST.includes(key) && Array.isArray(value)) {
      value.forEach(visit)
    } else if (MAP.includes(key) && isObject(value)) {
      Object.values(value).forEach(visit)
    }
  }
}
