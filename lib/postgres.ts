// fastify-realtime/postgres: the PostgreSQL broker, behind its own entry so that an app
// which never uses it does not load pg (an optional peer) at all.
export { PostgresBroker, postgresMigration } from './broker/postgres.js'
export type { PostgresBrokerOptions } from './broker/postgres.js'
