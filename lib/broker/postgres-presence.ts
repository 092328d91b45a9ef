// Presence on PostgreSQL: each member is a row with the node that added it; each node
// beats every presenceTtl / 3 (its row in the nodes table), and any live node sweeps the
// nodes that stopped beating, with their members. A DELETE takes the rows it removes, so
// two sweeping nodes never both announce one leave.
import { createHash } from 'node:crypto'
import { errorCodes } from '../protocol/errors.js'
import type { IdempotencyClaim, IdempotencyScope, PresenceMember } from './types.js'
import type { Statements } from './postgres-sql.js'

/** Runs a statement on the broker's pool; rows back. */
export type Query = (sql: string, params: unknown[]) => Promise<Array<Record<string, any>>>

/** The frame of a topic's message (postgres-sql.ts). */
export function topicFrame (topic: string, message: string): string {
  return `t${topic.length}:${topic}${message}`
}

export class PostgresPresence {
  readonly #sql: Statements
  readonly #query: Query
  readonly #node: string
  readonly #ttl: number
  readonly #clock: () => number | null

  constructor (sql: Statements, query: Query, node: string, ttl: number, clock: () => number | null) {
    this.#sql = sql
    this.#query = query
    this.#node = node
    this.#ttl = ttl
    this.#clock = clock
  }

  async join (topic: string, member: PresenceMember): Promise<void> {
    if (member.connectionId.includes('\n')) throw new errorCodes.FST_REALTIME_INVALID_DATA('a presence member', 'its connection id cannot contain a line break')
    await this.#query(this.#sql.join, [topic, member.connectionId, this.#node, member.data, topic.length, this.#ttl, this.#clock()])
  }

  async leave (topic: string, connectionId: string): Promise<void> {
    await this.#query(this.#sql.leave, [topic, connectionId, topic.length])
  }

  async members (topic: string): Promise<PresenceMember[]> {
    const rows = await this.#query(this.#sql.members, [topic, this.#clock()])
    return rows.map((r) => ({ connectionId: r.connection_id as string, data: r.data as string }))
  }

  /** The heartbeat, then the sweep of nodes that stopped beating. */
  async upkeep (): Promise<void> {
    await this.#query(this.#sql.beat, [this.#node, this.#ttl, this.#clock()])
    await this.#announce(await this.#query(this.#sql.sweep, [this.#clock()]))
  }

  /** This node leaves, with its members (close). */
  async close (): Promise<void> {
    await this.#announce(await this.#query(this.#sql.forget, [this.#node]))
  }

  async #announce (rows: Array<Record<string, any>>): Promise<void> {
    for (const r of rows) {
      await this.#query(this.#sql.notify, [topicFrame(r.topic, `l\n${String(r.connection_id)}\n${String(r.data)}`)])
    }
  }
}

/** Idempotency records in PostgreSQL: one row per (user, route, key) digest, expiry by the broker's clock. */
export class PostgresIdempotency {
  readonly #sql: Statements
  readonly #query: Query
  readonly #clock: () => number | null

  constructor (sql: Statements, query: Query, clock: () => number | null) {
    this.#sql = sql
    this.#query = query
    this.#clock = clock
  }

  async claim (scope: IdempotencyScope, token: string, pendingMs: number): Promise<IdempotencyClaim> {
    const id = digest(scope)
    // A claim that finds the row gone between its two statements (expired and swept) asks again.
    for (let attempt = 0; attempt < 3; attempt++) {
      const claimed = await this.#query(this.#sql.claim, [id, token, Math.max(1, Math.ceil(pendingMs)), this.#clock()])
      if (claimed.length > 0) return { status: 'claimed' }
      const [held] = await this.#query(this.#sql.held, [id, this.#clock()])
      if (held === undefined) continue
      return held.token === null ? { status: 'done', answer: held.answer as string } : { status: 'pending' }
    }
    return { status: 'pending' }
  }

  async settle (scope: IdempotencyScope, token: string, answer: string | null, ttlMs: number): Promise<void> {
    const id = digest(scope)
    if (answer === null) await this.#query(this.#sql.drop, [id, token, this.#clock()])
    else await this.#query(this.#sql.settle, [id, token, answer, Math.max(1, Math.ceil(ttlMs)), this.#clock()])
  }
}

/** A digest of the scope: a user id or key holding any character can neither collide with another scope nor grow the key. */
function digest (scope: IdempotencyScope): string {
  return createHash('sha256').update(JSON.stringify([scope.userId, scope.route, scope.key])).digest('base64url')
}
