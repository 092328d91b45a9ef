// Filtered subscriptions: a subscribe may carry a filter over the topic's tags, and a
// subscriber is sent only the publications whose tags match it. The grammar:
//
//   { "tag": name, "eq": value }            the tag equals the value
//   { "tag": name, "in": [value, …] }       the tag equals one of the values
//   { "and": [filter, …] }                  every filter matches
//   { "or": [filter, …] }                   some filter matches
//
// A value is a string or a number, of the type the topic declares for that tag. A
// filter's size (its nodes plus the values of its `in` lists) and depth are bounded by
// the `filters` options, and so is the number of distinct filters per topic on a node:
// each distinct filter is judged once per publication (its result kept on the filter for
// that delivery), not once per subscriber, however many subscriptions share it.
import type { Delivery, SubscriptionFilter } from '../connection/subscriptions.js'
import { wireErrors } from '../protocol/errors.js'
import type { CompiledTags, Tags } from './tags.js'

export interface FilterLimits {
  /** Nodes of a filter plus the values of its `in` lists. */
  maxSize: number
  /** Levels of `and`/`or`, a lone comparison being 1. */
  maxDepth: number
  /** Distinct filters in use on one topic on one node. */
  maxPerTopic: number
}

type Test = (tags: Tags) => boolean

/** A checked filter: its canonical text (what makes two filters the same) and its test. */
export interface CompiledFilter {
  key: string
  test: Test
}

/**
 * Checks a filter against the topic's tags and the limits, and compiles it. Throws
 * VALIDATION_FAILED (details at `/filter…`) or LIMIT_EXCEEDED.
 */
export function compileFilter (raw: unknown, tags: CompiledTags | null, limits: FilterLimits): CompiledFilter {
  if (tags === null) throw wireErrors.validation([{ path: '/filter', message: 'this topic declares no tags to filter on' }])
  const budget = { left: limits.maxSize }
  const node = parse(raw, '/filter', 1, tags, limits, budget)
  return { key: JSON.stringify(node.canonical), test: node.test }
}

interface Parsed {
  canonical: unknown
  test: Test
}

function parse (raw: unknown, path: string, depth: number, tags: CompiledTags, limits: FilterLimits, budget: { left: number }): Parsed {
  if (depth > limits.maxDepth) throw wireErrors.limit(`A filter nests at most ${limits.maxDepth} levels`)
  if (--budget.left < 0) throw wireErrors.limit(`A filter has at most ${limits.maxSize} nodes and values`)
  const invalid = (message: string, at = path): never => { throw wireErrors.validation([{ path: at, message }]) }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return invalid('must be an object')
  const keys = Object.keys(raw)
  const node = raw as Record<string, unknown>
  if (keys.length === 1 && (keys[0] === 'and' || keys[0] === 'or')) {
    const op = keys[0]
    const list = node[op]
    if (!Array.isArray(list) || list.length === 0) return invalid('must be a non-empty array', `${path}/${op}`)
    const parts = list.map((item, i) => parse(item, `${path}/${op}/${i}`, depth + 1, tags, limits, budget))
    const tests = parts.map((p) => p.test)
    const test: Test = op === 'and' ? (t) => tests.every((f) => f(t)) : (t) => tests.some((f) => f(t))
    return { canonical: { [op]: parts.map((p) => p.canonical) }, test }
  }
  if (keys.length !== 2 || typeof node.tag !== 'string' || !('eq' in node || 'in' in node)) {
    return invalid('must be {"tag","eq"}, {"tag","in"}, {"and":[…]} or {"or":[…]}')
  }
  const tag = node.tag
  const type = Object.hasOwn(tags.types, tag) ? tags.types[tag] : undefined
  if (type === undefined) return invalid(`the topic declares no tag "${tag.slice(0, 64)}"`, `${path}/tag`)
  const checkValue = (value: unknown, at: string): string | number => {
    if (type === 'string' ? typeof value !== 'string' : typeof value !== 'number' || !Number.isFinite(value)) return invalid(`must be a ${type}`, at)
    return value as string | number
  }
  if ('eq' in node) {
    const value = checkValue(node.eq, `${path}/eq`)
    return { canonical: { tag, eq: value }, test: (t) => t[tag] === value }
  }
  const list = node.in
  if (!Array.isArray(list) || list.length === 0) return invalid('must be a non-empty array', `${path}/in`)
  budget.left -= list.length
  if (budget.left < 0) throw wireErrors.limit(`A filter has at most ${limits.maxSize} nodes and values`)
  const values = new Set(list.map((v, i) => checkValue(v, `${path}/in/${i}`)))
  // Sorted, so that the same set of values is the same filter whatever its order.
  const canonical = [...values].sort((a, b) => (String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0))
  return { canonical: { tag, in: canonical }, test: (t) => values.has(t[tag]) }
}

