// Runs the chat example: `npm start` (HOST and PORT may be set in the environment).
// With REDIS_URL set (`REDIS_URL=redis://127.0.0.1:6379 npm start`) the chat keeps its
// rooms in Redis, so several processes can serve it together (see examples/cluster);
// with REDIS_CLUSTER_NODES (`REDIS_CLUSTER_NODES=127.0.0.1:7000,127.0.0.1:7001 npm start`)
// in a Redis Cluster. With DATABASE_URL (`DATABASE_URL=postgres://postgres@127.0.0.1/chat
// npm start`) on PostgreSQL instead: the rooms in the PostgreSQL broker's tables, each
// post stored in `posts` and published in the same transaction.
import type { Pool } from 'pg'
import type { Broker } from '../../lib/index.js'
import { RedisBroker } from '../../lib/redis.js'
import { redisFromEnv } from '../cluster/redis-env.js'
import { buildChat } from './app.js'

const host = process.env.HOST ?? '127.0.0.1'
const port = Number(process.env.PORT ?? 3000)
const redis = redisFromEnv()

// Redis trouble is reported through the app's logger (called only once the app exists).
const log = {
  warn: (obj: object, msg?: string) => app.log.warn(obj, msg),
  error: (obj: object, msg?: string) => app.log.error(obj, msg)
}
const databaseUrl = process.env.DATABASE_URL
let broker: Broker | undefined
let database: Pool | undefined
let label = ''
if (databaseUrl !== undefined && databaseUrl !== '') {
  // Loaded only when asked for: pg is an optional peer of fastify-realtime.
  const [{ default: pg }, { PostgresBroker }] = await Promise.all([import('pg'), import('../../lib/postgres.js')])
  database = new pg.Pool({ connectionString: databaseUrl })
  database.on('error', (err) => log.warn({ err }, 'postgres pool error'))
  broker = new PostgresBroker({ pool: database, log })
  label = 'PostgreSQL'
} else if (redis !== undefined) {
  broker = new RedisBroker({ ...redis.connection, log })
  label = redis.label
}

const app = await buildChat({ logger: true, broker, database })

try {
  await app.listen({ host, port })
} catch (err) {
  app.log.error(err)
  await broker?.close()
  await database?.end()
  process.exit(1)
}

const address = app.server.address()
const actualPort = typeof address === 'object' && address !== null ? address.port : port
const shownHost = host.includes(':') ? `[${host}]` : host
console.log(`Chat example running at http://${shownHost}:${actualPort}/${broker === undefined ? '' : ` (broker: ${label})`}`)

// Graceful shutdown: app.close() tells every client "server restarting" (1012) and
// waits for them to go. A second signal while that is under way exits at once.
let closing = false
function onSignal (signal: NodeJS.Signals): void {
  if (closing) {
    app.log.warn(`${signal} again: exiting now`)
    process.exit(1)
  }
  closing = true
  app.log.info(`${signal} received: closing`)
  // The app does not close a broker it was given: that comes after, once every
  // connection has left its rooms.
  app.close().then(() => broker?.close()).then(() => database?.end()).then(
    () => process.exit(0),
    (err: unknown) => {
      app.log.error(err)
      process.exit(1)
    }
  )
}
process.on('SIGINT', onSignal)
process.on('SIGTERM', onSignal)
