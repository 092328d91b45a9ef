// fastify-realtime/redis: the Redis broker and the publisher, behind their own entry so
// that an app which never scales out does not load ioredis (an optional peer) at all.
export { RedisBroker, redisErrorCodes } from './broker/redis.js'
export type { RedisBrokerOptions, RedisBrokerLog } from './broker/redis.js'
export { createPublisher } from './pubsub/publisher.js'
export type { Publisher, PublisherOptions, PublisherTopic, PublisherTopicHandle, PublisherPublishOptions, PublisherResult } from './pubsub/publisher.js'
