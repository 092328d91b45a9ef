// Which Redis the examples use, from the environment:
//   REDIS_CLUSTER_NODES=127.0.0.1:7000,127.0.0.1:7001   a Redis Cluster (a few nodes suffice)
//   REDIS_URL=redis://127.0.0.1:6379                   one Redis (or a Sentinel URL)
// Neither: undefined (the chat then keeps everything in memory, one process).
import type { RedisBrokerOptions } from '../../lib/redis.js'

export type RedisConnection = Pick<RedisBrokerOptions, 'redis' | 'cluster'>

export function redisFromEnv (env: NodeJS.ProcessEnv = process.env): { connection: RedisConnection, label: string } | undefined {
  const nodes = env.REDIS_CLUSTER_NODES
  if (nodes !== undefined && nodes.trim() !== '') {
    const cluster = nodes.split(',').map((node) => node.trim()).filter((node) => node !== '').map(parseNode)
    return { connection: { cluster }, label: `Redis Cluster via ${cluster.map((n) => `${n.host}:${n.port}`).join(', ')}` }
  }
  const url = env.REDIS_URL
  if (url !== undefined && url !== '') return { connection: { redis: url }, label: `Redis at ${url}` }
  return undefined
}

function parseNode (node: string): { host: string, port: number } {
  const colon = node.lastIndexOf(':')
  const port = Number(node.slice(colon + 1))
  if (colon < 1 || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new TypeError(`REDIS_CLUSTER_NODES: "${node}" is not host:port`)
  }
  return { host: node.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port }
}
