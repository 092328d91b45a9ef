// The client against a scripted server (a bare `ws` server playing the protocol by
// hand), for what a real server does rarely or only under failure: duplicate and
// out-of-order offsets, `unsubscribed` codes, silent connections, missing welcomes,
// refused resubscriptions, odd frames. Also the backoff arithmetic.
import t, { type Test } from 'tap'
import { WebSocketServer, WebSocket, type RawData } from 'ws'
import { backoffDefaults, backoffDelay, createClient, resolveBackoff, type ClientOptions, type RealtimeClient } from '../../lib/client/index.js'

interface Frame {
  type: string
  id?: number
  data?: any
  [key: string]: any
}

class Peer {
  readonly socket: WebSocket
  readonly frames: Frame[] = []
  readonly #waiters: Array<{ match: (f: Frame) => boolean, resolve: (f: Frame) => void }> = []
  readonly closed: Promise<number>

  constructor (socket: WebSocket) {
    this.socket = socket
    socket.on('message', (raw: RawData) => {
      const frame = JSON.parse(raw.toString()) as Frame
      const i = this.#waiters.findIndex((w) => w.match(frame))
      if (i >= 0) this.#waiters.splice(i, 1)[0].resolve(frame)
      else this.frames.push(frame)
    })
    this.closed = new Promise((resolve) => socket.once('close', (code) => resolve(code)))
  }

  next (match: (f: Frame) => boolean = () => true, timeoutMs = 3000): Promise<Frame> {
    const i = this.frames.findIndex(match)
    if (i >= 0) return Promise.resolve(this.frames.splice(i, 1)[0])
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out waiting for a frame')), timeoutMs)
      this.#waiters.push({ match, resolve: (f) => { clearTimeout(timer); resolve(f) } })
    })
  }

  nextOfType (type: string, timeoutMs?: number): Promise<Frame> {
    return this.next((f) => f.type === type, timeoutMs)
  }

  send (frame: unknown): void {
    this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame))
  }

  welcome (heartbeat = { interval: 25000, timeout: 10000 }): void {
    this.send({ type: 'welcome', data: { connectionId: `peer-${Math.random().toString(36).slice(2)}`, heartbeat } })
  }

  /** Answers the next subscribe with this position (and `recovered`, when given). */
  async acceptSubscribe (offset: number, epoch: string, recovered?: boolean): Promise<Frame> {
    const sub = await this.nextOfType('subscribe')
    const data: Record<string, unknown> = { topic: sub.data.topic, offset, epoch }
    if (recovered !== undefined) data.recovered = recovered
    this.send({ type: 'reply', id: sub.id, data })
    return sub
  }
}

interface Fake {
  url: string
  wss: WebSocketServer
  nextPeer: () => Promise<Peer>
  count: () => number
}

async function fake (t: Test): Promise<Fake> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: (p) => p.has('realtime.v1') ? 'realtime.v1' : false })
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()))
  const waiting: Array<(p: Peer) => void> = []
  const arrived: Peer[] = []
  let count = 0
  wss.on('connection', (socket) => {
    count++
    t.equal(socket.protocol, 'realtime.v1', 'the client offers realtime.v1')
    const peer = new Peer(socket)
    const waiter = waiting.shift()
    if (waiter !== undefined) waiter(peer)
    else arrived.push(peer)
  })
  t.teardown(() => new Promise<void>((resolve) => {
    for (const c of wss.clients) c.terminate()
    wss.close(() => resolve())
  }))
  const { port } = wss.address() as { port: number }
  return {
    url: `ws://127.0.0.1:${port}/ws`,
    wss,
    count: () => count,
    nextPeer: () => {
      const peer = arrived.shift()
      if (peer !== undefined) return Promise.resolve(peer)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no connection came')), 3000)
        waiting.push((p) => { clearTimeout(timer); resolve(p) })
      })
    }
  }
}

function client (t: Test, url: string, options: Partial<ClientOptions> = {}): RealtimeClient {
  const c = createClient({ url, WebSocket, backoff: { initialDelay: 20, maxDelay: 50 }, ...options })
  t.teardown(() => c.close())
  return c
}

function collect (c: RealtimeClient, event: string): unknown[] {
  const out: unknown[] = []
  c.on(event as 'state', ((value: unknown) => { out.push(value) }) as never)
  return out
}

