// The publisher on PostgreSQL (fastify-realtime/postgres): a worker publishes into the
// plugin's topics through the same tables, and can publish in its own transaction
// (`{ transaction: client }`), as a server can.
import { PostgresBroker } from '../broker/postgres.js'
import type { PostgresBrokerOptions } from '../broker/postgres-options.js'
import { publisherOn, type Publisher, type PublisherTopic, type PublisherTopicsOptions } from './publisher-core.js'

export interface PostgresPublisherOptions<T extends Record<string, PublisherTopic>> extends PublisherTopicsOptions<T>, Pick<PostgresBrokerOptions, 'connectionString' | 'pool' | 'poolConfig' | 'schema' | 'prefix' | 'createTables' | 'maxPublicationBytes' | 'log'> {
  /** A broker to publish through (yours: close() leaves it open) instead of one made from the options above. */
  broker?: PostgresBroker
}

/** Creates a publisher on PostgreSQL; nothing connects before the first publish. */
export function createPublisher<T extends Record<string, PublisherTopic>> (options: PostgresPublisherOptions<T>): Publisher<T, PostgresBroker> {
  if (options.broker !== undefined) return publisherOn(options.broker, false, options)
  const { connectionString, pool, poolConfig, schema, prefix, createTables, maxPublicationBytes, log } = options
  return publisherOn(new PostgresBroker({ connectionString, pool, poolConfig, schema, prefix, createTables, maxPublicationBytes, log }), true, options)
}
