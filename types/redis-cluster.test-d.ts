// Type tests of the Redis broker's modes: one Redis, or a Redis Cluster by its nodes or
// by an ioredis Cluster client; the publisher takes the same.
import { Cluster, Redis } from 'ioredis'
import { createPublisher, RedisBroker, type RedisBrokerOptions } from '../lib/redis.js'
import { Type } from '@sinclair/typebox'

const nodes = [{ host: '127.0.0.1', port: 7000 }, { host: '127.0.0.1', port: 7001 }]
export const byNodes = new RedisBroker({ cluster: nodes, clusterOptions: { scaleReads: 'master' } })
export const byClient = new RedisBroker({ cluster: new Cluster(nodes) })
export const asRedis = new RedisBroker({ redis: new Cluster(nodes) })
export const single = new RedisBroker({ redis: new Redis(), subscriber: new Redis() })
export const options: RedisBrokerOptions = { cluster: ['127.0.0.1:7000'] }
export const publisher = createPublisher({ cluster: nodes, topics: { 'room/:name': { message: Type.Object({ text: Type.String() }) } } })

// @ts-expect-error: a list of nodes (or a Cluster client), not one node
export const wrong = new RedisBroker({ cluster: '127.0.0.1:7000' })
