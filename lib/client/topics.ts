// The client's subscriptions: each topic's listeners and the last position seen, which
// a reconnection resubscribes from (`since`), so that every publication reaches the
// listeners once and in offset order across connections.
import { ClientUsageError } from './errors.js'
import { RealtimeClientError } from './errors.js'
import { UnsubscribeCode } from './protocol.js'
import type { MessageMeta, ServerFrame, SubscribeInfo, SubscribeOptions, Subscription } from './types.js'
import { clientError, type Timer } from './util.js'
import { rebuild, type DeltaBase } from './delta.js'

type Listener = (message: any, meta: MessageMeta) => void

export interface TopicsHost {
  /** True once the connection is welcomed. */
  readonly open: boolean
  /** The current connection's serial; answers of an older one are ignored. */
  readonly serial: number
  call: (type: string, data: unknown, onReply: (value: unknown) => void, onError?: (err: any) => void) => void
  emit: (event: string, ...args: unknown[]) => void
  later: (fn: () => void, ms: number) => Timer
  /** Delay before resubscribing after a temporary refusal without `retryAfterMs`. */
  readonly retryDelay: number
  /** Sends `auth` again with a fresh token (permission expired). */
  authenticate: () => Promise<void>
  authFailed: (err: unknown, serial: number) => void
  listenerFailed: (err: unknown, event: string) => void
}

interface Sub {
  topic: string
  listeners: Set<Listener>
  /** The last publication seen (or the position subscribed at): what `since` resumes from. */
  position: { offset: number, epoch: string } | null
  /** Confirmed on the current connection: only then are its messages delivered. */
  active: boolean
  /** The connection (serial) its subscribe went out on; 0 when not sent on this one. */
  sentOn: number
  ready: Promise<SubscribeInfo>
  settle: { resolve: (info: SubscribeInfo) => void, reject: (error: unknown) => void } | null
  retry: Timer | undefined
  meta: unknown
  filter: unknown
  /** The server subscribed this connection (`subscribed`): not resubscribed by the client, but recovered. */
  server: boolean
  /** A server subscription restored behind the client's position: it asks for the rest with `since`. */
  recover: boolean
  /** Asked for deltas: the last publication's text, the base of the next delta (null: none yet). */
  delta: { base: DeltaBase | null } | null
}

export class Topics {
  readonly #host: TopicsHost
  readonly #subs = new Map<string, Sub>()

  constructor (host: TopicsHost) {
    this.#host = host
  }

