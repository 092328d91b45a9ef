import t from 'tap'
import { Type } from '@sinclair/typebox'
import { WebSocket } from 'ws'
import { build, connect, until, TestClient } from '../fixtures/helpers.js'

async function setup (t: any, options = {}) {
  return build(t, options, (app) => {
    app.addHook('onRequest', async (request) => {
      const name = request.headers['x-user']
      if (name !== undefined) (request as unknown as { user: unknown }).user = { id: name, secret: 'not for the wire' }
    })
    app.realtime.topic('room/:name', {
      message: Type.Object({ text: Type.String() }),
      presence: { meta: Type.Object({ status: Type.Union([Type.Literal('online'), Type.Literal('away')]), device: Type.Optional(Type.String()) }), maxMetaBytes: 64 },
      authorize: ({ action, params }) => !(action === 'presence' && params.name === 'private')
    })
    app.realtime.topic('plain', { message: Type.Object({}) })
    app.realtime.topic('bare', { message: Type.Object({}), presence: true })
  })
}

t.test('subscribers hear join and leave; presence lists members with user and meta', async (t) => {
  const { app, url } = await setup(t)
  const ann = await connect(t, url, { headers: { 'x-user': 'ann' } })
  const bob = await connect(t, url, { headers: { 'x-user': 'bob' } })
  await ann.request('subscribe', { topic: 'room/a', meta: { status: 'online', device: 'phone', extra: 'dropped' } })
  const [annId, bobId] = [app.realtime.connections.byUser('ann')[0].id, app.realtime.connections.byUser('bob')[0].id]
  await bob.request('subscribe', { topic: 'room/a', meta: { status: 'away' } })
  const join = await ann.nextOfType('join')
  t.same(join, { type: 'join', topic: 'room/a', member: { connectionId: bobId, user: { id: 'bob' }, meta: { status: 'away' } } }, 'user by userSchema, meta by its schema')
  const list = await bob.request('presence', { topic: 'room/a' })
  const members = list.data.members.sort((x: any, y: any) => x.user.id.localeCompare(y.user.id))
  t.same(members, [
    { connectionId: annId, user: { id: 'ann' }, meta: { status: 'online', device: 'phone' } },
    { connectionId: bobId, user: { id: 'bob' }, meta: { status: 'away' } }
  ])
  await bob.request('unsubscribe', { topic: 'room/a' })
  t.same((await ann.nextOfType('leave')).member, { connectionId: bobId, user: { id: 'bob' }, meta: { status: 'away' } })
  t.equal((await ann.request('presence', { topic: 'room/a' })).data.members.length, 1)
  bob.send({ type: 'ping', id: 1 })
  await bob.nextOfType('pong')
  t.equal(bob.frames.filter((f) => f.type === 'join' || f.type === 'leave').length, 0, 'a member does not hear its own join')
})

t.test('a connection that dies leaves every topic exactly once', async (t) => {
  const { app, url } = await setup(t, { heartbeat: { interval: 100, timeout: 100 } })
  const watcher = await connect(t, url, { headers: { 'x-user': 'w' } })
  await watcher.request('subscribe', { topic: 'room/a' })
  await watcher.request('subscribe', { topic: 'bare' })
  // One that closes, one that goes silent (no pongs), one that errors at the socket.
  const closer = await connect(t, url, { headers: { 'x-user': 'closer' } })
  const silentWs = new WebSocket(url, 'realtime.v1', { autoPong: false, headers: { 'x-user': 'silent' } })
  const silent = new TestClient(silentWs)
  t.teardown(() => silentWs.terminate())
  await silent.nextOfType('welcome')
  const breaker = await connect(t, url, { headers: { 'x-user': 'breaker' } })
  for (const c of [closer, silent, breaker]) {
    c.send({ type: 'subscribe', id: 1, data: { topic: 'room/a' } })
    await c.next((f) => f.id === 1)
    c.send({ type: 'subscribe', id: 2, data: { topic: 'bare' } })
    await c.next((f) => f.id === 2)
  }
  closer.close()
  ;(breaker.ws as unknown as { _socket: { destroy: () => void } })._socket.destroy()
  await until(() => app.realtime.connections.size === 1, 5000)
  // Give any duplicate leave a chance to arrive before counting.
  watcher.send({ type: 'ping', id: 'p' })
  await watcher.nextOfType('pong')
  for (const topic of ['room/a', 'bare']) {
    const leaves = watcher.frames.filter((f) => f.type === 'leave' && f.topic === topic).map((f) => (f.member as any).user.id).sort()
    t.same(leaves, ['breaker', 'closer', 'silent'], `${topic}: one leave each`)
  }
  t.same((await watcher.request('presence', { topic: 'bare' })).data.members.map((m: any) => m.user.id), ['w'])
})

t.test('presence errors: no presence, refused, bad meta, meta too big', async (t) => {
  const { url } = await setup(t)
  const c = await connect(t, url)
  t.equal((await c.request('presence', { topic: 'plain' })).error?.code, 'FORBIDDEN', 'a topic without presence')
  t.equal((await c.request('presence', { topic: 'room/private' })).error?.code, 'FORBIDDEN', 'authorize said no to presence')
  t.same((await c.request('presence', { topic: 'bare' })).data, { members: [] })
  const bad = await c.request('subscribe', { topic: 'room/a', meta: { status: 'asleep' } })
  t.equal(bad.error?.code, 'VALIDATION_FAILED')
  t.match(bad.error?.details[0].path, /^\/meta/)
  t.equal((await c.request('subscribe', { topic: 'bare', meta: { x: 1 } })).error?.code, 'VALIDATION_FAILED', 'meta where the topic takes none')
  const big = await c.request('subscribe', { topic: 'room/a', meta: { status: 'online', device: 'd'.repeat(60) } })
  t.equal(big.error?.code, 'LIMIT_EXCEEDED', 'meta over maxMetaBytes')
  const fits = await c.request('subscribe', { topic: 'room/a', meta: { status: 'online', device: 'd'.repeat(20) } })
  t.equal(fits.type, 'reply', 'meta within the limit')
  t.equal((await c.request('presence', { topic: 'room/a' })).data.members[0].user, undefined, 'an anonymous member has no user')
})
