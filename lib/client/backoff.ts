// Reconnection delays: exponential backoff with full jitter. Attempt n (0 for the
// first retry) waits a uniformly random time between `minDelay` and
// min(maxDelay, initialDelay * factor^n). Full jitter is what spreads a crowd of
// clients that all lost their server at the same instant.
import { ClientUsageError } from './errors.js'

export interface BackoffOptions {
  /** No retry sooner than this many ms. Default 0 (full jitter). */
  minDelay?: number
  /** Upper bound of the first retry's window, in ms. Default 1000. */
  initialDelay?: number
  /** No window grows past this many ms. Default 30000. */
  maxDelay?: number
  /** How much the window grows per failed attempt. Default 2. */
  factor?: number
  /** The random source, a number in [0, 1). Default Math.random. */
  random?: () => number
}

export type ResolvedBackoff = Required<BackoffOptions>

export const backoffDefaults: Readonly<Omit<ResolvedBackoff, 'random'>> = Object.freeze({
  minDelay: 0,
  initialDelay: 1000,
  maxDelay: 30_000,
  factor: 2
})

function nonNegative (name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new ClientUsageError(`createClient: backoff.${name} must be a finite number >= 0`)
  }
  return value
}

export function resolveBackoff (options: BackoffOptions = {}): ResolvedBackoff {
  const minDelay = nonNegative('minDelay', options.minDelay, backoffDefaults.minDelay)
  const maxDelay = nonNegative('maxDelay', options.maxDelay, Math.max(backoffDefaults.maxDelay, minDelay))
  const initialDelay = nonNegative('initialDelay', options.initialDelay, Math.min(backoffDefaults.initialDelay, maxDelay))
  const factor = nonNegative('factor', options.factor, backoffDefaults.factor)
  if (factor < 1) throw new ClientUsageError('createClient: backoff.factor must be >= 1')
  if (maxDelay < minDelay) throw new ClientUsageError('createClient: backoff.maxDelay must be >= backoff.minDelay')
  if (options.random !== undefined && typeof options.random !== 'function') throw new ClientUsageError('createClient: backoff.random must be a function')
  return { minDelay, initialDelay, maxDelay, factor, random: options.random ?? Math.random }
}

/** The delay before retry number `attempt` (0-based). */
export function backoffDelay (attempt: number, options: ResolvedBackoff): number {
  const ceiling = Math.min(options.maxDelay, options.initialDelay * Math.pow(options.factor, attempt))
  const top = Math.max(options.minDelay, ceiling)
  return Math.round(options.minDelay + options.random() * (top - options.minDelay))
}
