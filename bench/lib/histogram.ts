// A latency histogram with buckets 1% wide, so that millions of samples take a few
// kilobytes, can be merged across processes and still give percentiles to within 1%.
// Values are recorded in microseconds.

const GROWTH = Math.log(1.01)
/** 1.01^2100 µs is over an hour: anything larger lands in the last bucket. */
const BUCKETS = 2100

export type SparseHistogram = { count: number, sum: number, min: number, max: number, negative: number, buckets: Array<[number, number]> }

export class Histogram {
  readonly counts = new Float64Array(BUCKETS)
  count = 0
  sum = 0
  min = Infinity
  max = 0
  /** Samples below zero (clock disagreement between processes); recorded as 0. */
  negative = 0

  record (micros: number): void {
    let v = micros
    if (!(v > 0)) {
      if (v < 0) this.negative++
      v = 0
    }
    const index = v <= 1 ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(v) / GROWTH))
    this.counts[index]++
    this.count++
    this.sum += v
    if (v < this.min) this.min = v
    if (v > this.max) this.max = v
  }

  /** The value (µs) below which `p` percent of the samples fall. */
  percentile (p: number): number {
    if (this.count === 0) return NaN
    const rank = Math.max(1, Math.ceil((p / 100) * this.count))
    let seen = 0
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]
      if (seen >= rank) return Math.min(this.max, Math.max(this.min, i === 0 ? 1 : Math.pow(1.01, i)))
    }
    return this.max
  }

  get mean (): number {
    return this.count === 0 ? NaN : this.sum / this.count
  }

  toJSON (): SparseHistogram {
    const buckets: Array<[number, number]> = []
    for (let i = 0; i < BUCKETS; i++) if (this.counts[i] !== 0) buckets.push([i, this.counts[i]])
    return { count: this.count, sum: this.sum, min: this.min, max: this.max, negative: this.negative, buckets }
  }

  merge (other: SparseHistogram): this {
    for (const [i, n] of other.buckets) this.counts[i] += n
    this.count += other.count
    this.sum += other.sum
    this.negative += other.negative
    if (other.count > 0) {
      this.min = Math.min(this.min, other.min)
      this.max = Math.max(this.max, other.max)
    }
    return this
  }

  /** p50 / p99 / max in milliseconds, rounded for reports. */
  summaryMs (): { samples: number, p50: number, p99: number, max: number, mean: number } {
    const ms = (us: number) => Math.round(us) / 1000
    return { samples: this.count, p50: ms(this.percentile(50)), p99: ms(this.percentile(99)), max: ms(this.max), mean: ms(this.mean) }
  }
}

/** Exact percentile of a small array of numbers. */
export function percentileOf (values: number[], p: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length))
  return sorted[rank - 1]
}
