// The hot side of the metrics: what an event costs when `metrics` is on. prom-client
// hashes a metric's labels on every inc() and observe() (about 0.2 µs and 0.9 µs here),
// paid on every frame; these keep plain numbers per label value instead and hand them
// to the registry when Prometheus scrapes. Label values are bounded by the app's
// declarations (see metrics.ts), so these maps are too.

import type { Counter, Registry } from 'prom-client'

/** Counts per label value, added to a prom-client counter at scrape (its `collect`). */
export class PendingCounts {
  readonly #pending = new Map<string, number>()

  add (value: string, n = 1): void {
    this.#pending.set(value, (this.#pending.get(value) ?? 0) + n)
  }

  /** Moves what was counted since the last scrape into the counter. */
  flush (counter: Counter, label: string | undefined): void {
    for (const [value, n] of this.#pending) {
      if (label === undefined) counter.inc(n)
      else counter.inc({ [label]: value }, n)
    }
    this.#pending.clear()
  }
}

interface Series {
  counts: number[]
  sum: number
  count: number
}

/**
 * A Prometheus histogram with at most one label, registered in a prom-client Registry
 * as a custom metric (the registry only needs `name`, `help`, `type` and `get()`).
 */
export class LightHistogram {
  readonly name: string
  readonly help: string
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  readonly #label: string | undefined
  readonly #bounds: number[]
  readonly #series = new Map<string, Series>()

  constructor (registry: Registry, name: string, help: string, bounds: number[], label?: string) {
    this.name = name
    this.help = help
    this.#bounds = bounds
    this.#label = label
    registry.registerMetric(this as never)
  }

  observe (labelValue: string, value: number): void {
    let series = this.#series.get(labelValue)
    if (series === undefined) this.#series.set(labelValue, series = { counts: new Array<number>(this.#bounds.length).fill(0), sum: 0, count: 0 })
    const bounds = this.#bounds
    let i = 0
    while (i < bounds.length && value > bounds[i]) i++
    if (i < bounds.length) series.counts[i]++
    series.sum += value
    series.count++
  }

  reset (): void {
    this.#series.clear()
  }

  /** In prom-client's shape: cumulative `_bucket` lines, then `+Inf`, `_sum` and `_count`, per label value. */
  async get (): Promise<{ name: string, help: string, type: string, aggregator: string, values: Array<{ value: number, labels: Record<string, string | number>, metricName: string }> }> {
    const values: Array<{ value: number, labels: Record<string, string | number>, metricName: string }> = []
    for (const [labelValue, series] of this.#series) {
      const labels: Record<string, string> = this.#label === undefined ? {} : { [this.#label]: labelValue }
      let cumulative = 0
      this.#bounds.forEach((le, i) => {
        cumulative += series.counts[i]
        values.push({ value: cumulative, labels: { ...labels, le }, metricName: `${this.name}_bucket` })
      })
      values.push({ value: series.count, labels: { ...labels, le: '+Inf' }, metricName: `${this.name}_bucket` })
      values.push({ value: series.sum, labels, metricName: `${this.name}_sum` })
      values.push({ value: series.count, labels, metricName: `${this.name}_count` })
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }
}