/**
 * One distinct filter in use on a topic, shared by the subscriptions that carry it. Its
 * result is kept for the delivery last judged, so that a publication is judged once
 * per filter, however many subscribers share it.
 */
class SharedFilter implements SubscriptionFilter {
  refs = 0
  #last: Delivery | null = null
  #result = false
  /** The live publications judged one after another: every offset in (from, to] of epoch. */
  #epoch = ''
  #from = 0
  #to = 0

  constructor (readonly key: string, readonly test: Test) {}

  matches (delivery: Delivery): boolean {
    if (this.#last !== delivery) {
      this.#last = delivery
      this.#result = this.test(delivery.tags ?? {})
    }
    return this.#result
  }

  judge (delivery: Delivery): boolean {
    const offset = delivery.offset
    if (offset > 0 && this.#last !== delivery) {
      if (delivery.epoch === this.#epoch && offset === this.#to + 1) {
        this.#to = offset
      } else {
        // A new epoch, or a publication this node never saw: the run starts again here.
        this.#epoch = delivery.epoch
        this.#from = offset - 1
        this.#to = offset
      }
    }
    return this.matches(delivery)
  }

  skips (delivery: Delivery, offset: number): boolean {
    // Those in between were judged (the run covers them) and none matched: a match would
    // have reached the subscriber and moved it on.
    return delivery.epoch === this.#epoch && this.#from <= offset && delivery.offset <= this.#to
  }
}

/** The distinct filters in use on this node, per topic, with the cap on how many. */
export class FilterRegistry {
  readonly #byTopic = new Map<string, Map<string, SharedFilter>>()
  readonly #maxPerTopic: number

  constructor (maxPerTopic: number) {
    this.#maxPerTopic = maxPerTopic
  }

  /** The shared filter for this subscription; LIMIT_EXCEEDED when the topic has too many distinct ones. */
  acquire (topic: string, compiled: CompiledFilter): SubscriptionFilter {
    let filters = this.#byTopic.get(topic)
    if (filters === undefined) this.#byTopic.set(topic, filters = new Map())
    let shared = filters.get(compiled.key)
    if (shared === undefined) {
      if (filters.size >= this.#maxPerTopic) throw wireErrors.limit(`At most ${this.#maxPerTopic} distinct filters per topic`)
      filters.set(compiled.key, shared = new SharedFilter(compiled.key, compiled.test))
    }
    shared.refs++
    return shared
  }

  release (topic: string, filter: SubscriptionFilter): void {
    const filters = this.#byTopic.get(topic)
    const shared = filters?.get((filter as SharedFilter).key)
    if (filters === undefined || shared !== filter) return
    if (--shared.refs === 0) {
      filters.delete(shared.key)
      if (filters.size === 0) this.#byTopic.delete(topic)
    }
  }

  /** Distinct filters in use on a topic on this node. */
  count (topic: string): number {
    return this.#byTopic.get(topic)?.size ?? 0
  }
}
