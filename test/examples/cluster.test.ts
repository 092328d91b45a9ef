// The cluster example end to end, in one process: two chat nodes (examples/chat) on the
// Redis broker sharing one Redis, people on each, and the worker of examples/cluster
// posting through the publisher.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { RedisBroker } from '../../lib/redis.js'
import { buildChat } from '../../examples/chat/app.js'
import { announce, chatPublisher } from '../../examples/cluster/worker.js'
import { connect, type TestClient, type TestContext } from '../fixtures/helpers.js'
import { REDIS_URL, dropKeys, reachable, requireOrSkip, uniquePrefix } from '../fixtures/redis.js'

if (requireOrSkip(t, await reachable(), `Redis is not reachable at ${REDIS_URL}`)) {
  const prefix = uniquePrefix('example')
  t.teardown(() => dropKeys(REDIS_URL, prefix))

  async function chatNode (t: TestContext): Promise<{ app: FastifyInstance, url: string }> {
    const broker = new RedisBroker({ redis: REDIS_URL, prefix })
    t.teardown(() => broker.close())
    const app = await buildChat({ broker })
    await app.listen({ port: 0, host: '127.0.0.1' })
    t.teardown(() => app.close())
    const { port } = app.server.address() as { port: number }
    return { app, url: `ws://127.0.0.1:${port}/ws` }
  }

  async function person (t: TestContext, url: string, name: string): Promise<TestClient> {
    const client = await connect(t, url, { welcome: false })
    await client.request('auth', { token: name })
    await client.nextOfType('welcome')
    const reply = await client.request('subscribe', { topic: 'room/general' })
    if (reply.type !== 'reply') throw new Error(`could not join: ${JSON.stringify(reply)}`)
    return client
  }

  t.test('two chat nodes on one Redis, and a worker posting into their rooms', async (t) => {
    const one = await chatNode(t)
    const two = await chatNode(t)
    const ann = await person(t, one.url, 'ann')
    const bob = await person(t, two.url, 'bob')

    const joined = await ann.nextOfType('join')
    t.same((joined.member as { user: unknown }).user, { id: 'bob', name: 'bob' }, 'ann, on node 1, sees bob join on node 2')
    const who = await bob.request('presence', { topic: 'room/general' })
    t.same(who.data.members.map((m: { user: { id: string } }) => m.user.id).sort(), ['ann', 'bob'], 'presence spans both nodes')

    const sent = await ann.request('chat.send', { room: 'general', text: 'hello from node 1' })
    t.equal(sent.type, 'reply')
    // The room's own "joined" notices come first in its stream.
    const atBob = await bob.next((f) => f.type === 'message' && f.data.kind === 'chat')
    t.equal(atBob.data.text, 'hello from node 1', 'bob gets it on node 2')
    t.equal(atBob.offset, 3, 'after "ann joined" and "bob joined"')

    const publisher = chatPublisher(REDIS_URL, prefix)
    t.teardown(() => publisher.close())
    const { offset } = await announce(publisher, 'general', 'It is noon')
    t.equal(offset, 4, 'the worker continues the room\'s offsets')
    for (const client of [ann, bob]) {
      const post = await client.next((f) => f.type === 'message' && f.data.user?.id === 'clock-bot')
      t.same([post.offset, post.data.text], [4, 'It is noon'])
    }
    const history = await bob.request('chat.history', { room: 'general' })
    t.same(history.data.posts.map((p: { text: string }) => p.text), ['hello from node 1', 'It is noon'], 'one history for the room')
  })
}