async function until (cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const start = Date.now()
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

// ------------------------------------------------------------------ backoff

t.test('backoff: full jitter between minDelay and an exponentially growing ceiling', async (t) => {
  t.same(backoffDefaults, { minDelay: 0, initialDelay: 1000, maxDelay: 30000, factor: 2 })
  const low = resolveBackoff({ random: () => 0 })
  const high = resolveBackoff({ random: () => 0.999999 })
  t.equal(backoffDelay(0, low), 0, 'full jitter reaches 0')
  t.equal(backoffDelay(0, high), 1000)
  t.equal(backoffDelay(1, high), 2000)
  t.equal(backoffDelay(4, high), 16000)
  t.equal(backoffDelay(5, high), 30000, 'capped by maxDelay')
  t.equal(backoffDelay(50, high), 30000)
  const floor = resolveBackoff({ minDelay: 300, initialDelay: 100, random: () => 0 })
  t.equal(backoffDelay(0, floor), 300, 'never under minDelay')
  t.equal(backoffDelay(0, resolveBackoff({ minDelay: 300, initialDelay: 100, random: () => 0.999999 })), 300)
  const half = resolveBackoff({ minDelay: 100, initialDelay: 500, maxDelay: 800, factor: 3, random: () => 0.5 })
  t.equal(backoffDelay(0, half), 300)
  t.equal(backoffDelay(1, half), 450)
  t.same(resolveBackoff({ maxDelay: 200 }).initialDelay, 200, 'the first window defaults to no more than maxDelay')
  t.same(resolveBackoff({ minDelay: 40000 }).maxDelay, 40000, 'maxDelay defaults to no less than minDelay')
  t.throws(() => resolveBackoff({ minDelay: Number.NaN }), /minDelay must be a finite number/)
  t.throws(() => resolveBackoff({ initialDelay: '1' as never }), /initialDelay must be a finite number/)
  t.equal(resolveBackoff().random, Math.random)
  // Uniform: the spread of many draws fills the window.
  const draws = Array.from({ length: 2000 }, () => backoffDelay(0, resolveBackoff({ initialDelay: 1000 })))
  t.ok(Math.min(...draws) < 50 && Math.max(...draws) > 950, 'draws cover the window')
})

// ------------------------------------------------------------------ offsets and frames

t.test('a subscriber never sees a duplicate or an older offset; ephemeral messages pass', async (t) => {
  const { url, nextPeer } = await fake(t)
  const c = client(t, url)
  const got: Array<[unknown, unknown]> = []
  const sub = c.subscribe('feed', (m, meta) => { got.push([m, meta.offset]) })
  const peer = await nextPeer()
  peer.send({ type: 'message', topic: 'feed', offset: 1, epoch: 'e1', data: 'before any subscription' })
  peer.welcome()
  await peer.acceptSubscribe(5, 'e1')
  t.same(await sub.ready, { topic: 'feed', offset: 5, epoch: 'e1' })
  for (const offset of [6, 7, 7, 6, 5]) peer.send({ type: 'message', topic: 'feed', offset, epoch: 'e1', data: offset })
  peer.send({ type: 'message', topic: 'feed', ephemeral: true, data: 'typing' })
  peer.send({ type: 'message', topic: 'feed', epoch: 'e1', data: 'no offset' })
  peer.send({ type: 'message', topic: 'other', offset: 9, epoch: 'e1', data: 'not subscribed' })
  peer.send({ type: 'message', topic: 'feed', offset: 8, epoch: 'e1', data: 8 })
  // A new epoch starts a new stream: its offsets are not compared with the old one's.
  peer.send({ type: 'message', topic: 'feed', offset: 2, epoch: 'e2', data: 'new stream' })
  peer.send({ type: 'message', topic: 'feed', offset: 2, epoch: 'e2', data: 'dup in new stream' })
  await until(() => got.length === 5)
  t.same(got, [[6, 6], [7, 7], ['typing', undefined], [8, 8], ['new stream', 2]])
  t.same(c.subscriptions, [{ topic: 'feed', active: true, offset: 2, epoch: 'e2' }])
})

t.test('odd frames are ignored; errors without an id are told; join, leave and events are passed on', async (t) => {
  const { url, nextPeer } = await fake(t)
  const c = client(t, url)
  const errors = collect(c, 'error')
  const joins = collect(c, 'join')
  const leaves = collect(c, 'leave')
  const states = collect(c, 'state')
  const custom = collect(c, 'custom')
  const all = collect(c, '*')
  const peer = await nextPeer()
  peer.send('not json')
  peer.send('[1, 2]')
  peer.send('{"no":"type"}')
  peer.send('null')
  peer.socket.send(Buffer.from('{"type":"welcome"}'), { binary: true })
  peer.send({ type: 'welcome' }) // no data: defaults
  await until(() => c.state === 'open')
  t.equal(c.connectionId, '')
  peer.send({ type: 'reply', id: 999, data: {} }) // answers nothing we asked
  peer.send({ type: 'error', error: { code: 'RATE_LIMITED', message: 'slow', temporary: true, retryAfterMs: 100 } })
  peer.send({ type: 'join', topic: 'room/a', member: { connectionId: 'x', user: { id: 'ann' } } })
  peer.send({ type: 'leave', topic: 'room/a', member: { connectionId: 'x' } })
  peer.send({ type: 'unsubscribed', topic: 'never', code: 2000, reason: 'x' })
  peer.send({ type: 'pong' })
  peer.send({ type: 'state', data: 'an event named like a client event is not passed on' })
  peer.send({ type: 'custom', data: { a: 1 } })
  await until(() => custom.length === 1)
  t.same(custom, [{ a: 1 }])
  t.equal(errors.length, 1)
  t.match(errors[0], { code: 'RATE_LIMITED', temporary: true, retryAfterMs: 100 })
  t.same(joins, [{ topic: 'room/a', member: { connectionId: 'x', user: { id: 'ann' } } }])
  t.same(leaves, [{ topic: 'room/a', member: { connectionId: 'x' } }])
  t.same(states, ['open'])
  t.same(all.map((f) => (f as Frame).type), ['welcome', 'reply', 'error', 'join', 'leave', 'unsubscribed', 'pong', 'state', 'custom'])
})

// ------------------------------------------------------------------ unsubscribed codes

t.test('unsubscribed 2500: resubscribes with since and reports recovery', async (t) => {
  const { url, nextPeer } = await fake(t)
  const c = client(t, url)
  const recovered = collect(c, 'recovered')
  const got: unknown[] = []
  c.subscribe('feed', (m) => { got.push(m) })
  const peer = await nextPeer()
  peer.welcome()
  await peer.acceptSubscribe(0, 'e1')
  peer.send({ type: 'message', topic: 'feed', offset: 1, epoch: 'e1', data: 1 })
  peer.send({ type: 'unsubscribed', topic: 'feed', code: 2500, reason: 'insufficient state' })
  peer.send({ type: 'message', topic: 'feed', offset: 3, epoch: 'e1', data: 'while away: dropped' })
  const again = await peer.acceptSubscribe(3, 'e1', true)
  t.same(again.data, { topic: 'feed', since: { offset: 1, epoch: 'e1' } })
  for (const offset of [2, 3, 4]) peer.send({ type: 'message', topic: 'feed', offset, epoch: 'e1', data: offset })
  await until(() => got.length === 4)
  t.same(got, [1, 2, 3, 4])
  t.same(recovered, [{ topic: 'feed', recovered: true }])
})

t.test('unsubscribed 2501: refreshes the token, then resubscribes with since', async (t) => {
  const { url, nextPeer } = await fake(t)
  let n = 0
  const c = client(t, url, { getToken: async () => `token-${++n}` })
  c.subscribe('feed', () => {})
  const peer = await nextPeer()
  const auth = await peer.nextOfType('auth')
  t.same(auth.data, { token: 'token-1' })
  peer.send({ type: 'reply', id: auth.id, data: { user: { id: 'u' } } })
  peer.welcome()
  await peer.acceptSubscribe(4, 'e1')
  peer.send({ type: 'unsubscribed', topic: 'feed', code: 2501, reason: 'permission expired' })
  const refresh = await peer.nextOfType('auth')
  t.same(refresh.data, { token: 'token-2' })
  t.equal(peer.frames.length, 0, 'nothing is resubscribed before the new token is accepted')
  peer.send({ type: 'reply', id: refresh.id, data: { user: { id: 'u' } } })
  const again = await peer.acceptSubscribe(4, 'e1', true)
  t.same(again.data.since, { offset: 4, epoch: 'e1' })
  t.same(c.user, { id: 'u' })

  // Without getToken, 2501 resubscribes at once.
  const plain = client(t, url)
  plain.subscribe('feed', () => {})
  const p2 = await nextPeer()
  p2.welcome()
  await p2.acceptSubscribe(1, 'e1')
  p2.send({ type: 'unsubscribed', topic: 'feed', code: 2501, reason: 'permission expired' })
  t.same((await p2.nextOfType('subscribe')).data.since, { offset: 1, epoch: 'e1' })
})

t.test('unsubscribed 2000 (or an unknown code): the subscription ends and the app is told', async (t) => {
  const { url, nextPeer } = await fake(t)
  const c = client(t, url)
  const told = collect(c, 'unsubscribed')
  const got: unknown[] = []
  const a = c.subscribe('a', (m) => { got.push(m) })
  c.subscribe('b', () => {})
  const peer = await nextPeer()
  peer.welcome()
  await peer.acceptSubscribe(0, 'e')
  await peer.acceptSubscribe(0, 'e')
  await a.ready
  peer.send({ type: 'unsubscribed', topic: 'a', code: 2000, reason: 'kicked' })
  peer.send({ type: 'unsubscribed', topic: 'b' })
  peer.send({ type: 'message', topic: 'a', offset: 1, epoch: 'e', data: 'too late' })
  await until(() => told.length === 2)
  t.same(told, [{ topic: 'a', code: 2000, reason: 'kicked' }, { topic: 'b', code: 2000, reason: '' }])
  t.same(got, [])
  t.same(c.subscriptions, [])
  a() // nothing to unsubscribe any more
  await sleep(20)
  t.equal(peer.frames.filter((f) => f.type === 'unsubscribe').length, 0)
})

t.test('an unsubscribed frame before the subscription is confirmed rejects ready', async (t) => {
  const { url, nextPeer } = await fake(t)
  const c = client(t, url)
  const sub = c.subscribe('a', () => {})
  const peer = await nextPeer()
  peer.welcome()
  await peer.nextOfType('subscribe')
  peer.send({ type: 'unsubscribed', topic: 'a', code: 2000, reason: 'closed room' })
  await t.rejects(sub.ready, { code: 'FORBIDDEN', message: 'closed room' })
})

t.test('a temporary refusal of a subscription is retried after retryAfterMs', async (t) => {
  const { url, nextPeer } = await fake(t)
  const c = client(t, url)
  const sub = c.subscribe('busy', () => {}, { meta: { status: 'away' } })
  const peer = await nextPeer()
  peer.welcome()
  const first = await peer.nextOfType('subscribe')
  t.same(first.data, { topic: 'busy', meta: { status: 'away' } }, 'presence meta goes with the subscribe')
  const refusedAt = Date.now()
  peer.send({ type: 'error', id: first.id, error: { code: 'RATE_LIMITED', message: 'later', temporary: true, retryAfterMs: 80 } })
  const second = await peer.nextOfType('subscribe')
  t.ok(Date.now() - refusedAt >= 70, 'after retryAfterMs')
  peer.send({ type: 'error', id: second.id, error: { code: 'INTERNAL', message: 'oops', temporary: true } })
  const third = await peer.nextOfType('subscribe') // after initialDelay
  peer.send({ type: 'reply', id: third.id, data: { topic: 'busy', offset: 0, epoch: 'e' } })
  t.same(await sub.ready, { topic: 'busy', offset: 0, epoch: 'e' })
})

// ------------------------------------------------------------------ reconnection

t.test('after a reconnect: auth first, then subscribe with since, then the queued requests', async (t) => {
  const { url, nextPeer } = await fake(t)
  const c = client(t, url, { getToken: () => 'tok' })
  const recovered = collect(c, 'recovered')
  const closes = collect(c, 'close')
  const got: unknown[] = []
  c.subscribe('feed', (m) => { got.push(m) })
  const p1 = await nextPeer()
  const auth1 = await p1.nextOfType('auth')
  p1.send({ type: 'reply', id: auth1.id, data: { user: { id: 'u' } } })
  p1.welcome()
  await p1.acceptSubscribe(10, 'e1')
  p1.send({ type: 'message', topic: 'feed', offset: 11, epoch: 'e1', data: 11 })
  await until(() => got.length === 1)
  p1.socket.close(4010, 'insufficient state')
  await until(() => c.state === 'reconnecting')
  const queued = c.request('job', { n: 1 })
  t.equal(c.queued, 1)
  const p2 = await nextPeer()
  const auth2 = await p2.next()
  t.equal(auth2.type, 'auth', 'auth is the first frame')
  p2.send({ type: 'reply', id: auth2.id, data: { user: { id: 'u' } } })
  p2.welcome()
  const sub = await p2.next()
  t.equal(sub.type, 'subscribe', 'then the subscriptions')
  t.same(sub.data.since, { offset: 11, epoch: 'e1' })
  const job = await p2.next()
  t.equal(job.type, 'job', 'then what was queued')
  p2.send({ type: 'reply', id: job.id, data: 'done' })
  t.equal(await queued, 'done')
  // The broker lost its history: not recovered, and the position starts again.
  p2.send({ type: 'reply', id: sub.id, data: { topic: 'feed', offset: 3, epoch: 'e2', recovered: false } })
  p2.send({ type: 'message', topic: 'feed', offset: 4, epoch: 'e2', data: 4 })
  await until(() => got.length === 2)
  t.same(got, [11, 4])
  t.same(recovered, [{ topic: 'feed', recovered: false }])
  t.match(closes, [{ code: 4010, reason: 'insufficient state', reconnect: true }])
})

t.test('a normal close (1000) from the server is final', async (t) => {
  const { url, nextPeer, count } = await fake(t)
  const c = client(t, url)
  const peer = await nextPeer()
  peer.welcome()
  await until(() => c.state === 'open')
  const closes = collect(c, 'close')
  const pending = c.request('job', {}).catch((err) => err)
  await peer.nextOfType('job')
  peer.socket.close(1000, 'bye')
  t.match(await pending, { code: 'CLOSED', closeCode: 1000 }, 'the client is closed now: what was pending fails with CLOSED')
  t.equal(c.state, 'closed')
  t.same(closes, [{ code: 1000, reason: 'bye', reconnect: false }])
  await sleep(100)
  t.equal(count(), 1, 'no second connection')
})

// ------------------------------------------------------------------ liveness and timeouts

t.test('liveness: ping after interval of silence; a silent connection is dropped and replaced', async (t) => {
  const { url, nextPeer } = await fake(t)
  const c = client(t, url)
  const closes = collect(c, 'close')
  const p1 = await nextPeer()
  p1.welcome({ interval: 150, timeout: 300 })
  await until(() => c.state === 'open')
  const ping = await p1.nextOfType('ping', 1000)
  t.same(ping, { type: 'ping' }, 'an app-level ping, no id')
  p1.send({ type: 'pong' })
  const second = await p1.nextOfType('ping', 1000)
  t.ok(second, 'pings go on while the server answers')
  // No pong this time: after interval + timeout the client gives up on the connection.
  const p2 = await nextPeer()
  t.match(closes, [{ code: 1006, reason: 'no answer from the server', reconnect: true }])
  p2.welcome({ interval: 150, timeout: 300 })
  await until(() => c.state === 'open')
})

t.test('liveness can be tuned or turned off', async (t) => {
  const { url, nextPeer } = await fake(t)
  const off = client(t, url, { heartbeat: false })
  const p1 = await nextPeer()
  p1.welcome({ interval: 20, timeout: 20 })
  await sleep(150)
  t.equal(p1.frames.length, 0, 'no ping with heartbeat: false')
  t.equal(off.state, 'open')
  const tuned = client(t, url, { heartbeat: { interval: 30 } })
  const p2 = await nextPeer()
  p2.welcome({ interval: 60000, timeout: 60000 })
  t.ok(await p2.nextOfType('ping', 500), 'the option overrides the announced interval')
  t.equal(tuned.state, 'open')
})

t.test('no welcome within connectTimeout counts as a failed attempt', async (t) => {
  const { url, nextPeer } = await fake(t)
  const c = client(t, url, { connectTimeout: 100 })
  const closes = collect(c, 'close')
  const attempts = collect(c, 'attempt')
  await nextPeer() // says nothing
  const p2 = await nextPeer()
  t.match(closes, [{ code: 1006, reason: 'no welcome in time', reconnect: true }])
  p2.welcome()
  await until(() => c.state === 'open')
  t.match(attempts, [{ attempt: 2, url }])
})

t.test('an unanswered subscribe drops the connection after requestTimeout', async (t) => {
  const { url, nextPeer } = await fake(t)
  const c = client(t, url, { requestTimeout: 200 })
  const sub = c.subscribe('feed', () => {})
  const p1 = await nextPeer()
  p1.welcome()
  await p1.nextOfType('subscribe') // never answered
  const p2 = await nextPeer()
  p2.welcome()
  const again = await p2.nextOfType('subscribe')
  t.same(again.data, { topic: 'feed' }, 'never confirmed, so no since')
  p2.send({ type: 'reply', id: again.id, data: { topic: 'feed', offset: 0, epoch: 'e' } })
  await sub.ready
})

t.test('close() does not wait long for a peer that ignores the close handshake', async (t) => {
  const { url, nextPeer } = await fake(t)
  const c = client(t, url)
  const peer = await nextPeer()
  peer.welcome()
  await until(() => c.state === 'open')
  ;(peer.socket as unknown as { _socket: { pause: () => void } })._socket.pause()
  const started = Date.now()
  await c.close()
  const took = Date.now() - started
  t.ok(took >= 900 && took < 3000, `gave up after about a second (${took} ms)`)
})

t.test('a WebSocket constructor that throws ends in closed, with the error told', async (t) => {
  class Broken {
    constructor () { throw new SyntaxError('bad url') }
  }
  const c = createClient({ url: 'nonsense', WebSocket: Broken as never, autoConnect: false })
  const errors = collect(c, 'error')
  const closes = collect(c, 'close')
  c.connect()
  t.equal(c.state, 'closed')
  t.match(errors, [{ message: 'bad url' }])
  t.match(closes, [{ code: 1006, reconnect: false }])
  // A listener of `attempt` may close the client before the socket is made.
  const { url, count } = await fake(t)
  const d = createClient({ url, WebSocket, autoConnect: false })
  d.on('attempt', () => { d.close() })
  d.connect()
  t.equal(d.state, 'closed')
  await sleep(50)
  t.equal(count(), 0)
})

t.test('a listener error thrown while handling `error` is rethrown, not looped', async (t) => {
  const { url, nextPeer } = await fake(t)
  const c = client(t, url)
  c.on('error', () => { throw new Error('error listener bug') })
  const saved = globalThis.queueMicrotask
  const thrown = new Promise<unknown>((resolve) => {
    globalThis.queueMicrotask = (fn) => {
      globalThis.queueMicrotask = saved
      try { fn() } catch (err) { resolve(err) }
    }
  })
  t.teardown(() => { globalThis.queueMicrotask = saved })
  const peer = await nextPeer()
  peer.send({ type: 'error', error: { code: 'BAD_REQUEST', message: 'x' } })
  t.equal((await thrown as Error).message, 'error listener bug')
})

t.test('a browser-like WebSocket (no terminate): a dead connection is closed with 4000; a close() that throws is survived', async (t) => {
  const sockets: FakeSocket[] = []
  class FakeSocket {
    readyState = 0
    readonly sent: string[] = []
    readonly closes: Array<[number | undefined, string | undefined]> = []
    throwOnClose = false
    onopen: ((e: unknown) => void) | null = null
    onmessage: ((e: { data: unknown }) => void) | null = null
    onclose: ((e: { code: number, reason: string }) => void) | null = null
    onerror: ((e: unknown) => void) | null = null
    constructor (readonly url: string, readonly protocols?: string | string[]) {
      sockets.push(this)
      setTimeout(() => {
        this.readyState = 1
        this.onopen?.({})
        this.onmessage?.({ data: JSON.stringify({ type: 'welcome', data: { connectionId: `c${sockets.length}`, heartbeat: { interval: 20, timeout: 20 } } }) })
      }, 1)
    }

    send (data: string): void {
      this.sent.push(data)
      // Only the first socket is dead: the others answer their pings.
      if (sockets.indexOf(this) > 0 && data === '{"type":"ping"}') setTimeout(() => this.onmessage?.({ data: '{"type":"pong"}' }), 1)
    }

    close (code?: number, reason?: string): void {
      this.closes.push([code, reason])
      if (this.throwOnClose) throw new Error('already closing')
    }
  }
  const c = createClient({ url: 'ws://fake/ws', WebSocket: FakeSocket, backoff: { initialDelay: 10, maxDelay: 10 } })
  await until(() => sockets.length === 2 && c.state === 'open')
  t.same(sockets[0].protocols, 'realtime.v1')
  t.same(sockets[0].sent, ['{"type":"ping"}'], 'pinged once after interval of silence')
  t.same(sockets[0].closes, [[4000, 'no answer from the server']], 'then closed with 4000: a browser socket cannot be terminated')
  await sleep(100)
  t.equal(sockets.length, 2, 'a socket that answers its pings is kept')
  t.equal(c.connectionId, 'c2')
  sockets[1].throwOnClose = true
  const started = Date.now()
  await c.close()
  t.ok(Date.now() - started < 500, 'close() resolves at once when the socket refuses to close')
  t.equal(c.state, 'closed')
})
