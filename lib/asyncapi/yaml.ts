// YAML for the AsyncAPI document. The document is JSON data (objects, arrays, strings,
// numbers, booleans, null), and JSON data needs only block mappings, block sequences and
// scalars; a YAML library (1.4 MB installed) would be carried by every app for this one
// use. A JSON string in double quotes is a valid YAML double-quoted scalar, so every string
// that a YAML reader could take for something else (a number, a boolean, null, an
// indicator, a comment, a line break) is written that way; the rest are written plain,
// which keeps the document readable.

/** Strings safe to write plain: a letter or underscore first, no `:`, `#` or other indicator. */
const PLAIN = /^[A-Za-z_][A-Za-z0-9_ ./-]*$/
/** Plain words YAML 1.1 or 1.2 readers take for booleans or null. */
const RESERVED = /^(?:true|false|yes|no|on|off|y|n|null)$/i

function scalar (text: string): string {
  return PLAIN.test(text) && !RESERVED.test(text) && !text.endsWith(' ') ? text : JSON.stringify(text)
}

/** A value written on its key's (or dash's) own line, or null when it needs lines of its own. */
function inline (value: unknown): string | null {
  if (value === null) return 'null'
  if (typeof value === 'string') return scalar(value)
  if (typeof value !== 'object') return JSON.stringify(value)
  if (Array.isArray(value)) return value.length === 0 ? '[]' : null
  return Object.keys(value).length === 0 ? '{}' : null
}

/** Writes a non-empty array or object as block lines at an indent. */
function block (value: object, indent: string, out: string[]): void {
  if (Array.isArray(value)) {
    for (const item of value as unknown[]) {
      const text = inline(item)
      if (text !== null) {
        out.push(`${indent}- ${text}`)
      } else if (Array.isArray(item)) {
        out.push(`${indent}-`)
        block(item, `${indent}  `, out)
      } else {
        // A mapping in a sequence starts on the dash's line.
        const lines: string[] = []
        block(item as object, `${indent}  `, lines)
        out.push(`${indent}- ${lines[0].slice(indent.length + 2)}`, ...lines.slice(1))
      }
    }
    return
  }
  for (const [key, item] of Object.entries(value)) {
    const text = inline(item)
    if (text !== null) {
      out.push(`${indent}${scalar(key)}: ${text}`)
    } else {
      out.push(`${indent}${scalar(key)}:`)
      block(item as object, `${indent}  `, out)
    }
  }
}

/** The YAML text of a JSON-serialisable value: what JSON.stringify would keep, read back the same. */
export function toYaml (value: unknown): string {
  const text = JSON.stringify(value)
  if (text === undefined) throw new TypeError('toYaml: the value has no JSON form')
  // Through JSON first, so toJSON, undefined properties and non-finite numbers are
  // treated exactly as in the JSON form of the same document.
  const data = JSON.parse(text) as unknown
  const single = inline(data)
  if (single !== null) return `${single}\n`
  const out: string[] = []
  block(data as object, '', out)
  return `${out.join('\n')}\n`
}
