// The protocol properties (see property.test.ts) on the PostgreSQL broker, with the app's
// own transactions in the mix: `tx` commands publish in a transaction that commits or
// rolls back, in the background, interleaved with each other (on one topic they queue
// on its lock), with server and client publications, subscribes, restarts. A subscriber
// must see exactly the committed publications, gapless, and never a rolled back one.
// A schema of its own per run of the file, dropped after; skipped without PostgreSQL,
// except on CI.
import t from 'tap'
import pg from 'pg'
import { PostgresBroker } from '../../lib/postgres.js'
import { requireOrSkip } from '../fixtures/redis.js'
import { DATABASE_URL, dropSchema, pgReachable, uniqueSchema } from '../fixtures/postgres.js'
import { commandsOf, holds, runs } from '../fixtures/protocol-commands.js'
import { Server, World } from '../fixtures/protocol-driver.js'

t.test('postgres broker: the delivery contract with transactions committing and rolling back', async (t) => {
  if (!requireOrSkip(t, await pgReachable(), `PostgreSQL is not reachable at ${DATABASE_URL}`)) return
  const schema = uniqueSchema('protocol')
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 8 })
  const server = new Server(() => new PostgresBroker({ connectionString: DATABASE_URL, schema }))
  t.teardown(async () => {
    await server.stop()
    await pool.end()
    await dropSchema(schema)
  })
  const world = (): World => new World(server, { transactions: () => pool.connect() })

  await t.test('commits and rollbacks interleaved with everything else', async (t) => {
    await holds(t, 'a subscriber sees exactly the committed publications, gapless; every request answered once (postgres)', commandsOf({ tx: 6, restart: 1, burst: 0 }), runs(40), world)
  })

  await t.test('transactions on one topic, subscribers coming and going', async (t) => {
    await holds(t, 'commit order is offset order; rolled back ones reach nobody (postgres, transactions)', commandsOf({
      tx: 10, subscribe: 5, serverPublish: 3, publish: 2, act: 2, restart: 0, burst: 0, kick: 0, pause: 0, resume: 0, retry: 0, disconnect: 1
    }, 16), runs(40), world)
  })
})
