// The Redis broker's options (redis.ts), in one place for the broker and the publisher.
import type { Cluster, ClusterNode, ClusterOptions, Redis, RedisOptions } from 'ioredis'
import type { RedisClient } from './redis-connection.js'

/** Any pino-like logger (`app.log`). */
export interface RedisBrokerLog {
  warn: (obj: object, msg?: string) => void
  error: (obj: object, msg?: string) => void
}

export interface RedisBrokerOptions {
  /**
   * A `redis://` URL, ioredis options, or an ioredis client (standalone or Sentinel; an
   * ioredis Cluster client works too). A client you pass stays yours: close() does not
   * close it. Default `redis://127.0.0.1:6379`.
   */
  redis?: string | RedisOptions | Redis | Cluster
  /**
   * Redis Cluster (7.0 or newer): its nodes (`"host:port"` or `{ host, port }`, a few
   * suffice: the rest are discovered) or an ioredis Cluster client. Excludes `redis`.
   */
  cluster?: ClusterNode[] | Cluster
  /** ioredis Cluster options for the clients the broker makes from `cluster`'s nodes. */
  clusterOptions?: ClusterOptions
  /**
   * An ioredis client for subscribing. Default: a duplicate of the command connection
   * (on a cluster, with one sharded subscriber per master), owned by the broker.
   */
  subscriber?: RedisClient
  /** Prefix of every key and channel (default `rt:`); nodes sharing topics share it. */
  prefix?: string
  /** Milliseconds a node's presence members outlive its last heartbeat (default 30000); it beats every third of that. */
  presenceTtl?: number
  /** Milliseconds a topic's epoch and offset outlive its last publication (default one day; 0: forever). */
  metaTtl?: number
  /** Most publications one node replays by itself to close a gap after a reconnection (default 1000). */
  resyncLimit?: number
  /** A clock for history and presence expiry, for tests. Default: Redis server time, one clock for every node. */
  now?: () => number
  /**
   * While Redis is away, a stream publication reaches this node's own subscribers only,
   * outside the stream (offset 0, marked `"local": true` on the wire, never in history,
   * never on other nodes) instead of failing with FST_REALTIME_BROKER_UNAVAILABLE.
   * Default false. Ephemeral publications reach this node's subscribers either way.
   */
  localWhileDown?: boolean
  /** Where connection trouble is reported. Default: nowhere. */
  log?: RedisBrokerLog
}
