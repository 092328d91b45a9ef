// How many publications per second one PostgreSQL takes through the PostgreSQL broker,
// with nobody subscribed (the database's side only): `publications` publishes with
// `window` in flight, on one topic (they queue on its row lock) and spread over 64
// topics, plain and in a transaction each. Run: `node --import tsx bench/postgres-publish.ts`
// with DATABASE_URL (default the local test database); tables in a schema of its own, dropped after.
import pg from 'pg'
import { PostgresBroker } from '../lib/postgres.js'
import { DATABASE_URL, dropSchema, uniqueSchema } from '../test/fixtures/postgres.js'

const publications = Number(process.env.PUBLICATIONS ?? 3000)
const window = Number(process.env.WINDOW ?? 32)
const schema = uniqueSchema('bench')
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: window + 2 })
const broker = new PostgresBroker({ pool, schema })
await broker.start(() => {})

async function run (label: string, topics: number, transaction: boolean): Promise<void> {
  let next = 0
  const started = performance.now()
  const lane = async (): Promise<void> => {
    const client = transaction ? await pool.connect() : null
    try {
      while (next < publications) {
        const i = next++
        const topic = `bench/${i % topics}`
        const data = JSON.stringify({ i, text: 'x'.repeat(64) })
        if (client === null) {
          await broker.publish(topic, data, { history: { size: 100, ttl: 300_000 } })
        } else {
          await client.query('BEGIN')
          await broker.publish(topic, data, { history: { size: 100, ttl: 300_000 }, transaction: client })
          await client.query('COMMIT')
        }
      }
    } finally {
      client?.release()
    }
  }
  await Promise.all(Array.from({ length: window }, lane))
  const seconds = (performance.now() - started) / 1000
  console.log(`${label}: ${Math.round(publications / seconds)} publications/s`)
}

try {
  await run('one topic', 1, false)
  await run('64 topics', 64, false)
  await run('one topic, each in a transaction', 1, true)
  await run('64 topics, each in a transaction', 64, true)
} finally {
  await broker.close()
  await pool.end()
  await dropSchema(schema)
}
