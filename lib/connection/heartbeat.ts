// Finds dead peers without bursts, on a timer wheel. Each connection has a phase, drawn
// from its random id, and is visited once per half interval at that phase, so that the
// pings of N connections are spread evenly over the interval whatever their arrival:
// twenty thousand that connect in the same second are pinged across the whole window,
// about N / slots per tick, never all at once. A pong does not move the phase, so the
// spread never collapses back into bursts (a scan pinging "everyone silent for the
// interval" pings together again those it pinged together once).
//
// At its phase, a connection silent for at least interval - half is pinged (unless it
// was pinged less than three quarters of an interval ago: an idle peer gets one ping per
// interval). A pinged connection is looked at again when it will have been silent for
// interval + timeout and is terminated then if it has not shown life since the ping:
// never before interval + timeout of silence, nor before `timeout` after its ping, and
// within interval + timeout + two ticks (a slot, and the timer's phase within it) while
// the loop keeps time.
import type { Connection } from './connection.js'
import { CloseCode } from '../protocol/constants.js'

export interface HeartbeatOptions {
  interval: number
  timeout: number
}

/** The longest tick: a visit of the wheel costs little, a coarser one would bunch pings. */
const MAX_TICK = 50
/** Slots one run may take: a late timer catches up, a stalled loop does so over the next ticks. */
const CATCH_UP = 4

export class Heartbeat {
  readonly #interval: number
  readonly #timeout: number
  /** Milliseconds per slot of the wheel: the timer's period and the slack of the dead-peer bound. */
  readonly tick: number
  /** Slots between two visits of a connection at its phase (about half the interval). */
  readonly #period: number
  /** Connections by the slot of their next visit; a slot is its absolute number modulo the length. */
  readonly #wheel: Array<Set<Connection<any>> | undefined>
  /** The next slot to run (absolute: Date.now() / tick). */
  #slot = 0
  #size = 0
  #started = false
  #timer: NodeJS.Timeout | null = null

  constructor (options: HeartbeatOptions) {
    this.#interval = options.interval
    this.#timeout = options.timeout
    this.tick = Math.max(1, Math.min(MAX_TICK, Math.floor(options.interval / 16)))
    this.#period = Math.max(1, Math.floor(options.interval / 2 / this.tick))
    // The farthest visit is a pong check interval + timeout ahead.
    this.#wheel = new Array(Math.ceil((options.interval + options.timeout) / this.tick) + 2)
  }

  /** Connections the heartbeat watches. */
  get size (): number {
    return this.#size
  }

  start (): void {
    this.#started = true
    this.#arm()
  }

  stop (): void {
    this.#started = false
    this.#disarm()
  }

  /** Watches a connection from now on: its first visit is at its phase. */
  add (connection: Connection<any>, now = Date.now()): void {
    if (connection.heartbeatSlot >= 0) return
    if (this.#size++ === 0) this.#slot = Math.floor(now / this.tick)
    this.#schedule(connection, this.#phaseFrom(this.#phaseOf(connection), this.#slot))
    this.#arm()
  }

  /** Stops watching it (it closed). */
  remove (connection: Connection<any>): void {
    const slot = connection.heartbeatSlot
    if (slot < 0) return
    this.#wheel[slot % this.#wheel.length]?.delete(connection)
    connection.heartbeatSlot = -1
    if (--this.#size === 0) this.#disarm()
  }

  /** Runs every slot due by `now`: the timer's work, callable with a time of the caller's. */
  run (now = Date.now()): void {
    const length = this.#wheel.length
    let end = Math.floor(now / this.tick)
    // Behind by more than a turn (the loop was blocked, the process suspended): the missed
    // turns hold nothing a single one does not.
    if (end - this.#slot >= length) this.#slot = end - length + 1
    // Behind at all: a few slots per run, never the whole backlog at once, so that what
    // bunched up during a stall is spread again as the wheel catches up.
    end = Math.min(end, this.#slot + CATCH_UP - 1)
    while (this.#slot <= end) {
      const slot = this.#slot++
      const due = this.#wheel[slot % length]
      if (due === undefined || due.size === 0) continue
      this.#wheel[slot % length] = undefined
      for (const connection of due) {
        connection.heartbeatSlot = -1
        this.#visit(connection, now, slot)
      }
    }
  }

  #visit (connection: Connection<any>, now: number, slot: number): void {
    const silent = now - connection.lastSeen
    const deadline = connection.lastSeen + this.#interval + this.#timeout
    if (connection.pingedAt > connection.lastSeen) {
      // Pinged, and nothing from it since; it always has `timeout` to answer (a stalled
      // loop may have pinged it late, and could not have read its answer yet).
      if (silent >= this.#interval + this.#timeout && now - connection.pingedAt >= this.#timeout) {
        this.#size--
        connection.log.debug({ silentMs: silent }, 'heartbeat: terminating a silent connection')
        // Best effort 4012 in case the peer still reads, then no more waiting for it.
        connection.close(CloseCode.NO_PONG, 'no pong')
        connection.terminate()
        if (this.#size === 0) this.#disarm()
        return
      }
      this.#schedule(connection, Math.ceil(Math.max(deadline, connection.pingedAt + this.#timeout) / this.tick))
      return
    }
    const half = this.#period * this.tick
    // Pings only at the phase: a pong check that found life is no time to ping (they bunch).
    const phase = this.#phaseOf(connection)
    if (slot % this.#period === phase && silent >= this.#interval - half && now - connection.pingedAt >= this.#interval - half / 2) {
      connection.pingedAt = now
      connection.socket.ping()
      // Looked at again `timeout` after the ping, not at the deadline: connections that
      // arrived together share their deadline, their pings do not.
      this.#schedule(connection, Math.ceil((now + this.#timeout) / this.tick))
      return
    }
    this.#schedule(connection, this.#phaseFrom(phase, this.#slot))
  }

  #phaseOf (connection: Connection<any>): number {
    // The id is a random UUID: its first 32 bits give an even spread of phases.
    return Number.parseInt(connection.id.slice(0, 8), 16) % this.#period
  }

  /** The first slot at or after `from` that is at `phase`. */
  #phaseFrom (phase: number, from: number): number {
    return from + ((phase - (from % this.#period)) + this.#period) % this.#period
  }

  #schedule (connection: Connection<any>, slot: number): void {
    // Never behind the slot to run nor a turn ahead: a visit too early only schedules the next.
    const at = Math.min(Math.max(slot, this.#slot), this.#slot + this.#wheel.length - 1)
    const index = at % this.#wheel.length
    const set = this.#wheel[index] ??= new Set()
    set.add(connection)
    connection.heartbeatSlot = at
  }

  #arm (): void {
    if (!this.#started || this.#size === 0 || this.#timer !== null) return
    // Unref'd: a heartbeat never keeps the process alive on its own.
    this.#timer = setInterval(() => this.run(), this.tick).unref()
  }

  #disarm (): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }
}
