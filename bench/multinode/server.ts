// One server node of the multi-node benchmark, in its own process: this plugin on the
// Redis broker, or Socket.IO with its sharded Redis adapter, on one Redis or a Redis
// Cluster; or this plugin on the PostgreSQL broker. It prints `{"port":…}` once
// listening and stops on SIGTERM.
//
//   IMPL=plugin|socketio  REDIS_URL=redis://…  or  REDIS_CLUSTER_NODES=host:port,…  PREFIX=…
//   IMPL=plugin  DATABASE_URL=postgres://…  PREFIX=… (a schema name)
import { createServer } from 'node:http'
import Fastify from 'fastify'
import { Type } from '@sinclair/typebox'
import { createShardedAdapter } from '@socket.io/redis-adapter'
import { createClient, createCluster } from 'redis'
import { Server } from 'socket.io'
import { plugin as pkg, postgres as postgresEntry, redis as redisEntry } from '../package.js'
import { redisFromEnv } from '../../examples/cluster/redis-env.js'

const impl = process.env.IMPL ?? 'plugin'
const databaseUrl = process.env.DATABASE_URL ?? ''
const redis = redisFromEnv()
if (redis === undefined && databaseUrl === '') throw new Error('set REDIS_URL, REDIS_CLUSTER_NODES or DATABASE_URL')
const prefix = process.env.PREFIX ?? 'bench:'

async function plugin (): Promise<{ port: number, close: () => Promise<void> }> {
  const broker = databaseUrl !== ''
    ? new postgresEntry.PostgresBroker({ connectionString: databaseUrl, schema: prefix })
    : new redisEntry.RedisBroker({ ...redis!.connection, prefix })
  const app = Fastify()
  await app.register(pkg.default, {
    broker,
    // Every bench client comes from 127.0.0.1 and sends as fast as it can: the limits
    // that would refuse that are raised out of the way (their checks still run).
    rateLimit: { rate: 1e9, burst: 1e9 },
    maxConnectionsPerIp: 1_000_000,
    maxConnections: 1_000_000
  })
  app.realtime.topic('bench/:name', {
    message: Type.Object({ t: Type.Number(), seq: Type.Integer(), pad: Type.String() }),
    clientPublish: true
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return {
    port: (app.server.address() as { port: number }).port,
    close: async () => { await app.close(); await broker.close() }
  }
}

async function socketio (): Promise<{ port: number, close: () => Promise<void> }> {
  const connection = redis!.connection
  const pub = connection.cluster !== undefined
    ? createCluster({ rootNodes: (connection.cluster as Array<{ host: string, port: number }>).map((n) => ({ url: `redis://${n.host}:${n.port}` })) })
    : createClient({ url: connection.redis as string })
  const sub = pub.duplicate()
  await Promise.all([pub.connect(), sub.connect()])
  const http = createServer()
  const io = new Server(http, { transports: ['websocket'], adapter: createShardedAdapter(pub, sub, { channelPrefix: `${prefix}sio` }) })
  io.on('connection', (socket) => {
    socket.on('join', (room: string, ack: () => void) => {
      Promise.resolve(socket.join(room)).then(() => ack(), () => ack())
    })
    socket.on('publish', (room: string, data: unknown, ack: () => void) => {
      io.to(room).emit('message', data)
      ack()
    })
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  return {
    port: (http.address() as { port: number }).port,
    close: async () => {
      await new Promise<void>((resolve) => io.close(() => resolve()))
      await Promise.allSettled([pub.quit(), sub.quit()])
    }
  }
}

const server = impl === 'socketio' ? await socketio() : await plugin()
console.log(JSON.stringify({ port: server.port }))
process.once('SIGTERM', () => {
  server.close().then(() => process.exit(0), () => process.exit(1))
})
