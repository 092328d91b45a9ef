// fastify-realtime/postgres: the PostgreSQL broker and its publisher, behind their own
// entry so that an app which never uses them does not load pg (an optional peer) at all.
export { PostgresBroker, postgresMigration } from './broker/postgres.js'
export type { PostgresBrokerOptions } from './broker/postgres.js'
export { createPublisher } from './pubsub/publisher-postgres.js'
export type { PostgresPublisherOptions } from './pubsub/publisher-postgres.js'
export type { Publisher, PublisherTopic, PublisherTopicHandle, PublisherPublishOptions, PublisherResult } from './pubsub/publisher-core.js'
