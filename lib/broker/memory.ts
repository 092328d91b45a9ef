// The in-memory broker: one process, offsets and history per topic, delivery in the
// same tick as the publish.
//
// A stream exists only once something was published to its topic: reading the
// position of a topic never published to costs nothing, so a client subscribing to
// thousands of names cannot grow the broker. Every stream of one broker shares its
// epoch, so a client that saw an empty topic (offset 0) recovers its first
// publications; a new broker (a restart) has a new epoch.
import { randomBytes } from 'node:crypto'
import type { Broker, BrokerCommand, CommandListener, HistoryOptions, IdempotencyClaim, IdempotencyScope, PresenceListener, PresenceMember, Publication, PublicationListener, PublishOptions, RecoveryResult, ResyncListener, StreamPosition } from './types.js'

interface Entry {
  publication: Publication
  at: number
}

/** An idempotency record: a run under way (its token) or the answer it gave. */
interface Remembered {
  token: string | null
  answer: string
  expires: number
}

interface Stream {
  offset: number
  epoch: string
  entries: Entry[]
  ttl: number
}

export interface MemoryBrokerOptions {
  /** The clock, for tests of history expiry. */
  now?: () => number
}

export class MemoryBroker implements Broker {
  readonly kind = 'memory'
  readonly #streams = new Map<string, Stream>()
  readonly #now: () => number
  #epoch = newEpoch()
  #listener: PublicationListener | null = null
  #presenceListener: PresenceListener | null = null
  #commandListener: CommandListener | null = null
  readonly #presence = new Map<string, Map<string, PresenceMember>>()
  readonly #remembered = new Map<string, Remembered>()
  #sweptAt = 0

  constructor (options: MemoryBrokerOptions = {}) {
    this.#now = options.now ?? Date.now
  }

  // One process never loses track of its own streams, so it never asks for a resync.
  start (listener: PublicationListener, presence?: PresenceListener, command?: CommandListener, _resync?: ResyncListener): void {
    this.#listener = listener
    this.#presenceListener = presence ?? null
    this.#commandListener = command ?? null
  }

  async command (command: BrokerCommand): Promise<void> {
    this.#commandListener?.(command)
  }

  async join (topic: string, member: PresenceMember): Promise<void> {
    let members = this.#presence.get(topic)
    if (members === undefined) this.#presence.set(topic, members = new Map())
    members.set(member.connectionId, member)
    this.#presenceListener?.({ topic, kind: 'join', member })
  }

  async leave (topic: string, connectionId: string): Promise<void> {
    const members = this.#presence.get(topic)
    const member = members?.get(connectionId)
    if (members === undefined || member === undefined) return
    members.delete(connectionId)
    if (members.size === 0) this.#presence.delete(topic)
    this.#presenceListener?.({ topic, kind: 'leave', member })
  }

