// The client (lib/client) against a real server built with the plugin: typed
// requests, replies and errors, the request queue, topics, events, authentication
// and closing. Reconnection and recovery across restarts: client-restart.test.ts.
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { Type } from '@sinclair/typebox'
import { WebSocket } from 'ws'
import realtime, { type RealtimeOptions, CloseCode, ErrorCode, SUBPROTOCOL as SERVER_SUBPROTOCOL, UnsubscribeCode as ServerUnsubscribeCode, shouldReconnect as serverShouldReconnect } from '../../lib/index.js'
import { CLIENT_BUILTINS as SERVER_CLIENT_BUILTINS } from '../../lib/protocol/constants.js'
import {
  createClient, defineContract, isRealtimeClientError, RealtimeClient, RealtimeClientError, shouldReconnect, SUBPROTOCOL, UnsubscribeCode,
  type ClientOptions, type ClientState, type Contract
} from '../../lib/client/index.js'
import { CLIENT_BUILTINS } from '../../lib/client/protocol.js'
import { fromWire } from '../../lib/client/errors.js'

const Room = Type.String({ pattern: '^[a-z0-9-]{1,32}$' })

const contract = defineContract({
  routes: {
    echo: {
      data: Type.Object({ text: Type.String({ minLength: 1 }) }),
      reply: Type.Object({ text: Type.String(), user: Type.Optional(Type.String()) })
    },
    'room.post': {
      data: Type.Object({ room: Room, n: Type.Integer() }),
      reply: Type.Object({ offset: Type.Integer() }),
      errors: { NOT_IN_ROOM: Type.Object({ room: Type.String() }) }
    },
    wait: { data: Type.Object({ ms: Type.Integer({ minimum: 0 }) }) },
    fire: { data: Type.Object({ n: Type.Integer() }) }
  },
  topics: {
    'room/:name': { params: Type.Object({ name: Room }), message: Type.Object({ n: Type.Integer() }) },
    'wall/:name': { message: Type.Object({ text: Type.String() }) },
    secret: { message: Type.Object({ n: Type.Integer() }) }
  },
  events: {
    notice: Type.Object({ text: Type.String() })
  }
})

interface Server {
  app: FastifyInstance
  url: string
  port: number
  /** Frame types as the server received them, in order (through the route handlers and a frame spy). */
  seen: string[]
}

async function serve (t: Test, options: RealtimeOptions = {}): Promise<Server> {
  const app = Fastify()
  await app.register(realtime, options)
  const seen: string[] = []
  const rt = app.realtime
  rt.route({ type: 'echo', schema: contract.routes.echo, handler: (data, ctx) => ({ text: data.text, user: (ctx.user as { id?: string } | undefined)?.id }) })
  rt.route({
    type: 'room.post',
    schema: contract.routes['room.post'],
    handler: async (data, ctx) => {
      seen.push(`room.post ${data.n}`)
      if (!ctx.connection.isSubscribed(`room/${data.room}`)) throw ctx.error('NOT_IN_ROOM', { room: data.room }, 'Join first')
      const { offset } = await ctx.publish(`room/${data.room}`, { n: data.n })
      return { offset }
    }
  })
  rt.route({ type: 'wait', schema: contract.routes.wait, handler: async (data) => { seen.push(`wait ${data.ms}`); await new Promise((resolve) => setTimeout(resolve, data.ms)) } })
  rt.route({ type: 'fire', schema: contract.routes.fire, handler: (data) => { seen.push(`fire ${data.n}`) } })
  rt.topic('room/:name', contract.topics['room/:name'])
  rt.topic('wall/:name', { ...contract.topics['wall/:name'], clientPublish: true })
  rt.topic('secret', { ...contract.topics.secret, authorize: () => false })
  rt.event('notice', contract.events.notice)
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const port = (app.server.address() as { port: number }).port
  return { app, url: `ws://127.0.0.1:${port}/ws`, port, seen }
}

