// A worker that is not a server: it posts into the chat's rooms through Redis with the
// publisher, and every chat node delivers its posts to the room's members, with the
// same offsets and history as posts sent by people.
//
//   REDIS_URL=redis://127.0.0.1:6379 node --import tsx examples/cluster/worker.ts
//   REDIS_CLUSTER_NODES=127.0.0.1:7000,127.0.0.1:7001 node --import tsx examples/cluster/worker.ts
//
// ROOM (default `general`) and INTERVAL_MS (default 30000) may be set; Ctrl-C stops it.
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { Type } from '@sinclair/typebox'
import { createPublisher } from '../../lib/redis.js'
import { RoomMessageSchema, type ChatPost } from '../chat/app.js'
import { redisFromEnv, type RedisConnection } from './redis-env.js'

/** A publisher for the chat's topics, declared as the chat server declares them (examples/chat/app.ts). */
export function chatPublisher (redis: string | RedisConnection, prefix?: string) {
  return createPublisher({
    ...(typeof redis === 'string' ? { redis } : redis),
    prefix,
    topics: {
      'room/:name': {
        params: Type.Object({ name: Type.String({ pattern: '^[a-z0-9-]{1,32}$' }) }),
        message: RoomMessageSchema,
        // Must match the server's declaration: the history is shared.
        history: { size: 100, ttl: 60 * 60_000 }
      }
    }
  })
}

export type ChatPublisher = ReturnType<typeof chatPublisher>

/** Posts `text` to a room as the clock bot. */
export async function announce (publisher: ChatPublisher, room: string, text: string): Promise<{ offset: number }> {
  const post: ChatPost = { kind: 'chat', id: randomUUID(), user: { id: 'clock-bot', name: 'clock-bot' }, text, at: Date.now() }
  return publisher.topic('room/:name').publish({ name: room }, post)
}

async function main (): Promise<void> {
  const redis = redisFromEnv()?.connection ?? 'redis://127.0.0.1:6379'
  const room = process.env.ROOM ?? 'general'
  const interval = Number(process.env.INTERVAL_MS ?? 30_000)
  const publisher = chatPublisher(redis)

  const tick = async (): Promise<void> => {
    try {
      const { offset } = await announce(publisher, room, `It is ${new Date().toLocaleTimeString('en-GB')} (worker ${process.pid})`)
      console.log(`worker: posted offset ${offset} to room/${room}`)
    } catch (err) {
      // Redis away: this post is lost, the next tick tries again.
      console.error(`worker: could not post: ${(err as Error).message}`)
    }
  }
  await tick()
  const timer = setInterval(() => { tick().catch(() => {}) }, interval)

  const stop = (): void => {
    clearInterval(timer)
    publisher.close().then(() => process.exit(0), () => process.exit(1))
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main()
