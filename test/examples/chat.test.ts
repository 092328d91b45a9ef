// The chat example (examples/chat) end to end: a real server on an ephemeral port and
// real `ws` clients speaking realtime.v1, the way the browser page does.
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildChat } from '../../examples/chat/app.js'
import { connect, type TestClient, type TestContext } from '../fixtures/helpers.js'

interface Started {
  app: FastifyInstance
  url: string
  base: string
}

async function start (t: TestContext): Promise<Started> {
  const app = await buildChat()
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }
  return { app, url: `ws://127.0.0.1:${port}/ws`, base: `http://127.0.0.1:${port}` }
}

/** Connects and authenticates as `name`; checks the auth reply and waits for `welcome`. */
async function signIn (t: Test, url: string, name: string): Promise<{ client: TestClient, connectionId: string }> {
  const client = await connect(t, url, { welcome: false })
  const reply = await client.request('auth', { token: name })
  t.same(reply, { type: 'reply', id: reply.id, data: { user: { id: name, name } } }, `${name} is signed in`)
  const welcome = await client.nextOfType('welcome')
  t.type(welcome.data.connectionId, 'string', 'welcome carries the connection id')
  return { client, connectionId: welcome.data.connectionId }
}

async function join (t: Test, client: TestClient, room: string): Promise<void> {
  const reply = await client.request('subscribe', { topic: `room/${room}` })
  t.equal(reply.type, 'reply', `joined room/${room}`)
  t.equal(reply.data.topic, `room/${room}`)
}

/** A room message other than a "joined"/"left" notice (those are tested on their own below). */
function isPost (f: { type: string, data?: { kind?: string } }): boolean {
  return f.type === 'message' && f.data?.kind !== 'notice'
}

/** Closes a client and waits for the close handshake, so every test ends on its own. */
async function bye (...clients: TestClient[]): Promise<void> {
  await Promise.all(clients.map(async (client) => {
    client.close()
    await client.closed
  }))
}

t.test('GET / serves the chat page', async (t) => {
  const { base } = await start(t)
  const res = await fetch(`${base}/`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/html/)
  const html = await res.text()
  t.match(html, /<!doctype html>/i)
  for (const id of ['name', 'signin', 'room', 'join', 'text', 'send', 'messages', 'typing', 'status']) {
    t.match(html, new RegExp(`id="${id}"`), `the page has #${id}`)
  }
  t.match(html, /realtime\.v1/, 'the page speaks the protocol')
})

t.test('a chat post reaches the room and the sender gets { id, at }', async (t) => {
  const { url } = await start(t)
  const alice = await signIn(t, url, 'Alice')
  const bob = await signIn(t, url, 'Bob the 2nd')
  await join(t, alice.client, 'general')
  await join(t, bob.client, 'general')

  const before = Date.now()
  const reply = await alice.client.request('chat.send', { room: 'general', text: 'hello <b>world</b>' })
  t.equal(reply.type, 'reply')
  t.type(reply.data.id, 'string')
  t.type(reply.data.at, 'number')
  t.ok(reply.data.at >= before && reply.data.at <= Date.now(), 'at is the server time of the post')
  t.same(Object.keys(reply.data).sort(), ['at', 'id'], 'the reply holds exactly id and at')

  const expected = {
    kind: 'chat',
    id: reply.data.id,
    user: { id: 'Alice', name: 'Alice' },
    text: 'hello <b>world</b>',
    at: reply.data.at
  }
  const received = await bob.client.next(isPost)
  t.equal(received.topic, 'room/general')
  t.type(received.offset, 'number')
  t.same(received.data, expected, 'Bob receives the post as it was sent')

  const echoed = await alice.client.next(isPost)
  t.same(echoed.data, expected, 'the sender, being in the room, sees its own post too')
  t.equal(echoed.offset, received.offset)

  await bye(alice.client, bob.client)
})

t.test('typing reaches the others in the room, not the typer', async (t) => {
  const { url } = await start(t)
  const alice = await signIn(t, url, 'alice')
  const bob = await signIn(t, url, 'bob')
  await join(t, alice.client, 'general')
  await join(t, bob.client, 'general')

  const typingReply = await alice.client.request('chat.typing', { room: 'general', typing: true })
  t.same(typingReply, { type: 'reply', id: typingReply.id }, 'chat.typing has no reply data')

  const notice = await bob.client.next(isPost)
  t.equal(notice.topic, 'room/general')
  t.same(notice.data, { kind: 'typing', user: { id: 'alice', name: 'alice' }, typing: true })

  // Publications on a topic arrive in offset order. Alice posts after typing; if the
  // first publication she receives is that post, the typing notice was never sent to her.
  const sent = await alice.client.request('chat.send', { room: 'general', text: 'done typing' })
  const first = await alice.client.next(isPost)
  t.equal(first.data.kind, 'chat', 'the typer received no typing notice of its own')
  t.equal(first.data.id, sent.data.id)
  t.equal(notice.ephemeral, true, 'typing is ephemeral')
  t.notOk('offset' in notice, 'it takes no offset in the room\'s stream')

  const post = await bob.client.next(isPost)
  t.equal(post.data.id, sent.data.id, 'Bob gets the post after the typing notice')

  // Stopping is published the same way.
  bob.client.send({ type: 'chat.typing', data: { room: 'general', typing: false } })
  const stopped = await alice.client.next(isPost)
  t.same(stopped.data, { kind: 'typing', user: { id: 'bob', name: 'bob' }, typing: false })

  await bye(alice.client, bob.client)
})