function client<C extends Contract = typeof contract> (t: Test, url: string, options: Partial<ClientOptions<C>> = {}): RealtimeClient<C> {
  const c = createClient<C>({ url, WebSocket, backoff: { initialDelay: 50, maxDelay: 200 }, ...options })
  t.teardown(() => c.close())
  return c
}

function once<T> (c: RealtimeClient<any>, event: string, match: (value: T) => boolean = () => true): Promise<T> {
  return new Promise((resolve) => {
    const off = c.on(event as 'state', ((value: T) => {
      if (!match(value)) return
      off()
      resolve(value)
    }) as never)
  })
}

/** A WebSocket class that keeps its instances, so a test can cut one as a network would. */
function tracked (sockets: WebSocket[]): ClientOptions['WebSocket'] {
  return class extends WebSocket {
    constructor (url: string, protocols?: string | string[]) {
      super(url, protocols)
      sockets.push(this)
    }
  } as unknown as ClientOptions['WebSocket']
}

const opened = (c: RealtimeClient<any>): Promise<unknown> => c.state === 'open' ? Promise.resolve() : once(c, 'state', (s) => s === 'open')

async function until (cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const start = Date.now()
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

async function rejection (promise: Promise<unknown>): Promise<RealtimeClientError> {
  try {
    await promise
  } catch (err) {
    return err as RealtimeClientError
  }
  throw new Error('expected a rejection')
}

// ------------------------------------------------------------------ pieces

t.test('the client\'s protocol constants agree with the server\'s', async (t) => {
  t.equal(SUBPROTOCOL, SERVER_SUBPROTOCOL)
  t.same({ ...UnsubscribeCode }, { ...ServerUnsubscribeCode })
  t.same([...CLIENT_BUILTINS].sort(), [...SERVER_CLIENT_BUILTINS].sort())
  for (let code = 0; code <= 5000; code++) {
    if (shouldReconnect(code) !== serverShouldReconnect(code)) t.fail(`shouldReconnect(${code}) differs`)
  }
  for (const code of [1001, 1006, 1012, 1013, 4000, 4010, 4499]) t.ok(shouldReconnect(code), `${code} reconnects`)
  for (const code of [1000, 1002, 1008, 1009, 4500, 4503, 4999, 3000]) t.notOk(shouldReconnect(code), `${code} stays closed`)
  for (const code of Object.values(ErrorCode)) t.equal(fromWire({ code, message: 'm' }).code, code)
})

t.test('defineContract returns its argument and checks its shape', async (t) => {
  const c = { routes: { a: { data: Type.Object({}) } } }
  t.equal(defineContract(c), c)
  t.same(defineContract({}), {})
  const bad: Array<[unknown, RegExp]> = [
    [null, /the contract must be an object/],
    [{ routes: [] }, /"routes" must be an object/],
    [{ routes: { '9x': { data: {} } } }, /route "9x" is not a valid name/],
    [{ routes: { a: 5 } }, /route "a" is not an object of schemas/],
    [{ routes: { a: { data: 5 } } }, /route "a" has a `data` that is not a schema/],
    [{ routes: { a: { data: {}, reply: 'x' } } }, /route "a" has a `reply`/],
    [{ routes: { a: { data: {}, errors: 1 } } }, /route "a" has `errors`/],
    [{ routes: { a: { data: {}, errors: { E: null } } } }, /error "E" is not a schema/],
    [{ topics: { 'a//b': { message: {} } } }, /topic "a\/\/b" is not a valid pattern/],
    [{ topics: { 'a/:1': { message: {} } } }, /topic "a\/:1" is not a valid pattern/],
    [{ topics: { a: {} } }, /topic "a" needs a `message` schema/],
    [{ topics: { a: { message: {}, params: 2 } } }, /topic "a" has `params`/],
    [{ events: { 'no way': {} } }, /event "no way" is not a valid name/],
    [{ events: { e: true } }, /event "e" is not a schema/]
  ]
  for (const [value, message] of bad) t.throws(() => defineContract(value as Contract), { name: 'TypeError', code: 'FST_REALTIME_INVALID_CONTRACT', message })
})

t.test('createClient checks its options', async (t) => {
  const url = 'ws://127.0.0.1:1/ws'
  t.throws(() => createClient(undefined as never), /options are required/)
  t.throws(() => createClient({ url: '' }), /url is required/)
  const saved = (globalThis as { WebSocket?: unknown }).WebSocket
  delete (globalThis as { WebSocket?: unknown }).WebSocket
  try {
    t.throws(() => createClient({ url }), /no WebSocket available; pass the `WebSocket` option/)
  } finally {
    if (saved !== undefined) (globalThis as { WebSocket?: unknown }).WebSocket = saved
  }
  const base = { url, WebSocket, autoConnect: false }
  t.throws(() => createClient({ ...base, getToken: 'x' as never }), /getToken must be a function/)
  t.throws(() => createClient({ ...base, requestTimeout: 0 }), /requestTimeout must be a positive number/)
  t.throws(() => createClient({ ...base, maxQueue: -1 }), /maxQueue must be a positive number/)
  t.throws(() => createClient({ ...base, connectTimeout: Infinity }), /connectTimeout must be a positive number/)
  t.throws(() => createClient({ ...base, backoff: { maxDelay: -1 } }), /backoff.maxDelay must be a finite number >= 0/)
  t.throws(() => createClient({ ...base, backoff: { factor: 0.5 } }), /backoff.factor must be >= 1/)
  t.throws(() => createClient({ ...base, backoff: { minDelay: 10, maxDelay: 5 } }), /maxDelay must be >= backoff.minDelay/)
  t.throws(() => createClient({ ...base, backoff: { random: 1 as never } }), /backoff.random must be a function/)
  const idle = createClient({ ...base, maxQueue: 0 })
  t.equal(idle.state, 'closed', 'autoConnect: false leaves it closed')
  t.rejects(idle.request('echo', { text: 'x' }), { code: 'CLOSED' }, 'a closed client refuses requests at once')
  await t.rejects(idle.request('subscribe' as never, {} as never), { name: 'TypeError', message: /use subscribe\(\)/ })
  t.throws(() => idle.send('ping' as never, undefined as never), /not a route name/)
  t.equal(idle.send('echo', { text: 'x' }), false, 'fire-and-forget while disconnected sends nothing')
  t.throws(() => idle.subscribe('' as never, () => {}), /non-empty string/)
  t.throws(() => idle.subscribe('room/a', 'no' as never), /listener must be a function/)
  t.throws(() => idle.on('state', 'no' as never), /listener must be a function/)
  await idle.close()
  // Relative URLs are resolved against the page's location in a browser.
  ;(globalThis as { location?: unknown }).location = { protocol: 'https:', host: 'chat.example:8443' }
  try {
    t.equal(createClient({ url: '/ws', WebSocket, autoConnect: false }).url, 'wss://chat.example:8443/ws')
    ;(globalThis as { location?: unknown }).location = { protocol: 'http:', host: 'localhost' }
    t.equal(createClient({ url: '/ws', WebSocket, autoConnect: false }).url, 'ws://localhost/ws')
  } finally {
    delete (globalThis as { location?: unknown }).location
  }
  t.equal(createClient({ url: '/ws', WebSocket, autoConnect: false }).url, '/ws', 'outside a browser a path stays as given')
})

t.test('the global WebSocket is used when no constructor is given', async (t) => {
  const { url } = await serve(t)
  const saved = (globalThis as { WebSocket?: unknown }).WebSocket
  ;(globalThis as { WebSocket?: unknown }).WebSocket = WebSocket
  t.teardown(() => {
    if (saved === undefined) delete (globalThis as { WebSocket?: unknown }).WebSocket
    else (globalThis as { WebSocket?: unknown }).WebSocket = saved
  })
  const c = createClient({ url, contract })
  t.teardown(() => c.close())
  t.same(await c.request('echo', { text: 'global' }), { text: 'global' })
})

// ------------------------------------------------------------------ requests

t.test('typed request and reply; a route without reply resolves undefined', async (t) => {
  const { url } = await serve(t)
  const c = client(t, url)
  const states: ClientState[] = []
  c.on('state', (s) => { states.push(s) })
  const welcome = once<{ connectionId: string, heartbeat: { interval: number } }>(c, 'welcome')
  t.equal(c.state, 'connecting')
  const reply = await c.request('echo', { text: 'hello' })
  t.same(reply, { text: 'hello' })
  const info = await welcome
  t.type(info.connectionId, 'string')
  t.equal(info.heartbeat.interval, 25000)
  t.equal(c.connectionId, info.connectionId)
  t.equal(await c.request('wait', { ms: 1 }), undefined)
  t.same(states, ['open'])
  await c.close()
  t.same(states, ['open', 'closed'])
  t.equal(c.connectionId, undefined)
})

t.test('errors are RealtimeClientError with code, message, details, temporary', async (t) => {
  const { url } = await serve(t)
  const c = client(t, url)
  const err = await rejection(c.request('room.post', { room: 'lobby', n: 1 }))
  t.ok(c.isError(err, 'room.post'))
  t.ok(isRealtimeClientError(err))
  t.ok(err instanceof Error)
  t.equal(err.name, 'RealtimeClientError')
  t.equal(err.code, 'NOT_IN_ROOM')
  t.equal(err.message, 'Join first')
  t.same(err.details, { room: 'lobby' })
  t.equal(err.temporary, false)
  t.equal(err.retryAfterMs, undefined)
  t.same(JSON.parse(JSON.stringify(err)), { code: 'NOT_IN_ROOM', message: 'Join first', details: { room: 'lobby' }, temporary: false })

  const invalid = await rejection(c.request('echo', { text: '' }))
  t.equal(invalid.code, 'VALIDATION_FAILED')
  t.equal((invalid.details as Array<{ path: string }>)[0].path, '/text')

  const loose = client<Contract>(t, url)
  const unknown = await rejection(loose.request('nope', {}))
  t.equal(unknown.code, 'UNKNOWN_TYPE')
  t.notOk(c.isError(new Error('x')))

  const wire = fromWire({ code: 'RATE_LIMITED', message: 'slow down', temporary: true, retryAfterMs: 250 })
  t.equal(wire.temporary, true)
  t.equal(wire.retryAfterMs, 250)
  t.same(wire.toJSON(), { code: 'RATE_LIMITED', message: 'slow down', temporary: true, retryAfterMs: 250 })
  const odd = fromWire(null)
  t.equal(odd.code, 'INTERNAL')
  t.equal(odd.message, 'INTERNAL')
})

t.test('fire-and-forget messages; their failures come as error events', async (t) => {
  const { url, seen } = await serve(t)
  const c = client(t, url)
  await opened(c)
  t.equal(c.send('fire', { n: 7 }), true)
  await until(() => seen.includes('fire 7'))
  const error = once<RealtimeClientError>(c, 'error')
  c.send('fire', { n: 'x' as never })
  const err = await error
  t.equal(err.code, 'VALIDATION_FAILED')
  // Data JSON cannot carry fails the request, not the client.
  const cyclic: Record<string, unknown> = {}
  cyclic.self = cyclic
  await t.rejects(c.request('echo', cyclic as never), TypeError)
  t.throws(() => c.send('fire', cyclic as never), TypeError)
  t.same(await c.request('echo', { text: 'still fine' }), { text: 'still fine' })
})

t.test('a request times out; the timeout can be set per request', async (t) => {
  const { url } = await serve(t)
  const c = client(t, url, { requestTimeout: 5000 })
  await opened(c)
  const started = Date.now()
  const err = await rejection(c.request('wait', { ms: 1000 }, { timeoutMs: 50 }))
  t.equal(err.code, 'TIMEOUT', 'rejected before the answer came')
  t.equal(err.temporary, true)
  t.same(err.details, { timeoutMs: 50 })
  t.ok(Date.now() - started < 900)
  t.throws(() => c.request('wait', { ms: 1 }, { timeoutMs: -5 }), /timeoutMs must be a positive number/)
  // The late reply to the timed-out request is ignored.
  await new Promise((resolve) => setTimeout(resolve, 1000))
  t.same(await c.request('echo', { text: 'after' }), { text: 'after' })
})

t.test('requests made while disconnected wait in a bounded queue and go out after connecting', async (t) => {
  const { url, seen } = await serve(t)
  const c = client(t, url, { autoConnect: false, maxQueue: 3, requestTimeout: 2000 })
  c.connect() // connecting: not yet welcomed
  const first = c.request('room.post', { room: 'a', n: 1 })
  const sub = c.subscribe('room/a', () => {})
  const second = c.request('room.post', { room: 'a', n: 2 })
  const third = c.request('echo', { text: 'three' })
  t.equal(c.queued, 3)
  const full = await rejection(c.request('echo', { text: 'four' }))
  t.equal(full.code, 'QUEUE_FULL')
  t.equal(full.maybeRan, false, 'never sent: not run')
  t.equal(full.temporary, true)
  t.same(full.details, { maxQueue: 3 })
  // The subscription goes first, so the queued posts find the room joined.
  t.same(await first, { offset: 1 })
  t.same(await second, { offset: 2 })
  t.same(await third, { text: 'three' })
  await sub.ready
  t.same(seen, ['room.post 1', 'room.post 2'])
  t.equal(c.queued, 0)
})

t.test('a queued request does not expire while it waits for a connection; queueTimeout bounds the wait', async (t) => {
  const c = createClient({ url: 'ws://127.0.0.1:9/ws', WebSocket, contract, backoff: { initialDelay: 20, maxDelay: 50 } })
  t.teardown(() => c.close())
  let settled = false
  const waiting = c.request('echo', { text: 'x' }, { timeoutMs: 50 })
  waiting.then(() => { settled = true }, () => { settled = true })
  let attempts = 0
  c.on('attempt', () => { attempts++ })
  await until(() => attempts >= 5)
  t.equal(settled, false, 'still waiting after several failed attempts, well past its timeoutMs')
  t.equal(c.queued, 1)
  t.equal(c.state, 'reconnecting')
  await c.close()
  const closed = await rejection(waiting)
  t.equal(closed.code, 'CLOSED', 'close() fails what waits')
  t.equal(closed.temporary, false)
  t.equal(c.state, 'closed')

  const bounded = createClient({ url: 'ws://127.0.0.1:9/ws', WebSocket, contract, queueTimeout: 150, backoff: { initialDelay: 20 } })
  t.teardown(() => bounded.close())
  const started = Date.now()
  const err = await rejection(bounded.request('echo', { text: 'y' }))
  t.equal(err.code, 'QUEUE_TIMEOUT', 'never sent')
  t.equal(err.temporary, true)
  t.same(err.details, { queueTimeout: 150 })
  t.ok(Date.now() - started >= 140)
  t.equal(bounded.queued, 0, 'and leaves the queue')
  t.throws(() => createClient({ url: 'ws://x/ws', WebSocket, queueTimeout: -1 }), /queueTimeout must be a positive number/)
})

t.test('a request in flight when the connection drops fails with DISCONNECTED', async (t) => {
  const { app, url } = await serve(t)
  const sockets: WebSocket[] = []
  const c = client(t, url, { WebSocket: tracked(sockets) })
  await opened(c)
  const pending = c.request('wait', { ms: 2000 })
  await until(() => app.realtime.connections.size === 1)
  // The socket dies under the request (a server close would answer what it ran first).
  sockets[0].terminate()
  const err = await rejection(pending)
  t.equal(err.code, 'DISCONNECTED')
  t.equal(err.temporary, true)
  t.equal(err.closeCode, 1006)
  t.equal(err.maybeRan, true, 'it may have run: the app decides')
  await once(c, 'state', (s) => s === 'open')
  t.same(await c.request('echo', { text: 'back' }), { text: 'back' })
})

t.test('a server close (4011) answers what it ran before its close frame; what it did not run fails with maybeRan false', async (t) => {
  const { app, url, seen } = await serve(t)
  const c = client(t, url)
  await opened(c)
  const ran = c.request('wait', { ms: 150 })
  await until(() => seen.includes('wait 150'))
  const [connection] = [...app.realtime.connections]
  const closed = once<{ code: number }>(c, 'close')
  app.realtime.disconnect(connection.id, 4011, 'go again')
  // Sent after the server decided to close, before its close frame came: not run.
  const late = rejection(c.request('room.post', { room: 'a', n: 9 }))
  t.equal(await ran, undefined, 'the request in flight was answered before the close')
  t.equal((await closed).code, 4011)
  const err = await late
  t.equal(err.code, 'DISCONNECTED')
  t.equal(err.closeCode, 4011)
  t.equal(err.maybeRan, false, 'a request the server left unanswered before such a close was not run')
  t.notOk(seen.includes('room.post 9'), 'and the server did not run it')
})

t.test('close() fails requests in flight with CLOSED and leaves no timer', async (t) => {
  const { url } = await serve(t)
  const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
  const before = timers()
  const c = createClient({ url, WebSocket, contract, keepAlive: true, heartbeat: { interval: 1000, timeout: 1000 } })
  t.teardown(() => c.close())
  await opened(c)
  const sub = c.subscribe('room/a', () => {})
  await sub.ready
  const pending = rejection(c.request('wait', { ms: 100 }))
  t.ok(timers() > before, 'timers run while open')
  const events: unknown[] = []
  c.on('close', (e) => { events.push(e) })
  await c.close()
  const err = await pending
  t.equal(err.code, 'CLOSED')
  t.equal(err.maybeRan, true, 'written before the client closed: it may have run')
  t.same(events, [{ code: 1000, reason: 'client closed', reconnect: false }])
  await new Promise((resolve) => setTimeout(resolve, 150)) // the server's own timer of `wait`
  t.equal(timers(), before, 'no timer of the client is left')
  await c.close() // twice is fine
  t.same(events.length, 1)
  // connect() after close() resumes, subscriptions included.
  c.connect()
  await opened(c)
  t.same(c.subscriptions.map((s) => s.topic), ['room/a'])
  await until(() => c.subscriptions[0].active)
  await c.close()
})

// ------------------------------------------------------------------ authentication

t.test('getToken is called for every connection; a refused token closes with 4500 and stays closed', async (t) => {
  const tokens: string[] = []
  const { url } = await serve(t, {
    authenticate: (token) => {
      tokens.push(token)
      return token.startsWith('alice') ? { user: { id: 'alice' } } : null
    }
  })
  let calls = 0
  const c = client(t, url, { getToken: async () => `alice-${++calls}` })
  t.same(await c.request('echo', { text: 'who' }), { text: 'who', user: 'alice' })
  t.same(c.user, { id: 'alice' })
  await c.reauthenticate()
  t.same(tokens, ['alice-1', 'alice-2'], 'reauthenticate sends a fresh token on the live connection')
  t.same(await c.request('echo', { text: 'who' }), { text: 'who', user: 'alice' })

  const attempts: number[] = []
  const bad = client(t, url, { getToken: () => 'bad', autoConnect: false })
  bad.on('attempt', ({ attempt }) => { attempts.push(attempt) })
  const errors: RealtimeClientError[] = []
  bad.on('error', (err) => { errors.push(err as RealtimeClientError) })
  bad.connect()
  const pending = rejection(bad.request('echo', { text: 'x' }))
  const closed = await once<{ code: number, reconnect: boolean }>(bad, 'close')
  t.equal(closed.code, CloseCode.UNAUTHORIZED)
  t.equal(closed.reconnect, false)
  t.equal(bad.state, 'closed')
  t.equal((await pending).code, 'CLOSED')
  t.equal(errors[0]?.code, 'UNAUTHORIZED', 'the refusal is told')
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.same(attempts, [1], 'no second attempt')
  await t.rejects(bad.reauthenticate(), { code: 'DISCONNECTED' })
})

t.test('a getToken that fails is retried with a new connection; null sends no auth', async (t) => {
  const { url } = await serve(t, { authenticate: (token) => ({ user: { id: token } }), authTimeout: 200 })
  let calls = 0
  const c = client(t, url, {
    getToken: () => {
      calls++
      if (calls === 1) throw new Error('token service down')
      return Promise.resolve('fresh')
    }
  })
  const errors: Error[] = []
  c.on('error', (err) => { errors.push(err) })
  t.same(await c.request('echo', { text: 'x' }), { text: 'x', user: 'fresh' })
  t.equal(errors[0]?.message, 'token service down')
  t.equal(calls, 2)

  const silent = client(t, url, { getToken: () => null })
  const closed = await once<{ code: number }>(silent, 'close')
  t.equal(closed.code, CloseCode.AUTH_TIMEOUT, 'no token, no auth: the server times the connection out')
})

t.test('getToken on a server that does not authenticate by message is told as an error', async (t) => {
  const { url } = await serve(t)
  const c = client(t, url, { getToken: () => 'unused' })
  const err = await once<RealtimeClientError>(c, 'error')
  t.equal(err.code, 'BAD_REQUEST')
  t.same(await c.request('echo', { text: 'works anyway' }), { text: 'works anyway' })
})

// ------------------------------------------------------------------ topics and events

t.test('subscribe: typed messages with meta, shared by listeners, left with the last one', async (t) => {
  const { app, url } = await serve(t)
  const c = client(t, url)
  const a: number[] = []
  const b: number[] = []
  const metas: unknown[] = []
  const offA = c.subscribe('room/a', (message, meta) => { a.push(message.n); metas.push(meta) })
  const offB = c.subscribe('room/a', (message) => { b.push(message.n) })
  const info = await offA.ready
  t.equal(info.topic, 'room/a')
  t.equal(info.offset, 0)
  t.type(info.epoch, 'string')
  t.equal(offB.ready, offA.ready)
  t.equal(offA.topic, 'room/a')
  t.same(app.realtime.stats().topics, { 'room/a': 1 }, 'one subscription on the wire')
  await app.realtime.publish('room/a', { n: 1 })
  await until(() => a.length === 1 && b.length === 1)
  t.same(metas[0], { topic: 'room/a', offset: 1, epoch: info.epoch, ephemeral: false })
  await app.realtime.publish('room/a', { n: 2 }, { ephemeral: true })
  await until(() => a.length === 2)
  t.same(metas[1], { topic: 'room/a', offset: undefined, epoch: undefined, ephemeral: true })
  t.same(c.subscriptions, [{ topic: 'room/a', active: true, offset: 1, epoch: info.epoch }])
  offA()
  offA() // twice is harmless
  await app.realtime.publish('room/a', { n: 3 })
  await until(() => b.length === 3)
  t.same(a, [1, 2])
  offB()
  await until(() => app.realtime.stats().topics['room/a'] === undefined)
  t.same(c.subscriptions, [])
  // Subscribing again starts a new subscription.
  const again: number[] = []
  await c.subscribe('room/a', (m) => { again.push(m.n) }).ready
  await app.realtime.publish('room/a', { n: 4 })
  await until(() => again.length === 1)
  t.same(again, [4])
})

t.test('a refused subscription rejects ready and is told as unsubscribed', async (t) => {
  const { url } = await serve(t)
  const c = client(t, url)
  const told = once<{ topic: string, code: number, error: RealtimeClientError }>(c, 'unsubscribed')
  const off = c.subscribe('secret', () => {})
  const err = await rejection(off.ready)
  t.equal(err.code, 'FORBIDDEN')
  const event = await told
  t.equal(event.topic, 'secret')
  t.equal(event.code, 2000)
  t.equal(event.error.code, 'FORBIDDEN')
  t.same(c.subscriptions, [])
  off() // nothing left to do
})

t.test('unsubscribing before the server confirms; subscribing again at once', async (t) => {
  const { app, url } = await serve(t)
  const c = client(t, url)
  await opened(c)
  const first = c.subscribe('room/b', () => { t.fail('the first subscription delivers nothing') })
  first()
  t.equal((await rejection(first.ready)).code, 'CLOSED')
  const got: number[] = []
  const second = c.subscribe('room/b', (m) => { got.push(m.n) })
  await second.ready
  await app.realtime.publish('room/b', { n: 1 })
  await until(() => got.length === 1)
  t.same(app.realtime.stats().topics, { 'room/b': 1 })
})

t.test('client publish and presence', async (t) => {
  const { app, url } = await serve(t)
  const c = client(t, url)
  const seen: string[] = []
  await c.subscribe('wall/x', (m) => { seen.push(m.text) }).ready
  const { offset } = await c.publish('wall/x', { text: 'hi' })
  t.equal(offset, 1)
  await until(() => seen.length === 1)
  const refused = await rejection(c.publish('room/a', { n: 1 } as never))
  t.equal(refused.code, 'FORBIDDEN')
  const presence = await rejection(c.presence('room/a'))
  t.equal(presence.code, 'FORBIDDEN', 'no topic here has presence')
  t.ok(app)
})

t.test('application events and the wildcard', async (t) => {
  const { app, url } = await serve(t)
  const c = client(t, url)
  await opened(c)
  const frames: string[] = []
  c.on('*', (frame) => { frames.push(frame.type) })
  const notice = once<{ text: string }>(c, 'notice')
  app.realtime.broadcast('notice', { text: 'maintenance at noon' })
  t.same(await notice, { text: 'maintenance at noon' })
  t.same(frames, ['notice'])
})

t.test('a listener that throws does not stop the others; its error is told', async (t) => {
  const { app, url } = await serve(t)
  const c = client(t, url)
  const errors: Error[] = []
  c.on('error', (err) => { errors.push(err) })
  const got: number[] = []
  await c.subscribe('room/a', () => { throw new Error('listener bug') }).ready
  c.subscribe('room/a', (m) => { got.push(m.n) })
  c.on('notice', () => { throw new Error('event listener bug') })
  await app.realtime.publish('room/a', { n: 1 })
  app.realtime.broadcast('notice', { text: 'x' })
  await until(() => errors.length === 2)
  t.same(got, [1])
  t.same(errors.map((e) => e.message), ['listener bug', 'event listener bug'])
})

t.test('without an error listener a throwing listener surfaces as an uncaught error', async (t) => {
  const { app, url } = await serve(t)
  const c = client(t, url)
  await c.subscribe('room/a', () => { throw new Error('nobody listens') }).ready
  // The error is rethrown from a microtask, where the host reports uncaught errors.
  const saved = globalThis.queueMicrotask
  const thrown = new Promise<unknown>((resolve) => {
    globalThis.queueMicrotask = (fn) => {
      globalThis.queueMicrotask = saved
      try {
        fn()
      } catch (err) {
        resolve(err)
      }
    }
  })
  t.teardown(() => { globalThis.queueMicrotask = saved })
  await app.realtime.publish('room/a', { n: 1 })
  t.equal((await thrown as Error).message, 'nobody listens')
})
