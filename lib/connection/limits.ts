// Per-connection limits that protect the server from one abusive client: a token
// bucket for the message rate, and an error budget for protocol errors. Both keep
// two or three numbers per connection and no timer.

export interface RateLimitOptions {
  /** Messages per second, sustained. */
  rate: number
  /** Messages that may arrive at once above the rate. */
  burst: number
  /** Refused messages in a row after which the connection is closed with 4013. */
  closeAfter: number
}

export interface ErrorBudgetOptions {
  /** Protocol errors allowed per window; one more closes the connection with 4501. */
  max: number
  /** Window length in ms. */
  window: number
}

export class TokenBucket {
  #tokens: number
  #at: number
  /** Messages refused since the last one accepted. */
  refused = 0

  constructor (options: RateLimitOptions, now: number) {
    this.#tokens = options.burst
    this.#at = now
  }

  /** 0 when the message may pass; otherwise the ms until one token is back. */
  take (options: RateLimitOptions, now: number): number {
    const tokens = Math.min(options.burst, this.#tokens + ((now - this.#at) * options.rate) / 1000)
    this.#at = now
    if (tokens >= 1) {
      this.#tokens = tokens - 1
      this.refused = 0
      return 0
    }
    this.#tokens = tokens
    this.refused++
    return Math.max(1, Math.ceil(((1 - tokens) * 1000) / options.rate))
  }
}

export class ErrorBudget {
  #start = 0
  #count = 0

  /** Counts one protocol error; true when the budget is spent. */
  spend (options: ErrorBudgetOptions, now: number): boolean {
    if (now - this.#start >= options.window) {
      this.#start = now
      this.#count = 0
    }
    return ++this.#count > options.max
  }
}
