// Requests and their answers. A request waits in a queue while there is no connection
// (bounded by `maxQueue` and, when set, `queueTimeout`), is written with a fresh id once
// the connection is open, and its `requestTimeout` runs from that write: time spent
// offline never makes it fail. When the connection drops before the answer, an
// idempotent request goes back to the queue, keeping its key and its place, and is sent
// again after the reconnection; any other fails with DISCONNECTED, saying whether it may
// have run (`maybeRan`: the server answers what it ran before the close codes it chooses).
import { ClientUsageError } from './errors.js'
import { fromWire } from './errors.js'
import { MAX_KEY_LENGTH } from './protocol.js'
import type { RequestOptions, ServerFrame } from './types.js'
import { clientError, positiveNumber, type Timer } from './util.js'

export interface RequestHost {
  /** True once the connection is welcomed: requests are written at once. */
  readonly open: boolean
  /** Writes a frame on the connection; throws when JSON cannot hold its data. */
  write: (frame: Record<string, unknown>) => boolean
  /** A timer that follows the client's `keepAlive` (unref'd in Node by default). */
  later: (fn: () => void, ms: number) => Timer
  /** The number of requests waiting for a connection changed. */
  waiting: (count: number) => void
}

export interface RequestLimits {
  requestTimeout: number
  maxQueue: number
  queueTimeout: number | undefined
}

interface Entry {
  /** Order of issue: requests resent after a reconnection keep their place. */
  seq: number
  type: string
  data: unknown
  /** The idempotency key, for requests that may be sent again. */
  key: string | undefined
  timeoutMs: number
  resolve: (value: any) => void
  reject: (error: unknown) => void
  /** The request timeout while in flight, or the queue timeout while waiting. */
  timer: Timer | undefined
  id: number | undefined
  /** The client's own calls (auth, subscribe…): never queued, and resubscribing is the client's job. */
  own: boolean
}

export class Requests {
  readonly #host: RequestHost
  readonly #limits: RequestLimits
  #queue: Entry[] = []
  readonly #inflight = new Map<number, Entry>()
  #nextId = 1
  #seq = 0

  constructor (host: RequestHost, limits: RequestLimits) {
    this.#host = host
    this.#limits = limits
  }

  get queued (): number {
    return this.#queue.length
  }

