// The rules of topic names and patterns, in one place for the server (lib/pubsub/topics.ts)
// and for defineContract (lib/protocol/contract.ts). No imports: contract.ts goes into browser
// bundles.
//
// A topic name is 1 to maxTopicLength characters (UTF-16 code units, as String#length
// counts them), with no control character (U+0000–U+001F, U+007F), split by `/` into
// segments none of which is empty. Any other character is itself: `%` included, so
// `ticker/BTC%2FUSDT` is the symbol `BTC%2FUSDT`, never decoded to `BTC/USDT`. A client
// that percent-encodes gets what it sent.
//
// A pattern is segments too: a literal, a `:param` (one segment, so its value never
// holds `/`) or, as the last segment only, a `*param` that takes the rest of the name,
// slashes included (`ticker/*symbol` matches `ticker/BTC/USDT`: `BTC/USDT`).

export type PatternSegment = { literal: string } | { param: string } | { rest: string }

const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/
// Names that would write to an object's prototype when params are built.
const FORBIDDEN_PARAMS = new Set(['__proto__', 'constructor', 'prototype'])
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/

/** Why a pattern is malformed, or its segments. */
export function parsePattern (pattern: unknown): PatternSegment[] | string {
  if (typeof pattern !== 'string' || pattern.length === 0) return 'a pattern is a non-empty string'
  if (CONTROL.test(pattern)) return 'a pattern holds no control characters'
  const parts = pattern.split('/')
  const names = new Set<string>()
  const segments: PatternSegment[] = []
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]
    if (part.length === 0) return 'empty segment (a pattern neither starts nor ends with "/", nor holds "//")'
    const kind = part[0]
    if (kind !== ':' && kind !== '*') {
      segments.push({ literal: part })
      continue
    }
    const name = part.slice(1)
    if (!PARAM_NAME.test(name)) return `bad parameter "${part}" (a letter or _, then letters, digits or _)`
    if (FORBIDDEN_PARAMS.has(name)) return `"${name}" cannot name a parameter`
    if (names.has(name)) return `parameter "${name}" appears twice`
    if (kind === '*' && i !== parts.length - 1) return `wildcard "${part}" must be the last segment`
    names.add(name)
    segments.push(kind === ':' ? { param: name } : { rest: name })
  }
  return segments
}

/** Why a string is not a well-formed topic name, or null when it is one. */
export function nameProblem (name: unknown, maxLength: number): string | null {
  if (typeof name !== 'string' || name.length === 0) return 'a topic name is a non-empty string'
  if (name.length > maxLength) return `a topic name is at most ${maxLength} characters`
  if (CONTROL.test(name)) return 'a topic name holds no control characters'
  if (name[0] === '/' || name[name.length - 1] === '/' || name.includes('//')) {
    return 'a topic name has no empty segment (it neither starts nor ends with "/", nor holds "//")'
  }
  return null
}
