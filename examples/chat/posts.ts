// The chat's posts in PostgreSQL (with DATABASE_URL): each post is a row of `posts`, and
// its publication is written in the same transaction, so a post is stored and published
// together or not at all: no post that subscribers never hear of, no publication of a
// post that was never stored (the dual write).
import type { Pool, PoolClient } from 'pg'

export const POSTS_TABLE = `CREATE TABLE IF NOT EXISTS posts (
  id uuid PRIMARY KEY,
  room text NOT NULL,
  user_id text NOT NULL,
  text text NOT NULL,
  at bigint NOT NULL,
  "offset" bigint NOT NULL
)`

/** Creates the table once (nodes starting together take turns). */
export async function createPostsTable (pool: Pool): Promise<void> {
  await inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock(hashtext(\'fastify-realtime chat posts\'))')
    await client.query(POSTS_TABLE)
  })
}

/** Runs `work` in a transaction: COMMIT when it resolves, ROLLBACK when it throws. */
export async function inTransaction<T> (pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    const result = await work(client)
    await client.query('COMMIT')
    return result
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    client.release()
  }
}