t.test('a bad name is refused with close code 4500', async (t) => {
  const { url } = await start(t)
  const bad = ['', ' ', ' padded', 'trailing ', 'x'.repeat(33), 'a/b', '<script>', 'semi;colon']
  for (const name of bad) {
    const client = await connect(t, url, { welcome: false })
    client.send({ type: 'auth', id: 1, data: { token: name } })
    const { code } = await client.closed
    t.equal(code, 4500, `${JSON.stringify(name)} is refused`)
    t.notOk(client.frames.some((f) => f.type === 'welcome'), 'and never welcomed')
  }
  // The longest and the most varied acceptable names pass.
  for (const name of ['x'.repeat(32), 'Zoë_van-Dijk 2']) {
    const { client } = await signIn(t, url, name)
    await bye(client)
  }
})

t.test('a frame before auth is answered UNAUTHORIZED; auth still works after', async (t) => {
  const { url } = await start(t)
  const client = await connect(t, url, { welcome: false })
  const answer = await client.request('subscribe', { topic: 'room/general' })
  t.equal(answer.type, 'error')
  t.equal(answer.error?.code, 'UNAUTHORIZED')

  const routed = await client.request('chat.send', { room: 'general', text: 'hi' })
  t.equal(routed.error?.code, 'UNAUTHORIZED', 'application routes too')

  const reply = await client.request('auth', { token: 'late' })
  t.same(reply.data, { user: { id: 'late', name: 'late' } })
  await client.nextOfType('welcome')
  await bye(client)
})

t.test('posting or typing in a room not joined is NOT_IN_ROOM', async (t) => {
  const { url } = await start(t)
  const { client } = await signIn(t, url, 'carol')
  await join(t, client, 'general')

  const post = await client.request('chat.send', { room: 'random', text: 'anyone?' })
  t.equal(post.type, 'error')
  t.equal(post.error?.code, 'NOT_IN_ROOM')
  t.same(post.error?.details, { room: 'random' })

  const typing = await client.request('chat.typing', { room: 'random', typing: true })
  t.equal(typing.error?.code, 'NOT_IN_ROOM')
  t.same(typing.error?.details, { room: 'random' })

  // After leaving a room, posting to it is refused as well.
  const left = await client.request('unsubscribe', { topic: 'room/general' })
  t.same(left.data, {})
  const after = await client.request('chat.send', { room: 'general', text: 'still here?' })
  t.equal(after.error?.code, 'NOT_IN_ROOM')
  t.same(after.error?.details, { room: 'general' })
  await bye(client)
})

t.test('schemas guard the routes and the room names', async (t) => {
  const { url } = await start(t)
  const { client } = await signIn(t, url, 'dave')
  await join(t, client, 'general')

  const empty = await client.request('chat.send', { room: 'general', text: '' })
  t.equal(empty.error?.code, 'VALIDATION_FAILED', 'empty text')
  const long = await client.request('chat.send', { room: 'general', text: 'x'.repeat(2001) })
  t.equal(long.error?.code, 'VALIDATION_FAILED', 'text over 2000 characters')
  const longest = await client.request('chat.send', { room: 'general', text: 'x'.repeat(2000) })
  t.equal(longest.type, 'reply', 'text of exactly 2000 characters')
  const badRoom = await client.request('chat.send', { room: 'General!', text: 'hi' })
  t.equal(badRoom.error?.code, 'VALIDATION_FAILED', 'room name outside the pattern')
  const notBool = await client.request('chat.typing', { room: 'general', typing: 'yes' })
  t.equal(notBool.error?.code, 'VALIDATION_FAILED', 'typing must be a boolean')

  const forbidden = await client.request('subscribe', { topic: 'room/Not Valid' })
  t.equal(forbidden.error?.code, 'FORBIDDEN', 'a room name outside the pattern cannot be joined')
  const unknown = await client.request('subscribe', { topic: 'lobby' })
  t.equal(unknown.error?.code, 'FORBIDDEN', 'nor can an undeclared topic')
  const clientPublish = await client.request('publish', { topic: 'room/general', data: { kind: 'chat' } })
  t.equal(clientPublish.error?.code, 'FORBIDDEN', 'clients post through chat.send, not publish')
  await bye(client)
})