  get list (): Array<{ topic: string, active: boolean, offset: number | undefined, epoch: string | undefined }> {
    return [...this.#subs.values()].map((s) => ({ topic: s.topic, active: s.active, offset: s.position?.offset, epoch: s.position?.epoch }))
  }

  subscribe (topic: string, listener: Listener, options: SubscribeOptions = {}): Subscription {
    if (typeof topic !== 'string' || topic.length === 0) throw new ClientUsageError('subscribe: topic must be a non-empty string')
    if (typeof listener !== 'function') throw new ClientUsageError('subscribe: listener must be a function')
    let sub = this.#subs.get(topic)
    if (sub === undefined) {
      let settle: Sub['settle'] = null
      const ready = new Promise<SubscribeInfo>((resolve, reject) => { settle = { resolve, reject } })
      // Awaiting `ready` is optional: a refusal is also told by the `unsubscribed` event.
      ready.catch(() => {})
      sub = { topic, listeners: new Set(), position: null, active: false, sentOn: 0, ready, settle, retry: undefined, meta: options?.meta, filter: options?.filter, server: false, recover: false, delta: options?.delta === true ? { base: null } : null }
      this.#subs.set(topic, sub)
      this.#send(sub)
    }
    const own = sub
    const entry: Listener = (message, meta) => listener(message, meta)
    own.listeners.add(entry)
    const off = (): void => {
      if (!own.listeners.delete(entry)) return
      if (own.listeners.size === 0 && this.#subs.get(topic) === own) this.#drop(own)
    }
    return Object.assign(off, { topic, ready: own.ready })
  }

  /**
   * A new connection is welcomed: every topic is subscribed again from its position. The
   * server's subscriptions are the server's to restore (its onConnect): those it restored
   * behind our position are recovered from it; the others wait for their `subscribed`.
   */
  resubscribe (): void {
    for (const sub of [...this.#subs.values()]) {
      if (!sub.server || sub.recover) this.#send(sub)
    }
  }

  /** The connection ended: nothing is confirmed any more. */
  reset (): void {
    for (const sub of this.#subs.values()) {
      sub.active = false
      sub.sentOn = 0
      clearTimeout(sub.retry)
      sub.retry = undefined
    }
  }

  #drop (sub: Sub): void {
    this.#subs.delete(sub.topic)
    clearTimeout(sub.retry)
    sub.settle?.reject(clientError('CLOSED', `Unsubscribed from "${sub.topic}" before the server confirmed it`))
    sub.settle = null
    // Frames of a connection are handled in order, so this unsubscribe follows the
    // subscribe even when its reply is still on the way.
    if (this.#host.open && sub.sentOn === this.#host.serial) this.#host.call('unsubscribe', { topic: sub.topic }, () => {})
  }

  #send (sub: Sub): void {
    const host = this.#host
    if (!host.open || sub.sentOn === host.serial) return
    clearTimeout(sub.retry)
    sub.retry = undefined
    const serial = host.serial
    const since = sub.position
    sub.sentOn = serial
    sub.active = false
    const data: Record<string, unknown> = { topic: sub.topic }
    if (since !== null) data.since = { offset: since.offset, epoch: since.epoch }
    if (sub.meta !== undefined) data.meta = sub.meta
    if (sub.filter !== undefined && !sub.server) data.filter = sub.filter
    sub.recover = false
    if (sub.delta !== null) {
      data.delta = 'fossil'
      // A new subscription on the server: its first publication comes whole.
      sub.delta.base = null
    }
    host.call('subscribe', data, (value) => {
      if (this.#subs.get(sub.topic) !== sub || host.serial !== serial) return
      const reply = (value ?? {}) as { offset?: unknown, epoch?: unknown, recovered?: unknown }
      const current = { offset: typeof reply.offset === 'number' ? reply.offset : 0, epoch: typeof reply.epoch === 'string' ? reply.epoch : '' }
      sub.active = true
      if (since === null) {
        sub.position = current
      } else {
        // Recovered: the missed publications follow this reply, each moving the position
        // on. Not recovered: they are lost; carry on from where the topic is now.
        const recovered = reply.recovered === true
        if (!recovered) sub.position = current
        host.emit('recovered', { topic: sub.topic, recovered })
      }
      sub.settle?.resolve({ topic: sub.topic, ...current })
      sub.settle = null
    }, (err) => {
      if (this.#subs.get(sub.topic) !== sub || host.serial !== serial) return
      // Lost with the connection: the next welcome resubscribes it.
      if (err.code === 'DISCONNECTED' || err.code === 'CLOSED' || err.code === 'TIMEOUT') return
      if (err.temporary === true) {
        sub.sentOn = 0
        sub.retry = host.later(() => this.#send(sub), err.retryAfterMs ?? host.retryDelay)
        return
      }
      this.#subs.delete(sub.topic)
      sub.settle?.reject(err)
      sub.settle = null
      host.emit('unsubscribed', { topic: sub.topic, code: UnsubscribeCode.SERVER, reason: err.message, error: err })
    })
  }

  /** The frames about topics: `message`, `subscribed`, `unsubscribed`, and `presence` counts. */
  onFrame (frame: ServerFrame): void {
    if (frame.type === 'message') this.onMessage(frame)
    else if (frame.type === 'unsubscribed') this.onUnsubscribed(frame)
    else if (frame.type === 'subscribed') this.#onSubscribed(frame.data as Record<string, unknown> | undefined)
    else if (typeof frame.topic === 'string' && typeof frame.count === 'number') this.#host.emit('presence', { topic: frame.topic, count: frame.count })
  }

  /** The server subscribed this connection: a new topic, or one it restored after a reconnection. */
  #onSubscribed (data: Record<string, unknown> | undefined): void {
    const { topic, offset, epoch } = data ?? {}
    if (typeof topic !== 'string' || typeof offset !== 'number' || typeof epoch !== 'string') return
    const host = this.#host
    let sub = this.#subs.get(topic)
    if (sub === undefined) {
      const info = { topic, offset, epoch }
      sub = { topic, listeners: new Set(), position: null, active: false, sentOn: 0, ready: Promise.resolve(info), settle: null, retry: undefined, meta: undefined, filter: undefined, server: true, recover: false, delta: null }
      this.#subs.set(topic, sub)
    }
    sub.server = true
    const seen = sub.position
    if (seen !== null && (seen.epoch !== epoch || seen.offset < offset)) {
      // Restored behind what we saw last: ask for the rest, in place, from our position
      // (at once when welcomed, or with the welcome); until the reply, messages wait.
      sub.active = false
      sub.sentOn = 0
      sub.recover = true
      this.#send(sub)
    } else {
      if (seen === null || seen.epoch !== epoch) sub.position = { offset, epoch }
      sub.active = true
      sub.sentOn = host.serial
      sub.settle?.resolve({ topic, offset, epoch })
      sub.settle = null
    }
    host.emit('subscribed', { topic, offset, epoch })
  }

  onMessage (frame: ServerFrame): void {
    const topic = frame.topic
    const sub = typeof topic === 'string' ? this.#subs.get(topic) : undefined
    if (sub === undefined || !sub.active) return
    let meta: MessageMeta
    if (frame.ephemeral === true) {
      meta = { topic: sub.topic, offset: undefined, epoch: undefined, ephemeral: true }
    } else {
      const { offset, epoch } = frame
      if (typeof offset !== 'number' || typeof epoch !== 'string') return
      if (typeof frame.delta === 'boolean') {
        const rebuilt = sub.delta === null || typeof frame.data !== 'string' ? null : rebuild(sub.delta.base, { offset, epoch, delta: frame.delta, data: frame.data })
        if (rebuilt === null) return this.#resync(sub)
        ;(sub.delta as { base: DeltaBase | null }).base = rebuilt.base
        frame = { ...frame, data: rebuilt.data }
      }
      const seen = sub.position
      // Never twice, never backwards: a replay overlapping live delivery is dropped here.
      if (seen !== null && seen.epoch === epoch && offset <= seen.offset) return
      sub.position = { offset, epoch }
      meta = { topic: sub.topic, offset, epoch, ephemeral: false }
    }
    for (const listener of [...sub.listeners]) {
      try {
        listener(frame.data, meta)
      } catch (err) {
        this.#host.listenerFailed(err, `message on ${sub.topic}`)
      }
    }
  }

  /**
   * A delta that cannot be applied (it should not happen: the server sends one only on top
   * of the publication it sent last): never a wrong object; the subscription starts again
   * from the last publication handed over, whole first.
   */
  #resync (sub: Sub): void {
    if (!sub.active || !this.#host.open) return
    sub.active = false
    sub.sentOn = 0
    // Frames are run in order: the subscribe follows this unsubscribe.
    this.#host.call('unsubscribe', { topic: sub.topic }, () => {}, () => {})
    this.#send(sub)
  }

  onUnsubscribed (frame: ServerFrame): void {
    const topic = frame.topic
    const sub = typeof topic === 'string' ? this.#subs.get(topic) : undefined
    if (sub === undefined) return
    sub.active = false
    sub.sentOn = 0
    const code = typeof frame.code === 'number' ? frame.code : UnsubscribeCode.SERVER
    const reason = typeof frame.reason === 'string' ? frame.reason : ''
    if (code === UnsubscribeCode.INSUFFICIENT_STATE) {
      this.#send(sub)
    } else if (code === UnsubscribeCode.PERMISSION_EXPIRED) {
      const serial = this.#host.serial
      this.#host.authenticate().then(() => {
        if (this.#host.serial === serial && this.#subs.get(sub.topic) === sub) this.#send(sub)
      }, (err: unknown) => this.#host.authFailed(err, serial))
    } else {
      this.#subs.delete(sub.topic)
      clearTimeout(sub.retry)
      sub.settle?.reject(new RealtimeClientError('FORBIDDEN', reason || 'Unsubscribed by the server'))
      sub.settle = null
      this.#host.emit('unsubscribed', { topic: sub.topic, code, reason })
    }
  }
}