  /** A request of the application; `idempotent` is the contract route's flag. */
  request (type: string, data: unknown, options: RequestOptions, idempotent: boolean): Promise<unknown> {
    const timeoutMs = options?.timeoutMs === undefined ? this.#limits.requestTimeout : positiveNumber('request: timeoutMs', options.timeoutMs, 0)
    let key: string | undefined
    if (options?.key !== undefined) {
      if (typeof options.key !== 'string' || options.key.length === 0 || options.key.length > MAX_KEY_LENGTH) {
        return Promise.reject(new ClientUsageError(`request: key must be a string of 1 to ${MAX_KEY_LENGTH} characters`))
      }
      key = options.key
    } else if (options?.idempotent ?? idempotent) {
      key = newKey()
    }
    return new Promise((resolve, reject) => {
      const entry: Entry = { seq: this.#seq++, type, data, key, timeoutMs, resolve, reject, timer: undefined, id: undefined, own: false }
      if (this.#host.open) {
        this.#transmit(entry)
      } else if (this.#queue.length >= this.#limits.maxQueue) {
        reject(clientError('QUEUE_FULL', `Not connected and ${this.#limits.maxQueue} requests are already waiting`, { details: { maxQueue: this.#limits.maxQueue } }))
      } else {
        this.#enqueue(entry)
      }
    })
  }

  /**
   * A request of the client's own on the current connection, answered by every server.
   * No answer in time calls `onTimeout` (the connection is broken). The callbacks run
   * synchronously with the answer's arrival, not in a later microtask: a subscribe reply
   * must take effect before the frames that follow it in the same read.
   */
  call (type: string, data: unknown, onReply: (value: unknown) => void, onError: (err: any) => void, onTimeout: () => void): void {
    const timeoutMs = this.#limits.requestTimeout
    const entry: Entry = { seq: this.#seq++, type, data, key: undefined, timeoutMs, resolve: onReply, reject: onError, timer: undefined, id: undefined, own: true }
    this.#transmit(entry)
    entry.timer = this.#host.later(() => {
      if (entry.id === undefined || this.#inflight.get(entry.id) !== entry) return
      this.#inflight.delete(entry.id)
      onError(clientError('TIMEOUT', `No answer to "${type}" within ${timeoutMs} ms`))
      onTimeout()
    }, timeoutMs)
  }

  /** The connection is open: sends what waited, oldest first. */
  flush (): void {
    while (this.#host.open && this.#queue.length > 0) {
      const entry = this.#queue.shift() as Entry
      clearTimeout(entry.timer)
      this.#transmit(entry)
    }
    this.#host.waiting(this.#queue.length)
  }

  /** A `reply` or `error` frame; false when no request of ours awaits it. */
  answer (frame: ServerFrame): boolean {
    const id = frame.id
    const entry = typeof id === 'number' ? this.#inflight.get(id) : undefined
    if (entry === undefined) return false
    this.#inflight.delete(id as number)
    clearTimeout(entry.timer)
    if (frame.type === 'reply') entry.resolve(frame.data)
    else entry.reject(fromWire(frame.error))
    return true
  }

  /**
   * The connection ended before these requests were answered. `final`: the client is
   * closed, and every request, waiting ones included, fails with CLOSED. `maybeRan`:
   * whether a request written and left unanswered may have run (false after a server
   * close that answers every request it ran first: protocol.ts `answeredBeforeClose`).
   */
  lost (code: number, reason: string, final: boolean, maybeRan: boolean): void {
    const inflight = [...this.#inflight.values()]
    this.#inflight.clear()
    const again: Entry[] = []
    for (const entry of inflight) {
      clearTimeout(entry.timer)
      entry.id = undefined
      if (final) {
        entry.reject(clientError('CLOSED', `The client was closed before an answer came; ${ran(maybeRan)}`, { closeCode: code, maybeRan }))
      } else if (entry.key !== undefined) {
        again.push(entry)
      } else {
        entry.reject(clientError('DISCONNECTED', `The connection was lost (${code}) before an answer came; ${ran(maybeRan)}`, { closeCode: code, maybeRan }))
      }
    }
    if (final) {
      const queued = this.#queue
      this.#queue = []
      for (const entry of queued) {
        clearTimeout(entry.timer)
        entry.reject(clientError('CLOSED', `The client is closed (${code}${reason ? ': ' + reason : ''})`, { closeCode: code, maybeRan: false }))
      }
    } else if (again.length > 0) {
      // Resent ones were issued before anything queued meanwhile: merge by issue order.
      for (const entry of again) this.#startQueueTimer(entry)
      this.#queue = [...again, ...this.#queue].sort((a, b) => a.seq - b.seq)
    }
    this.#host.waiting(this.#queue.length)
  }

  #enqueue (entry: Entry): void {
    this.#startQueueTimer(entry)
    this.#queue.push(entry)
    this.#host.waiting(this.#queue.length)
  }

  #startQueueTimer (entry: Entry): void {
    const limit = this.#limits.queueTimeout
    if (limit === undefined) return
    // Left ref'd in Node like a request's timeout: bounded, and awaited by someone.
    entry.timer = setTimeout(() => {
      const at = this.#queue.indexOf(entry)
      if (at < 0) return
      this.#queue.splice(at, 1)
      this.#host.waiting(this.#queue.length)
      entry.reject(clientError('QUEUE_TIMEOUT', `"${entry.type}" waited ${limit} ms for a connection; it was not sent`, { details: { queueTimeout: limit } }))
    }, limit)
  }

  /** Writes the request with a fresh id; its timeout starts now. */
  #transmit (entry: Entry): void {
    const id = this.#nextId++
    entry.id = id
    this.#inflight.set(id, entry)
    const frame: Record<string, unknown> = { type: entry.type, id }
    if (entry.data !== undefined) frame.data = entry.data
    if (entry.key !== undefined) frame.key = entry.key
    if (!entry.own) {
      // The one timer left ref'd in Node: a script awaiting an answer is not ended
      // under it, and the wait is bounded by the timeout.
      entry.timer = setTimeout(() => this.#expire(entry), entry.timeoutMs)
    }
    try {
      this.#host.write(frame)
    } catch (err) {
      // Data that JSON cannot hold (a cycle, a BigInt) fails the request that carries it.
      this.#inflight.delete(id)
      clearTimeout(entry.timer)
      entry.reject(err)
    }
  }

  #expire (entry: Entry): void {
    if (entry.id === undefined || this.#inflight.get(entry.id) !== entry) return
    this.#inflight.delete(entry.id)
    entry.reject(clientError('TIMEOUT', `No answer to "${entry.type}" within ${entry.timeoutMs} ms`, { details: { timeoutMs: entry.timeoutMs } }))
  }
}

function ran (maybeRan: boolean): string {
  return maybeRan ? 'the request may or may not have run' : 'the server did not run it'
}

/** A random idempotency key: a UUID where the platform offers one (secure contexts, Node). */
function newKey (): string {
  const crypto = (globalThis as { crypto?: { randomUUID?: () => string, getRandomValues?: (a: Uint8Array) => Uint8Array } }).crypto
  if (typeof crypto?.randomUUID === 'function') return crypto.randomUUID()
  const bytes = new Uint8Array(16)
  if (typeof crypto?.getRandomValues === 'function') crypto.getRandomValues(bytes)
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256)
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
}
