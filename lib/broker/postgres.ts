// The PostgreSQL broker: server processes that share one database share each topic's
// offsets, epoch, history and presence, and every publication reaches every node.
//
// - A publication is one statement (postgres-sql.ts): the topic's offset taken under
//   its row lock, the history row written and trimmed, and a NOTIFY, all in one
//   transaction: the statement's own, or the application's (`transaction`), so a
//   publication commits or rolls back with the app's data and is sent at COMMIT.
// - Each node LISTENs on one connection of its own (postgres-listen.ts) and hands what
//   arrives to the same feeds as the Redis broker (redis-feeds.ts): offsets watched per
//   topic, a skipped one filled from the history, a reconnection caught up from the
//   tables, and the subscribers told when that is impossible.
// - Presence and idempotency are postgres-presence.ts.
import { createHash, randomBytes } from 'node:crypto'
import { Pool, type ClientBase, type PoolClient } from 'pg'
import { errorCodes } from '../protocol/errors.js'
import type { Broker, BrokerCommand, CommandListener, IdempotencyClaim, IdempotencyScope, PresenceListener, PresenceMember, Publication, PublicationListener, PublishOptions, RecoveryResult, ResyncListener, StreamPosition } from './types.js'
import { checkPostgresOptions, type PostgresBrokerOptions } from './postgres-options.js'
import { PostgresNames, migrationSql, statements, type Statements } from './postgres-sql.js'
import { NotificationFeed } from './postgres-listen.js'
import { PostgresIdempotency, PostgresPresence } from './postgres-presence.js'
import { clientOf, inBlock, wrap } from './postgres-transaction.js'
import { TopicFeeds } from './redis-feeds.js'
import { publicationOf } from './redis-messages.js'
import type { RedisBrokerLog } from './redis-options.js'

export type { PostgresBrokerOptions }

/** The feeds' name for the command channel: a NUL, which no PostgreSQL text (so no topic) holds. */
const CONTROL = '\u0000control'
/** How long a large notification's payload row is kept for the nodes that read it. */
const PAYLOAD_KEEP = 5 * 60_000
/** The count for "no limit". */
const ALL = 1_000_000_000

/** The SQL that creates the broker's tables, for teams that manage their schema (then `createTables: false`). */
export function postgresMigration (options: Pick<PostgresBrokerOptions, 'schema' | 'prefix'> = {}): string {
  const { schema, prefix } = checkPostgresOptions(options)
  return migrationSql(new PostgresNames(schema, prefix), schema) + '\n'
}

export class PostgresBroker implements Broker {
  readonly kind = 'PostgreSQL'
  readonly transactions = true
  /** This node's id: presence members are tagged with it. */
  readonly id = randomBytes(8).toString('hex')
  readonly schema: string
  readonly prefix: string
  readonly #names: PostgresNames
  readonly #sql: Statements
  readonly #pool: Pool
  readonly #ownPool: boolean
  readonly #createTables: boolean
  readonly #maxBytes: number
  readonly #notifyLimit: number
  readonly #presenceTtl: number
  readonly #now: (() => number) | undefined
  readonly #log: RedisBrokerLog | undefined
  readonly #feeds: TopicFeeds
  readonly #listen: NotificationFeed
  readonly #presence: PostgresPresence
  readonly #idempotency: PostgresIdempotency
  #tables: Promise<void> | null = null
  #timer: NodeJS.Timeout | null = null
  #ticking = false
  #started = false
  #closing = false
  #closed = false

