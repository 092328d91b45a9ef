// The chat example on a Redis Cluster this file starts: `npm start` with
// REDIS_CLUSTER_NODES set serves the chat with its rooms in the cluster, and the worker
// of examples/cluster posts into them through the publisher.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import t from 'tap'
import { announce, chatPublisher } from '../../examples/cluster/worker.js'
import { redisFromEnv } from '../../examples/cluster/redis-env.js'
import { connect } from '../fixtures/helpers.js'
import { hasRedisServer, requireOrSkip } from '../fixtures/redis.js'
import { hasRedisCli, startRedisCluster } from '../fixtures/redis-cluster.js'

t.test('REDIS_CLUSTER_NODES and REDIS_URL pick the mode', async (t) => {
  t.same(redisFromEnv({ REDIS_CLUSTER_NODES: '127.0.0.1:7000, [::1]:7001', REDIS_URL: 'redis://x' })?.connection, {
    cluster: [{ host: '127.0.0.1', port: 7000 }, { host: '::1', port: 7001 }]
  }, 'the cluster wins over REDIS_URL')
  t.same(redisFromEnv({ REDIS_URL: 'redis://127.0.0.1:6379' })?.connection, { redis: 'redis://127.0.0.1:6379' })
  t.equal(redisFromEnv({}), undefined, 'neither: in memory')
  t.throws(() => redisFromEnv({ REDIS_CLUSTER_NODES: '127.0.0.1' }), /REDIS_CLUSTER_NODES: "127.0.0.1" is not host:port/)
  t.throws(() => redisFromEnv({ REDIS_CLUSTER_NODES: 'h:99999' }), /not host:port/)
})

if (requireOrSkip(t, hasRedisServer() && hasRedisCli(), 'redis-server and redis-cli are not installed')) {
  t.test('npm start on a cluster: people chat, the worker posts, one history', async (t) => {
    const cluster = await startRedisCluster(t, { masters: 3 })
    const nodes = cluster.nodes.slice(0, 2).map((n) => `${n.host}:${n.port}`).join(',')
    const server = spawn(process.execPath, ['--import', 'tsx', 'examples/chat/server.ts'], {
      env: { ...process.env, REDIS_CLUSTER_NODES: nodes, PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    const exited = once(server, 'exit')
    t.teardown(async () => {
      if (server.exitCode === null && server.signalCode === null) {
        server.kill('SIGKILL')
        await exited
      }
    })
    let output = ''
    const url = await new Promise<string>((resolve, reject) => {
      server.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString()
        const m = /Chat example running at (http:\/\/\S+?)\/ \(broker: Redis Cluster via /.exec(output)
        if (m !== null) resolve(m[1].replace('http:', 'ws:') + '/ws')
      })
      server.once('exit', (code) => reject(new Error(`the example exited (${code}): ${output}`)))
    })
    const ann = await connect(t, url, { welcome: false })
    await ann.request('auth', { token: 'ann' })
    await ann.nextOfType('welcome')
    t.equal((await ann.request('subscribe', { topic: 'room/general' })).type, 'reply')
    t.equal((await ann.request('chat.send', { room: 'general', text: 'hello, cluster' })).type, 'reply')
    const mine = await ann.next((f) => f.type === 'message' && f.data.kind === 'chat')
    t.equal(mine.data.text, 'hello, cluster')

    const publisher = chatPublisher({ cluster: cluster.nodes })
    t.teardown(() => publisher.close())
    const { offset } = await announce(publisher, 'general', 'It is noon')
    t.equal(offset, (mine.offset as number) + 1, 'the worker continues the room\'s offsets, through the cluster')
    const post = await ann.next((f) => f.type === 'message' && f.data.user?.id === 'clock-bot')
    t.same([post.offset, post.data.text], [offset, 'It is noon'])
    const history = await ann.request('chat.history', { room: 'general' })
    t.same(history.data.posts.map((p: { text: string }) => p.text), ['hello, cluster', 'It is noon'], 'one history for the room')

    server.kill('SIGTERM')
    const [code] = await exited
    t.equal(code, 0, 'SIGTERM: a clean exit')
  })
}
