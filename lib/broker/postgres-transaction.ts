// The application's transaction as the PostgreSQL broker takes it (postgres.ts), and
// how the broker's errors are told: a bad transaction before anything is written,
// connection trouble as FST_REALTIME_BROKER_UNAVAILABLE.
import type { ClientBase } from 'pg'
import { errorCodes } from '../protocol/errors.js'

/** The app's transaction: a pg client (not a Pool, whose query() would commit on its own). */
export function clientOf (transaction: unknown): ClientBase {
  const candidate = transaction as { query?: unknown, totalCount?: unknown } | null
  if (candidate === null || typeof candidate !== 'object' || typeof candidate.query !== 'function') {
    throw new errorCodes.FST_REALTIME_INVALID_TRANSACTION('expected a pg client inside BEGIN (from pool.connect())')
  }
  if (typeof candidate.totalCount === 'number') {
    throw new errorCodes.FST_REALTIME_INVALID_TRANSACTION('a Pool is no transaction: take a client with pool.connect(), BEGIN, and pass that client')
  }
  return transaction as ClientBase
}

/**
 * Refuses a client outside a transaction block (its statement would commit on its own)
 * or in an aborted one, before anything is written. node-postgres keeps the status of
 * the last ReadyForQuery ('I' idle, 'T' in a block, 'E' failed); without it (older pg),
 * a SAVEPOINT asks the server, which refuses one outside a block.
 */
export async function inBlock (client: ClientBase): Promise<void> {
  const status = (client as { _txStatus?: unknown })._txStatus
  if (status === 'T') return
  if (status === 'I') throw new errorCodes.FST_REALTIME_INVALID_TRANSACTION('the client is not inside a transaction block (await BEGIN first); nothing was written')
  if (status === 'E') throw new errorCodes.FST_REALTIME_INVALID_TRANSACTION('the transaction is aborted (an earlier statement failed): roll it back')
  try {
    await client.query('SAVEPOINT fastify_realtime_check')
    await client.query('RELEASE SAVEPOINT fastify_realtime_check')
  } catch (err) {
    const code = (err as { code?: unknown }).code
    if (code === '25P01') throw new errorCodes.FST_REALTIME_INVALID_TRANSACTION('the client is not inside a transaction block (await BEGIN first); nothing was written', { cause: err })
    if (code === '25P02') throw new errorCodes.FST_REALTIME_INVALID_TRANSACTION('the transaction is aborted (an earlier statement failed): roll it back', { cause: err })
    throw wrap(err)
  }
}

/** Connection trouble is FST_REALTIME_BROKER_UNAVAILABLE (temporary); a statement's own error stays what it is. */
export function wrap (err: unknown): unknown {
  if (err instanceof Error && 'code' in err && typeof err.code === 'string' && err.code.startsWith('FST_')) return err
  const code = (err as { code?: unknown } | null)?.code
  const sqlState = typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : null
  if (sqlState !== null && !/^(08|53|57)/.test(sqlState)) return err
  return new errorCodes.FST_REALTIME_BROKER_UNAVAILABLE(`PostgreSQL: ${(err as Error)?.message ?? String(err)}`, { cause: err })
}