  constructor (options: PostgresBrokerOptions = {}) {
    const checked = checkPostgresOptions(options)
    this.schema = checked.schema
    this.prefix = checked.prefix
    this.#names = new PostgresNames(checked.schema, checked.prefix)
    this.#sql = statements(this.#names)
    this.#createTables = options.createTables ?? true
    this.#maxBytes = checked.maxPublicationBytes
    this.#notifyLimit = checked.notifyLimit
    this.#presenceTtl = checked.presenceTtl
    this.#now = options.now
    this.#log = options.log
    this.#ownPool = options.pool === undefined
    if (options.pool !== undefined) {
      this.#pool = options.pool
    } else {
      const config = { keepAlive: true, ...options.poolConfig }
      if (options.connectionString !== undefined) config.connectionString = options.connectionString
      this.#pool = new Pool(config)
      // An idle connection that dies emits on the pool: reported, never an unhandled error.
      this.#pool.on('error', (err) => this.#warn(err, 'postgres pool connection error'))
    }
    const clock = () => this.#clock()
    const query = (sql: string, params: unknown[]) => this.#query(sql, params)
    this.#presence = new PostgresPresence(this.#sql, query, this.id, this.#presenceTtl, clock)
    this.#idempotency = new PostgresIdempotency(this.#sql, query, clock)
    this.#feeds = new TopicFeeds({
      keys: { control: CONTROL, topicOf: (channel) => channel },
      position: (topic) => this.position(topic),
      recover: (topic, since, limit) => this.recover(topic, since, limit),
      // The tables are durable: a stream behind what was delivered is not expected; go on in its epoch.
      rewind: async (topic) => (await this.position(topic)).epoch,
      listen: async () => {
        if (!this.#listen.ready) throw new errorCodes.FST_REALTIME_BROKER_UNAVAILABLE('the LISTEN connection is down')
      },
      warn: (obj, msg) => this.#log?.warn(obj, msg),
      error: (err, msg) => this.#error(err, msg),
      background: (work) => this.#background(work)
    }, this.id, checked.resyncLimit)
    this.#listen = new NotificationFeed({
      channel: this.#names.listen,
      connect: async () => {
        await this.#ready()
        const client = await this.#pool.connect()
        return { client, release: () => client.release(true) }
      },
      frame: (payload) => this.#frame(payload),
      resolve: async (id) => {
        const [row] = await this.#query(this.#sql.payload, [id])
        return row === undefined ? null : row.body as string
      },
      lost: () => this.#feeds.subscriberLost(),
      restored: () => this.#background(this.#feeds.resubscribe()),
      warn: (obj, msg) => this.#log?.warn(obj, msg)
    })
  }

  /** True while the LISTEN connection is up. */
  get connected (): boolean {
    return !this.#closed && this.#listen.ready
  }

  // ------------------------------------------------------------------ lifecycle

  async start (listener: PublicationListener, presence?: PresenceListener, command?: CommandListener, resync?: ResyncListener): Promise<void> {
    if (this.#closed || this.#closing) throw new errorCodes.FST_REALTIME_BROKER_CLOSED()
    const listeners = this.#feeds.listeners
    listeners.publication = listener
    listeners.presence = presence ?? null
    listeners.command = command ?? null
    listeners.resync = resync ?? null
    if (this.#started) return
    this.#started = true
    try {
      await this.#guard(this.#listen.start())
      await this.#presence.upkeep()
    } catch (err) {
      // Not started: a later start() tries again.
      this.#started = false
      this.#listen.close(false)
      throw err
    }
    this.#timer = setInterval(() => this.#background(this.#tick()), Math.max(10, Math.floor(this.#presenceTtl / 3)))
    this.#timer.unref()
  }

  async close (): Promise<void> {
    if (this.#closing) return
    this.#closing = true
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    this.#feeds.clear()
    this.#listen.close()
    if (this.#started) {
      try {
        await this.#presence.close()
      } catch (err) {
        this.#warn(err, 'could not remove this node\'s presence members on close')
      }
    }
    this.#closed = true
    if (this.#ownPool) await this.#pool.end()
  }

  // ------------------------------------------------------------------ publications

  async publish (topic: string, data: string, options: PublishOptions = {}): Promise<StreamPosition> {
    this.#open()
    const bytes = Buffer.byteLength(data)
    if (bytes > this.#maxBytes) throw new errorCodes.FST_REALTIME_PUBLICATION_TOO_LARGE(topic, bytes, this.#maxBytes)
    const transaction = options.transaction === undefined ? undefined : clientOf(options.transaction)
    const ephemeral = options.ephemeral === true
    const except = options.except !== undefined && options.except.length > 0 ? JSON.stringify(options.except) : ''
    // Subscribed here and outside the app's transaction: resolve once the publication
    // came back on LISTEN, so local subscribers have it by then, in commit order.
    const expected = transaction === undefined ? this.#feeds.expectEcho(topic) : null
    const origin = expected?.origin ?? ''
    const history = options.history
    const size = ephemeral || history === undefined ? 0 : Math.max(0, Math.floor(history.size))
    const ttl = history === undefined ? 0 : Math.max(0, Math.floor(history.ttl))
    const params = [topic, data, except, ephemeral, size, ttl, this.#clock(), origin, randomBytes(12).toString('base64url'), transaction !== undefined, this.#notifyLimit, topic.length]
    let rows: Array<Record<string, any>>
    try {
      rows = transaction === undefined ? await this.#query(this.#sql.publish, params) : await this.#inTransaction(transaction, params)
    } catch (err) {
      if (origin !== '') this.#feeds.cancelEcho(origin)
      throw err
    }
    if (rows.length === 0) throw new errorCodes.FST_REALTIME_INVALID_TRANSACTION('the client is not inside a transaction block (BEGIN first); nothing was written')
    if (expected !== null) await expected.echo
    return { offset: Number(rows[0].offset), epoch: String(rows[0].epoch) }
  }

  async #inTransaction (client: ClientBase, params: unknown[]): Promise<Array<Record<string, any>>> {
    await this.#ready()
    await inBlock(client)
    try {
      return (await client.query(prepared(this.#sql.publish, params))).rows
    } catch (err) {
      if ((err as { code?: unknown }).code === '25P02') {
        throw new errorCodes.FST_REALTIME_INVALID_TRANSACTION('the transaction is aborted (an earlier statement failed): roll it back', { cause: err })
      }
      throw wrap(err)
    }
  }

  async position (topic: string): Promise<StreamPosition> {
    const [row] = await this.#query(this.#sql.position, [topic])
    return { offset: Number(row.offset), epoch: String(row.epoch) }
  }

  async recover (topic: string, since: StreamPosition, limit: number): Promise<RecoveryResult> {
    const max = count(limit)
    const { position, publications } = await this.#read(topic, since.offset, since.epoch, max)
    if (since.epoch !== position.epoch) {
      // Another epoch: not recovered; the current one from offset 1 when all of it is held within the limit.
      const whole = position.offset <= max && publications.length === position.offset
      return { position, recovered: false, publications: whole ? publications : [] }
    }
    const missed = position.offset - since.offset
    if (missed < 0 || missed > max || publications.length !== missed) return { position, recovered: false, publications: [] }
    return { position, recovered: true, publications }
  }

  async history (topic: string, limit: number): Promise<{ position: StreamPosition, publications: Publication[] }> {
    return await this.#read(topic, 0, '', count(limit))
  }

  /** The position and the newest `max` held publications after `after` (in another epoch than `epoch`: after 0), in one snapshot. */
  async #read (topic: string, after: number, epoch: string, max: number): Promise<{ position: StreamPosition, publications: Publication[] }> {
    const rows = await this.#query(this.#sql.read, [topic, after, epoch, max, this.#clock()])
    const position = { offset: Number(rows[0].offset), epoch: String(rows[0].epoch) }
    const publications: Publication[] = []
    for (const r of rows) {
      if (r.o !== null) publications.push(publicationOf(topic, Number(r.o), position.epoch, r.data as string, r.exc as string))
    }
    return { position, publications }
  }

  /** A notification: a command, or a topic's publication or presence event (postgres-sql.ts). */
  #frame (payload: string): void {
    if (payload[0] === 'c') {
      this.#feeds.onMessage(CONTROL, payload.slice(1))
    } else if (payload[0] === 't') {
      const colon = payload.indexOf(':')
      const start = colon + 1
      const end = start + Number(payload.slice(1, colon))
      this.#feeds.onMessage(payload.slice(start, end), payload.slice(end))
    }
  }

  // ------------------------------------------------------------------ subscriptions

  async subscribe (topic: string): Promise<void> {
    this.#open()
    if (!this.#started) throw new errorCodes.FST_REALTIME_BROKER_NOT_STARTED('subscribe')
    // Kept even when this fails: the plugin unsubscribes after a failed subscribe, and
    // until then a reconnection catches it up with the others.
    const current = this.#feeds.add(topic, true)
    if (!this.#listen.ready) throw new errorCodes.FST_REALTIME_BROKER_UNAVAILABLE('the LISTEN connection is down')
    if (current()) await this.#feeds.subscribed(topic)
  }

  unsubscribe (topic: string): void {
    this.#feeds.remove(topic)
  }

  // ------------------------------------------------------------------ presence, commands, idempotency

  async join (topic: string, member: PresenceMember): Promise<void> {
    this.#open()
    await this.#presence.join(topic, member)
  }

  async leave (topic: string, connectionId: string): Promise<void> {
    this.#open()
    await this.#presence.leave(topic, connectionId)
  }

  async members (topic: string): Promise<PresenceMember[]> {
    this.#open()
    return await this.#presence.members(topic)
  }

  async command (command: BrokerCommand): Promise<void> {
    this.#open()
    await this.#query(this.#sql.notify, ['c' + JSON.stringify(command)])
  }

  async claimIdempotent (scope: IdempotencyScope, token: string, pendingMs: number): Promise<IdempotencyClaim> {
    this.#open()
    return await this.#idempotency.claim(scope, token, pendingMs)
  }

  async settleIdempotent (scope: IdempotencyScope, token: string, answer: string | null, ttlMs: number): Promise<void> {
    this.#open()
    await this.#idempotency.settle(scope, token, answer, ttlMs)
  }

  /** Heartbeat, the sweep of dead nodes, and large payloads every node has read by now. */
  async #tick (): Promise<void> {
    if (this.#ticking || this.#closing) return
    this.#ticking = true
    try {
      await this.#presence.upkeep()
      await this.#query(this.#sql.dropPayloads, [PAYLOAD_KEEP, this.#clock()])
    } catch (err) {
      this.#warn(err, 'postgres broker upkeep failed')
    } finally {
      this.#ticking = false
    }
  }

  // ------------------------------------------------------------------ plumbing

  #open (): void {
    if (this.#closed || this.#closing) throw new errorCodes.FST_REALTIME_BROKER_CLOSED()
  }

  #clock (): number | null {
    return this.#now === undefined ? null : this.#now()
  }

  /** The tables, created once (under an advisory lock: nodes starting together do not race). */
  #ready (): Promise<void> {
    if (!this.#createTables) return Promise.resolve()
    this.#tables ??= this.#create().catch((err: unknown) => {
      this.#tables = null
      throw wrap(err)
    })
    return this.#tables
  }

  async #create (): Promise<void> {
    const client: PoolClient = await this.#pool.connect()
    try {
      await client.query('BEGIN')
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [this.#names.lock])
      await client.query(migrationSql(this.#names, this.schema))
      await client.query('COMMIT')
      client.release()
    } catch (err) {
      client.release(true)
      throw err
    }
  }

  async #query (sql: string, params: unknown[]): Promise<Array<Record<string, any>>> {
    await this.#ready()
    try {
      return (await this.#pool.query(prepared(sql, params))).rows
    } catch (err) {
      throw wrap(err)
    }
  }

  async #guard<T> (work: Promise<T>): Promise<T> {
    try {
      return await work
    } catch (err) {
      throw wrap(err)
    }
  }

  #background (work: Promise<unknown>): void {
    work.catch((err: unknown) => this.#error(err, 'postgres broker upkeep failed'))
  }

  #warn (err: unknown, msg: string): void {
    this.#log?.warn({ err }, msg)
  }

  #error (err: unknown, msg: string): void {
    this.#log?.error({ err }, msg)
  }
}

const names = new Map<string, string>()

/**
 * A named statement: node-postgres prepares it once per connection and then only binds
 * it, so the statements (CTEs of several parts) are not parsed and planned on every call.
 * The name is the text's digest: brokers of another schema or prefix get their own.
 */
function prepared (text: string, values: unknown[]): { name: string, text: string, values: unknown[] } {
  let name = names.get(text)
  if (name === undefined) names.set(text, name = 'fastify_realtime_' + createHash('sha1').update(text).digest('hex').slice(0, 20))
  return { name, text, values }
}

function count (limit: number): number {
  return Number.isFinite(limit) ? Math.min(ALL, Math.max(0, Math.floor(limit))) : ALL
}
