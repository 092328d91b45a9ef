// Finds dead peers with one timer for all connections. A connection that has been
// silent for `interval` gets a WebSocket ping; one silent for `interval + timeout`
// is terminated. The timer ticks every quarter of the shorter of the two, so a dead
// peer is gone at most interval + timeout + tick after its last sign of life.
import type { Connection } from './connection.js'
import { CloseCode } from '../protocol/constants.js'

export interface HeartbeatOptions {
  interval: number
  timeout: number
}

export class Heartbeat {
  readonly #interval: number
  readonly #timeout: number
  readonly tick: number
  readonly #connections: () => Iterable<Connection>
  #timer: NodeJS.Timeout | null = null

  constructor (options: HeartbeatOptions, connections: () => Iterable<Connection>) {
    this.#interval = options.interval
    this.#timeout = options.timeout
    this.tick = Math.max(1, Math.floor(Math.min(options.interval, options.timeout) / 4))
    this.#connections = connections
  }

  start (): void {
    if (this.#timer !== null) return
    // Unref'd: a heartbeat never keeps the process alive on its own.
    this.#timer = setInterval(() => this.sweep(Date.now()), this.tick).unref()
  }

  stop (): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }

  sweep (now: number): void {
    for (const connection of this.#connections()) {
      const silent = now - connection.lastSeen
      if (silent >= this.#interval + this.#timeout) {
        connection.log.debug({ silentMs: silent }, 'heartbeat: terminating a silent connection')
        // Best effort 4012 in case the peer still reads, then no more waiting for it.
        connection.close(CloseCode.NO_PONG, 'no pong')
        connection.terminate()
      } else if (silent >= this.#interval && connection.pingedAt <= connection.lastSeen) {
        connection.pingedAt = now
        connection.socket.ping()
      }
    }
  }
}
