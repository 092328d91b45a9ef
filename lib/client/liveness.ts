// Whether the connection is alive. Browsers cannot see the server's ping frames, so the
// client follows the heartbeat of the server's `welcome` itself: after `interval` ms of
// silence it sends `ping`, and silence past `interval + timeout` means the connection is
// dead. A probe (the page visible again, the network back) asks at once and gives the
// server `timeout` ms to show life.
import { unref, type Timer } from './util.js'

export interface LivenessHost {
  ping: () => void
  /** The connection is dead: drop it and reconnect. */
  dead: (reason: string) => void
  later: (fn: () => void, ms: number) => Timer
  readonly keepAlive: boolean
}

export type HeartbeatOption = false | { interval?: number, timeout?: number }

export class Liveness {
  readonly #host: LivenessHost
  readonly #option: HeartbeatOption
  #timer: ReturnType<typeof setInterval> | undefined
  #probe: Timer | undefined
  #timeout = 10_000
  #lastFrameAt = 0
  #pinged = false

  constructor (host: LivenessHost, option: HeartbeatOption) {
    this.#host = host
    this.#option = option
  }

  /** A frame came from the server. */
  seen (): void {
    this.#lastFrameAt = Date.now()
    this.#pinged = false
    // Any frame answers a probe under way.
    clearTimeout(this.#probe)
    this.#probe = undefined
  }

  /** The connection is welcomed with the server's heartbeat. */
  start (announced: { interval: number, timeout: number }): void {
    this.stop()
    const option = this.#option
    this.#timeout = option === false ? announced.timeout : option.timeout ?? announced.timeout
    if (option === false) return
    const interval = option.interval ?? announced.interval
    const timeout = this.#timeout
    this.#lastFrameAt = Date.now()
    this.#pinged = false
    const tick = Math.max(10, Math.floor(Math.min(interval, timeout) / 4))
    this.#timer = setInterval(() => {
      const silent = Date.now() - this.#lastFrameAt
      if (silent > interval + timeout) {
        this.#host.dead('no answer from the server')
      } else if (silent >= interval && !this.#pinged) {
        this.#pinged = true
        this.#host.ping()
      }
    }, tick)
    if (!this.#host.keepAlive) unref(this.#timer)
  }

  /** Sends a `ping` now; no frame within the heartbeat timeout means the connection is dead. */
  probe (): void {
    if (this.#probe !== undefined) return
    this.#host.ping()
    this.#probe = this.#host.later(() => {
      this.#probe = undefined
      this.#host.dead('no answer to a ping')
    }, this.#timeout)
  }

  stop (): void {
    clearInterval(this.#timer)
    clearTimeout(this.#probe)
    this.#timer = undefined
    this.#probe = undefined
  }
}
