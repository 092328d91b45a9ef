// A publisher for processes that are not servers (workers, cron jobs, scripts): it
// publishes into the same topics as the plugin's nodes, through the same Redis, with
// the same offsets and history (publisher-core.ts does the publishing).
import { RedisBroker, type RedisBrokerOptions } from '../broker/redis.js'
import { publisherOn, type Publisher as AnyPublisher, type PublisherTopic, type PublisherTopicsOptions } from './publisher-core.js'

export type { PublisherTopic, PublisherTopicHandle, PublisherPublishOptions, PublisherResult } from './publisher-core.js'

export interface PublisherOptions<T extends Record<string, PublisherTopic>> extends PublisherTopicsOptions<T>, Pick<RedisBrokerOptions, 'redis' | 'cluster' | 'clusterOptions' | 'prefix' | 'metaTtl' | 'log'> {}

export type Publisher<T extends Record<string, PublisherTopic>> = AnyPublisher<T, RedisBroker>

/**
 * Creates a publisher. It connects on the first publish; while Redis is unreachable
 * publishes reject with FST_REALTIME_BROKER_UNAVAILABLE.
 */
export function createPublisher<T extends Record<string, PublisherTopic>> (options: PublisherOptions<T>): Publisher<T> {
  const broker = new RedisBroker({ redis: options.redis, cluster: options.cluster, clusterOptions: options.clusterOptions, prefix: options.prefix, metaTtl: options.metaTtl, log: options.log })
  return publisherOn(broker, true, options)
}
