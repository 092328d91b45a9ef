// The PostgreSQL broker's options (postgres.ts), their defaults and their checks, in one
// place for the broker and the publisher.
import type { Pool, PoolConfig } from 'pg'
import { errorCodes } from '../protocol/errors.js'
import type { RedisBrokerLog } from './redis-options.js'

export interface PostgresBrokerOptions {
  /** A `postgres://` URL; the broker makes its own pool and closes it. Excludes `pool`. */
  connectionString?: string
  /** node-postgres pool options for the pool the broker makes (with `connectionString` or without: then PG* environment variables). */
  poolConfig?: PoolConfig
  /**
   * A `pg` Pool the app already has: the broker runs its statements on it and holds one
   * of its connections for LISTEN. It stays yours: close() does not end it.
   */
  pool?: Pool
  /** Schema of the broker's tables (default `public`); a plain identifier. */
  schema?: string
  /** Prefix of the broker's table names (default `realtime_`); nodes sharing topics share schema and prefix. */
  prefix?: string
  /** Create the tables on first use (default true). False: run `postgresMigration()`'s SQL yourself first. */
  createTables?: boolean
  /** Milliseconds a node's presence members outlive its last heartbeat (default 30000); it beats every third of that. */
  presenceTtl?: number
  /** Most publications one node replays by itself to close a gap after its LISTEN connection came back (default 1000). */
  resyncLimit?: number
  /**
   * Largest serialised publication in bytes (default 1 MiB): a larger one is refused
   * with FST_REALTIME_PUBLICATION_TOO_LARGE before the database sees it.
   */
  maxPublicationBytes?: number
  /**
   * Largest notification sent inline (default 7900 bytes; PostgreSQL's limit is 8000):
   * a larger publication is stored in the payloads table and its id notified instead.
   */
  notifyLimit?: number
  /** A clock for history, presence and idempotency expiry, for tests. Default: the database's clock, one for every node. */
  now?: () => number
  /** Where connection trouble is reported. Default: nowhere. */
  log?: RedisBrokerLog
}

export const postgresDefaults = {
  schema: 'public',
  prefix: 'realtime_',
  presenceTtl: 30_000,
  resyncLimit: 1000,
  maxPublicationBytes: 1024 * 1024,
  notifyLimit: 7900
}

/** The options with their defaults, checked: a bad one throws FST_REALTIME_INVALID_BROKER_OPTION. */
export function checkPostgresOptions (options: PostgresBrokerOptions): Required<Pick<PostgresBrokerOptions, 'schema' | 'prefix' | 'presenceTtl' | 'resyncLimit' | 'maxPublicationBytes' | 'notifyLimit'>> {
  if (options.pool !== undefined && options.connectionString !== undefined) {
    throw new errorCodes.FST_REALTIME_INVALID_BROKER_OPTION('pool', 'excludes connectionString: give one of them')
  }
  if (options.pool !== undefined && (typeof options.pool !== 'object' || typeof (options.pool as { connect?: unknown }).connect !== 'function')) {
    throw new errorCodes.FST_REALTIME_INVALID_BROKER_OPTION('pool', 'must be a pg Pool')
  }
  const schema = identifier('schema', options.schema ?? postgresDefaults.schema, 1)
  const prefix = identifier('prefix', options.prefix ?? postgresDefaults.prefix, 0)
  // The longest table name is the prefix and "publications" (12): within PostgreSQL's 63 bytes.
  if (prefix.length > 50) throw new errorCodes.FST_REALTIME_INVALID_BROKER_OPTION('prefix', 'must be at most 50 characters')
  return {
    schema,
    prefix,
    presenceTtl: whole('presenceTtl', options.presenceTtl, postgresDefaults.presenceTtl, 1),
    resyncLimit: whole('resyncLimit', options.resyncLimit, postgresDefaults.resyncLimit, 1),
    maxPublicationBytes: whole('maxPublicationBytes', options.maxPublicationBytes, postgresDefaults.maxPublicationBytes, 1),
    notifyLimit: whole('notifyLimit', options.notifyLimit, postgresDefaults.notifyLimit, 256, 7999)
  }
}

function identifier (name: string, value: unknown, min: number): string {
  if (typeof value !== 'string' || value.length < min || value.length > 63 || !/^[A-Za-z_][A-Za-z0-9_]*$|^$/.test(value)) {
    throw new errorCodes.FST_REALTIME_INVALID_BROKER_OPTION(name, 'must be a plain SQL identifier (letters, digits and _, not starting with a digit, at most 63)')
  }
  return value
}

function whole (name: string, value: number | undefined, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new errorCodes.FST_REALTIME_INVALID_BROKER_OPTION(name, `must be a whole number from ${min} to ${max}`)
  }
  return value
}
