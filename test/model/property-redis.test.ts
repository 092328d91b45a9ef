// The protocol properties (see protocol-property.test.ts) on the Redis broker: a
// redis-server of the test's own on a free port, a fresh key prefix per run of the
// file and a fresh topic namespace per sequence, and sequences that stop Redis, start
// it again empty, or restart it in the middle. While Redis is down a handler's publish
// must not be answered as a success, and whatever the outage cost a subscriber is told
// (2500, `recovered: false`) before anything after it. Skipped when redis-server is
// absent, except on CI.
import t from 'tap'
import { RedisBroker } from '../../lib/redis.js'
import { hasRedisServer, requireOrSkip, startRedisServer, uniquePrefix } from '../fixtures/redis.js'
import { commandsOf, holds, runs } from '../fixtures/protocol-commands.js'
import { Server, World, type RedisControl } from '../fixtures/protocol-driver.js'

t.test('redis broker: the delivery contract under random interleavings and Redis restarts', async (t) => {
  if (!requireOrSkip(t, hasRedisServer(), 'redis-server is not installed')) return
  const redisServer = await startRedisServer(t)
  // RedisServer.start() would spawn a second process over a running one.
  let up = true
  const redis: RedisControl = {
    get up () { return up },
    kill: async () => { up = false; await redisServer.kill() },
    start: async () => { if (!up) { await redisServer.start(); up = true } }
  }
  const prefix = uniquePrefix('protocol')
  const server = new Server(() => new RedisBroker({ redis: redisServer.url, prefix }))
  t.teardown(() => server.stop())
  const world = (): World => new World(server, { redis })

  await t.test('the contract holds on Redis', async (t) => {
    await holds(t, 'every subscriber gapless or told, every request answered once, hooks paired (redis)', commandsOf({ restart: 1, burst: 1 }), runs(50), world)
  })

  await t.test('the contract holds on Redis with fan-outs sliced one subscriber per turn', async (t) => {
    const sliced = new Server(() => new RedisBroker({ redis: redisServer.url, prefix }), { fanOutSlice: 1 })
    t.teardown(() => sliced.stop())
    await holds(t, 'sliced fan-outs on Redis: every subscriber gapless or told, in order', commandsOf({ serverPublish: 6, publish: 4, subscribe: 6, restart: 1 }), runs(25), () => new World(sliced, { redis }))
  })

  await t.test('filtered and server subscriptions on Redis, through its stops and restarts', async (t) => {
    await holds(t, 'a filtered subscriber gets exactly what matches, in order, and recovers gaplessly (redis)', commandsOf({
      subscribe: 8, serverSubscribe: 3, serverPublish: 6, publish: 2, redis: 1, act: 1, burst: 0, retry: 0, restart: 0, kick: 0
    }, 12), runs(25), world)
  })

  await t.test('a Redis stop, start or restart mid-sequence', async (t) => {
    await holds(t, 'a publish while Redis is down is not a success; gaps are told (redis restart)', commandsOf({
      redis: 3, act: 8, subscribe: 4, serverPublish: 3, restart: 0, burst: 0, kick: 0, pause: 0, resume: 0, retry: 1, wait: 0
    }, 10, 1, ['ok', 'publish', 'publish', 'hang']), runs(30), world)
  })
})
