// Fossil deltas between two serialised publications (the algorithm Centrifugo uses for its
// delta compression; `fossil-delta` on npm). The delta is taken between the JSON texts of
// the data, as the topic's schema serialised them, so it is computed once per publication
// whatever the subscribers' encodings, and a client rebuilds exactly the text it would have
// got whole. fossil-delta is required on the first delta, never at import.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

interface Fossil {
  create: (origin: ArrayLike<number>, target: ArrayLike<number>) => number[]
}
let fossil: Fossil | undefined

/**
 * The delta from `previous` to `next`, one character per byte (a "binary string", which
 * JSON and MessagePack carry as a string); null when it would not be smaller than `next`.
 */
export function fossilDelta (previous: string, next: string): string | null {
  fossil ??= require('fossil-delta') as Fossil
  const target = Buffer.from(next)
  const delta = fossil.create(Buffer.from(previous), target)
  if (delta.length >= target.length) return null
  return Buffer.from(delta).toString('latin1')
}
