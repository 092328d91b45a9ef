// An example value for a schema, for the document's message examples and the page:
// the schema's own `examples`, `default`, `const` or first `enum` value where it has
// one, otherwise a plain placeholder of the right type. Optional properties are left
// out, so an example shows the least a frame needs.
type Schema = Record<string, unknown>

/** Deeper than this, an example stops (a recursive schema would never end). */
const MAX_DEPTH = 8

export function example (schema: unknown, depth = 0): unknown {
  if (schema === null || typeof schema !== 'object' || depth > MAX_DEPTH) return null
  const s = schema as Schema
  if (Array.isArray(s.examples) && s.examples.length > 0) return s.examples[0]
  if (s.default !== undefined) return s.default
  if (s.const !== undefined) return s.const
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[0]
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
    if (Array.isArray(s[key]) && (s[key] as unknown[]).length > 0) return example((s[key] as unknown[])[0], depth + 1)
  }
  const type = Array.isArray(s.type) ? s.type[0] : s.type
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {}
      const required = new Set(Array.isArray(s.required) ? s.required as string[] : [])
      for (const [key, value] of Object.entries((s.properties ?? {}) as Record<string, unknown>)) {
        if (required.has(key)) out[key] = example(value, depth + 1)
      }
      return out
    }
    case 'array': {
      const minItems = typeof s.minItems === 'number' ? s.minItems : 1
      return Array.from({ length: Math.min(Math.max(minItems, 1), 3) }, () => example(s.items, depth + 1))
    }
    case 'string': return stringExample(s)
    case 'integer': return typeof s.minimum === 'number' ? Math.ceil(s.minimum) : 1
    case 'number': return typeof s.minimum === 'number' ? s.minimum : 1.5
    case 'boolean': return true
    case 'null': return null
    default: return null
  }
}

function stringExample (s: Schema): string {
  switch (s.format) {
    case 'date-time': return '2026-01-01T00:00:00Z'
    case 'date': return '2026-01-01'
    case 'email': return 'user@example.com'
    case 'uri': case 'url': return 'https://example.com/'
    case 'uuid': return '00000000-0000-4000-8000-000000000000'
  }
  const min = typeof s.minLength === 'number' ? s.minLength : 0
  return 'string'.padEnd(min, 'x').slice(0, typeof s.maxLength === 'number' ? Math.max(s.maxLength, min) : undefined)
}