t.test('presence and history on join', async (t) => {
  const { url } = await start(t)
  const alice = await signIn(t, url, 'alice')
  await join(t, alice.client, 'general')
  await alice.client.request('chat.send', { room: 'general', text: 'first' })
  await alice.client.request('chat.typing', { room: 'general', typing: true })
  await alice.client.request('chat.send', { room: 'general', text: 'second' })
  const bob = await signIn(t, url, 'bob')
  await join(t, bob.client, 'general')
  const joined = await alice.client.nextOfType('join')
  t.same((joined.member as any).user, { id: 'bob', name: 'bob' }, 'alice sees bob join')
  const members = (await bob.client.request('presence', { topic: 'room/general' })).data.members
  t.same(members.map((m: any) => m.user.name).sort(), ['alice', 'bob'])
  const history = await bob.client.request('chat.history', { room: 'general' })
  t.same(history.data.posts.map((p: any) => p.text), ['first', 'second'], 'recent posts, typing excluded')
  await bye(bob.client)
  t.equal(((await alice.client.nextOfType('leave')).member as any).user.name, 'bob', 'alice sees bob leave')
  await bye(alice.client)
})

t.test('hooks: "joined"/"left" once per user, and a user is online while any tab is open', async (t) => {
  const { url } = await start(t)
  const bob = await signIn(t, url, 'bob')
  t.same((await bob.client.request('subscribe', { topic: 'online' })).type, 'reply')
  await join(t, bob.client, 'general')
  t.same((await bob.client.request('people.online')).data, { users: [{ id: 'bob', name: 'bob' }] })
  t.equal((await bob.client.request('people.online', {})).error?.code, 'VALIDATION_FAILED', 'a route without data takes none')

  const ann1 = await signIn(t, url, 'ann')
  t.same((await bob.client.next((f) => f.topic === 'online')).data, { user: { id: 'ann', name: 'ann' }, online: true }, 'ann comes online')
  const ann2 = await signIn(t, url, 'ann')
  await join(t, ann1.client, 'general')
  const aboutAnn = (f: { type: string, data?: { kind?: string, user?: { id: string } } }): boolean => f.type === 'message' && f.data?.kind === 'notice' && f.data.user?.id === 'ann'
  const joined = await bob.client.next(aboutAnn)
  t.same({ ...joined.data, at: 0 }, { kind: 'notice', user: { id: 'ann', name: 'ann' }, event: 'joined', at: 0 })
  await join(t, ann2.client, 'general')
  t.same((await bob.client.request('people.online')).data.users.map((u: { id: string }) => u.id).sort(), ['ann', 'bob'])

  // The first tab goes: ann is still online and still in the room.
  await bye(ann1.client)
  t.same((await bob.client.request('people.online')).data.users.map((u: { id: string }) => u.id).sort(), ['ann', 'bob'])
  // The second goes too: one "left", one "offline", each once.
  await bye(ann2.client)
  const left = await bob.client.next(aboutAnn)
  t.equal(left.data.event, 'left')
  t.same((await bob.client.next((f) => f.topic === 'online')).data, { user: { id: 'ann', name: 'ann' }, online: false })
  t.same((await bob.client.request('people.online')).data, { users: [{ id: 'bob', name: 'bob' }] })
  t.equal(bob.client.frames.filter((f) => f.topic === 'online' || aboutAnn(f)).length, 0, 'nothing told twice')
  await bye(bob.client)
})

t.test('the chat serves its metrics at /metrics and the dashboard at /dashboard', async (t) => {
  const { base, url } = await start(t)
  const { client } = await signIn(t, url, 'ann')
  await join(t, client, 'general')
  const metrics = await fetch(`${base}/metrics`)
  t.match(metrics.headers.get('content-type'), /^text\/plain/)
  const text = await metrics.text()
  t.match(text, /realtime_connections\{state="open"\} 1/)
  t.match(text, /realtime_subscriptions\{pattern="room\/:name"\} 1/)
  t.match(text, /realtime_messages_received_total\{type="auth"\} 1/)
  const dashboard = await fetch(`${base}/dashboard`)
  t.equal(dashboard.status, 200)
  t.match(await dashboard.text(), /data-auth="token"/, 'the page signs in by message, as this server requires')
  const token = await (await fetch(`${base}/dashboard/api/token`)).json() as { token: string }
  const watcher = await connect(t, url, { welcome: false })
  t.equal((await watcher.request('auth', token)).type, 'reply', 'the dashboard token signs in')
  t.equal((await watcher.request('subscribe', { topic: '$realtime/dashboard' })).type, 'reply')
  await bye(client, watcher)
})