  async members (topic: string): Promise<PresenceMember[]> {
    return [...(this.#presence.get(topic)?.values() ?? [])]
  }

  /** The topic's stream, or a view of the empty one it would start as. */
  #stream (topic: string): Stream {
    return this.#streams.get(topic) ?? { offset: 0, epoch: this.#epoch, entries: [], ttl: 0 }
  }

  async publish (topic: string, data: string, options: PublishOptions = {}): Promise<StreamPosition> {
    const ephemeral = options.ephemeral === true
    let stream = this.#streams.get(topic)
    if (stream === undefined) {
      stream = this.#stream(topic)
      if (!ephemeral) this.#streams.set(topic, stream)
    }
    const offset = ephemeral ? 0 : ++stream.offset
    const publication: Publication = { topic, offset, epoch: stream.epoch, data }
    if (options.except !== undefined) publication.except = options.except
    if (!ephemeral && options.history !== undefined) this.#record(stream, publication, options.history)
    this.#listener?.(publication)
    return { offset: stream.offset, epoch: stream.epoch }
  }

  #record (stream: Stream, publication: Publication, history: HistoryOptions): void {
    if (history.size <= 0) return
    stream.ttl = history.ttl
    stream.entries.push({ publication, at: this.#now() })
    if (stream.entries.length > history.size) stream.entries.splice(0, stream.entries.length - history.size)
    // Expired entries go as new ones come, not only when someone reads them.
    this.#trim(stream)
  }

  #trim (stream: Stream): void {
    if (stream.ttl <= 0 || stream.entries.length === 0) return
    const oldest = this.#now() - stream.ttl
    let drop = 0
    while (drop < stream.entries.length && stream.entries[drop].at <= oldest) drop++
    if (drop > 0) stream.entries.splice(0, drop)
  }

  async position (topic: string): Promise<StreamPosition> {
    const stream = this.#stream(topic)
    return { offset: stream.offset, epoch: stream.epoch }
  }

  async recover (topic: string, since: StreamPosition, limit: number): Promise<RecoveryResult> {
    const stream = this.#stream(topic)
    this.#trim(stream)
    const position = { offset: stream.offset, epoch: stream.epoch }
    if (since.epoch !== stream.epoch) {
      // Another epoch (a previous broker, before a restart): not recovered, but this
      // stream is replayed from its first publication when it is all still held.
      return { position, recovered: false, publications: this.#after(stream, 0, limit) ?? [] }
    }
    const publications = since.offset > stream.offset ? null : this.#after(stream, since.offset, limit)
    return publications === null ? { position, recovered: false, publications: [] } : { position, recovered: true, publications }
  }

  /** Every publication of the stream after `offset`, or null when they are not all held or more than `limit`. */
  #after (stream: Stream, offset: number, limit: number): Publication[] | null {
    const missed = stream.offset - offset
    if (missed === 0) return []
    if (missed > limit) return null
    const entries = stream.entries
    // Entries hold consecutive offsets, so the first needed one is found by arithmetic.
    const first = entries.length === 0 ? Infinity : entries[0].publication.offset
    if (first > offset + 1) return null
    return entries.slice(offset + 1 - first).map((e) => e.publication)
  }

  async history (topic: string, limit: number): Promise<{ position: StreamPosition, publications: Publication[] }> {
    const stream = this.#stream(topic)
    this.#trim(stream)
    const entries = limit > 0 ? stream.entries.slice(-limit) : []
    return { position: { offset: stream.offset, epoch: stream.epoch }, publications: entries.map((e) => e.publication) }
  }

  async claimIdempotent (scope: IdempotencyScope, token: string, pendingMs: number): Promise<IdempotencyClaim> {
    const id = idempotencyId(scope)
    const now = this.#now()
    this.#sweep(now)
    const live = this.#remembered.get(id)
    const found = live !== undefined && live.expires > now ? live : undefined
    if (found === undefined || found.token === token) {
      this.#remembered.set(id, { token, answer: '', expires: now + pendingMs })
      return { status: 'claimed' }
    }
    return found.token === null ? { status: 'done', answer: found.answer } : { status: 'pending' }
  }

  async settleIdempotent (scope: IdempotencyScope, token: string, answer: string | null, ttlMs: number): Promise<void> {
    const id = idempotencyId(scope)
    const found = this.#remembered.get(id)
    if (found === undefined || found.token !== token || found.expires <= this.#now()) return
    if (answer === null) this.#remembered.delete(id)
    else this.#remembered.set(id, { token: null, answer, expires: this.#now() + ttlMs })
  }

  /** Drops expired records, at most once a second, so memory follows the ttl without a timer. */
  #sweep (now: number): void {
    if (now - this.#sweptAt < 1000) return
    this.#sweptAt = now
    for (const [id, record] of this.#remembered) {
      if (record.expires <= now) this.#remembered.delete(id)
    }
  }

  subscribe (): void {}
  unsubscribe (): void {}

  close (): void {
    this.#listener = null
    this.#presenceListener = null
    this.#commandListener = null
    this.#streams.clear()
    this.#presence.clear()
    this.#remembered.clear()
    this.#epoch = newEpoch()
  }
}

function idempotencyId (scope: IdempotencyScope): string {
  return JSON.stringify([scope.userId, scope.route, scope.key])
}

function newEpoch (): string {
  return randomBytes(6).toString('base64url')
}
