// The client while the network comes and goes: browser `offline` / `online` /
// `visibilitychange` events (dispatched here on EventTargets handed to the client, as a
// browser's window and document would fire them; test/browser-*.test.ts does the same
// in Chromium), requests that wait for a connection without expiring, and idempotent
// requests sent again with their key after a lost connection.
import { createServer, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { Type } from '@sinclair/typebox'
import { WebSocket, WebSocketServer } from 'ws'
import realtime from '../../lib/index.js'
import { createClient, defineContract, type ClientOptions, type ClientState, type RealtimeClient, type RealtimeClientError } from '../../lib/client/index.js'
import { until } from '../fixtures/helpers.js'

const contract = defineContract({
  routes: {
    echo: { data: Type.Object({ text: Type.String() }), reply: Type.Object({ text: Type.String() }) },
    slow: { data: Type.Object({ n: Type.Integer() }), reply: Type.Object({ n: Type.Integer(), run: Type.Integer() }), idempotent: true },
    plain: { data: Type.Object({ n: Type.Integer() }) }
  }
})

/** Frames the client wrote, read off a real `ws` socket. */
function spySocket (sent: Array<Record<string, any>>, sockets: WebSocket[] = []): ClientOptions['WebSocket'] {
  return class extends WebSocket {
    constructor (url: string, protocols?: string | string[]) {
      super(url, protocols)
      sockets.push(this)
    }

    override send (data: any): void {
      sent.push(JSON.parse(String(data)))
      super.send(data)
    }
  } as unknown as ClientOptions['WebSocket']
}

async function serve (t: Test, port = 0): Promise<{ app: FastifyInstance, url: string, port: number, gate: { open: () => void }, runs: () => number }> {
  const app = Fastify()
  await app.register(realtime)
  let runs = 0
  let open = (): void => {}
  let gated = new Promise<void>((resolve) => { open = resolve })
  app.realtime.route({ type: 'echo', schema: contract.routes.echo, handler: (data) => ({ text: data.text }) })
  app.realtime.route({
    type: 'slow',
    schema: contract.routes.slow,
    handler: async (data) => {
      const run = ++runs
      await gated
      return { n: data.n, run }
    }
  })
  app.realtime.route({ type: 'plain', schema: contract.routes.plain, handler: async () => { await gated } })
  await app.listen({ port, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const bound = (app.server.address() as { port: number }).port
  const gate = {
    open: () => {
      open()
      gated = Promise.resolve()
    }
  }
  return { app, url: `ws://127.0.0.1:${bound}/ws`, port: bound, gate, runs: () => runs }
}

/** An EventTarget that counts its listeners, so a test can see that none is left behind. */
class Target extends EventTarget {
  listeners = 0
  visibilityState = 'visible'
  override addEventListener (type: string, listener: any): void {
    this.listeners++
    super.addEventListener(type, listener)
  }

  override removeEventListener (type: string, listener: any): void {
    this.listeners--
    super.removeEventListener(type, listener)
  }
}

function client (t: Test, url: string, options: Partial<ClientOptions<typeof contract>> = {}): RealtimeClient<typeof contract> {
  const c = createClient({ url, WebSocket, contract, backoff: { initialDelay: 50, maxDelay: 200 }, ...options })
  t.teardown(() => c.close())
  return c
}

async function rejection (promise: Promise<unknown>): Promise<RealtimeClientError> {
  try {
    await promise
  } catch (err) {
    return err as RealtimeClientError
  }
  throw new Error('expected a rejection')
}

t.test('offline: reconnecting at once and the socket closed; online: reconnected at once, whatever the backoff', async (t) => {
  const { app, url } = await serve(t)
  const window = new Target()
  const document = new Target()
  // A backoff this long would keep the client away for a minute without `online`.
  const c = client(t, url, { network: { window, document }, backoff: { initialDelay: 60_000, minDelay: 60_000, maxDelay: 60_000 } })
  const states: ClientState[] = []
  const network: boolean[] = []
  c.on('state', (s) => { states.push(s) })
  c.on('network', (online) => { network.push(online) })
  await until(() => c.state === 'open')
  t.equal(c.online, true)

  window.dispatchEvent(new Event('offline'))
  t.equal(c.state, 'reconnecting', 'at once, not after the heartbeat')
  t.equal(c.online, false)
  await until(() => app.realtime.connections.size === 0)
  t.pass('the socket is closed')
  const queued = c.request('echo', { text: 'written offline' }, { timeoutMs: 250 })
  // Longer in the queue than its timeout: only the time after the write counts.
  await new Promise((resolve) => setTimeout(resolve, 350))

  const attemptAt = new Promise<number>((resolve) => { c.on('attempt', () => resolve(Date.now())) })
  const onlineAt = Date.now()
  window.dispatchEvent(new Event('online'))
  t.ok(await attemptAt - onlineAt < 100, 'an attempt right away')
  await until(() => c.state === 'open', 2000)
  t.same(await queued, { text: 'written offline' }, 'the request written offline is sent once back, its timeout counted from then')
  t.same(network, [false, true])
  t.same(states, ['connecting', 'open', 'reconnecting', 'open'].slice(states.length === 3 ? 1 : 0), 'a state event for each move')
  t.equal(app.realtime.connections.size, 1)

  await c.close()
  t.equal(window.listeners + document.listeners, 0, 'a closed client listens to nothing')
  window.dispatchEvent(new Event('offline'))
  t.same(network, [false, true], 'and hears nothing')
  c.connect()
  await until(() => c.state === 'open')
  t.ok(window.listeners > 0, 'connect() listens again')
})

/**
 * A TCP server standing in for a bad network: `stall` accepts each connection and never
 * answers the upgrade (a network that swallows packets: the WebSocket never opens),
 * `reset` drops each one at once (refused).
 */
async function sink (t: Test, mode: 'stall' | 'reset'): Promise<{ url: string, sockets: Array<{ socket: Socket, closed: boolean }> }> {
  const sockets: Array<{ socket: Socket, closed: boolean }> = []
  const server = createServer((socket) => {
    const entry = { socket, closed: false }
    sockets.push(entry)
    socket.on('error', () => {})
    socket.on('close', () => { entry.closed = true })
    if (mode === 'reset') socket.destroy()
    else socket.resume() // read (and drop) the upgrade request, so that its end is seen
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => {
    for (const { socket } of sockets) socket.destroy()
    server.close(resolve)
  }))
  return { url: `ws://127.0.0.1:${(server.address() as { port: number }).port}/ws`, sockets }
}

t.test('online while an attempt made offline is still pending: it is given up and a new one made at once, the backoff reset', async (t) => {
  const { url } = await serve(t)
  const stall = await sink(t, 'stall')
  const reset = await sink(t, 'reset')
  // Where the next socket goes, whatever the client's url: the server, or a bad network.
  let route = url
  const made: string[] = []
  class Routed extends WebSocket {
    constructor (_url: string, protocols?: string | string[]) {
      made.push(route)
      super(route, protocols)
    }
  }
  const window = new Target()
  // random 0.5: each delay is half its window, so 20, 200, 2000 ms after 0, 1, 2 failures.
  // connectTimeout stays at its 10 s: a pending attempt left alone would hold the client that long.
  const c = client(t, url, {
    WebSocket: Routed as unknown as ClientOptions['WebSocket'],
    network: { window, document: new Target() },
    backoff: { initialDelay: 40, factor: 10, maxDelay: 60_000, random: () => 0.5 }
  })
  const closes: Array<{ code: number, reason: string, reconnect: boolean, delayMs?: number }> = []
  c.on('close', (event) => { closes.push(event) })
  await until(() => c.state === 'open')

  // Offline on a network that stalls: the attempt made meanwhile connects to nothing that answers.
  route = stall.url
  window.dispatchEvent(new Event('offline'))
  await until(() => stall.sockets.length === 1)
  t.equal(c.state, 'reconnecting', 'an attempt is pending, not welcomed')
  route = url
  const onlineAt = Date.now()
  window.dispatchEvent(new Event('online'))
  await until(() => c.state === 'open', 5000)
  const took = Date.now() - onlineAt
  t.ok(took < 3000, `open ${took} ms after \`online\`, within the issue's 3 s, not after connectTimeout (10 s)`)
  t.same(made, [url, stall.url, url], 'the pending attempt was not waited for: a new one went out')
  t.match(closes.at(-1), { code: 1006, reason: 'the browser came back online', reconnect: true }, 'the abandoned attempt is told as a close')
  await until(() => stall.sockets[0].closed)
  t.pass('and its socket let go')

  // Again, and the first attempt once online is refused: its retry waits the first
  // delay (20 ms), not the 2000 ms the failures counted offline would give.
  route = stall.url
  window.dispatchEvent(new Event('offline'))
  await until(() => stall.sockets.length === 2)
  route = reset.url
  closes.length = 0
  window.dispatchEvent(new Event('online'))
  await until(() => closes.length === 2)
  t.equal(reset.sockets.length, 1, 'the attempt made at once went to the network now back')
  t.equal(closes[1].delayMs, 20, 'the backoff was reset')
  route = url
  await until(() => c.state === 'open', 5000)
  await until(() => stall.sockets.every((s) => s.closed))
  t.pass('no attempt is left behind')
})

t.test('the page visible again: a ping at once; a connection that does not answer it is dropped within the heartbeat timeout', async (t) => {
  const { url } = await serve(t)
  const window = new Target()
  const document = new Target()
  const sent: Array<Record<string, any>> = []
  const c = client(t, url, { network: { window, document }, WebSocket: spySocket(sent) })
  await until(() => c.state === 'open')
  const pong = new Promise<void>((resolve) => { c.on('*', (f) => { if (f.type === 'pong') resolve() }) })
  document.visibilityState = 'hidden'
  document.dispatchEvent(new Event('visibilitychange'))
  t.equal(sent.filter((f) => f.type === 'ping').length, 0, 'hiding sends nothing')
  document.visibilityState = 'visible'
  document.dispatchEvent(new Event('visibilitychange'))
  t.equal(sent.filter((f) => f.type === 'ping').length, 1, 'showing pings')
  await pong
  window.dispatchEvent(new Event('online'))
  t.equal(sent.filter((f) => f.type === 'ping').length, 2, '`online` while open pings too')

  // A server that welcomes, then never answers again: a dead link the browser has not noticed.
  const mute = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  t.teardown(() => new Promise((resolve) => mute.close(resolve)))
  mute.on('connection', (ws) => ws.send(JSON.stringify({ type: 'welcome', data: { connectionId: 'm', heartbeat: { interval: 60_000, timeout: 300 } } })))
  await new Promise((resolve) => mute.once('listening', resolve))
  const port = (mute.address() as { port: number }).port
  const d2 = new Target()
  const m = client(t, `ws://127.0.0.1:${port}/ws`, { network: { window: new Target(), document: d2 }, backoff: { initialDelay: 60_000, minDelay: 60_000, maxDelay: 60_000 } })
  await until(() => m.state === 'open')
  const shownAt = Date.now()
  d2.dispatchEvent(new Event('visibilitychange'))
  await until(() => m.state === 'reconnecting', 2000)
  const took = Date.now() - shownAt
  t.ok(took >= 250 && took < 1500, `dropped ${took} ms after the probe (heartbeat timeout 300 ms), not after 60 s`)
})

t.test('in Node no network event is listened to; a bad network option is refused', async (t) => {
  t.equal(typeof (globalThis as { addEventListener?: unknown }).addEventListener, 'undefined', 'Node\'s global object is no EventTarget')
  const c = createClient({ url: 'ws://127.0.0.1:9/ws', WebSocket, autoConnect: false })
  t.equal(c.online, true)
  t.throws(() => createClient({ url: 'ws://x/ws', WebSocket, network: 'yes' as never }), /network must be false or an object/)
})

t.test('an idempotent request whose connection dropped is sent again with its key; others fail with DISCONNECTED', async (t) => {
  const { app, url, gate, runs } = await serve(t)
  const sent: Array<Record<string, any>> = []
  const sockets: WebSocket[] = []
  const c = client(t, url, { WebSocket: spySocket(sent, sockets) })
  await until(() => c.state === 'open')
  const slow = c.request('slow', { n: 1 })
  const plain = rejection(c.request('plain', { n: 2 }))
  const keyed = c.request('echo', { text: 'k' }, { key: 'my-key-1' })
  await keyed
  await until(() => runs() === 1 && app.realtime.connections.size === 1)
  // Awaited as an event: the reconnection is quick enough to be missed by polling the state.
  const lost = new Promise<void>((resolve) => { const off = c.on('close', () => { off(); resolve() }) })
  // The connection drops (a server close would answer what it ran first: not a drop).
  sockets[0].terminate()
  await lost
  t.equal(c.state, 'reconnecting')
  const later = c.request('echo', { text: 'queued after' })
  const err = await plain
  t.equal(err.code, 'DISCONNECTED', 'not idempotent: it may have run, the app decides')
  t.equal(err.maybeRan, true, 'and the error says it may have run')
  gate.open()
  t.same(await slow, { n: 1, run: 1 }, 'answered on the new connection with the first run\'s answer')
  t.equal(runs(), 1, 'the server ran the handler once: the route is idempotent and the key the same')
  t.same(await later, { text: 'queued after' })

  const slows = sent.filter((f) => f.type === 'slow')
  t.equal(slows.length, 2, 'sent twice')
  t.type(slows[0].key, 'string')
  t.ok(slows[0].key.length > 0 && slows[0].key.length <= 128)
  t.equal(slows[1].key, slows[0].key, 'with the same key')
  t.not(slows[1].id, slows[0].id, 'and a fresh id')
  t.equal(sent.filter((f) => f.type === 'plain').length, 1, 'the other one was not resent')
  t.equal(sent.find((f) => f.type === 'echo' && f.data.text === 'k')?.key, 'my-key-1', 'a key given per call is sent')
  t.equal(sent.find((f) => f.type === 'echo' && f.data.text === 'queued after')?.key, undefined, 'no key where the route is not idempotent')
  const after = sent.slice(sent.indexOf(slows[1]) - 0)
  t.ok(after.findIndex((f) => f.type === 'echo' && f.data.text === 'queued after') > 0, 'the resent request goes before one queued after it')

  await t.rejects(c.request('echo', { text: 'x' }, { key: 'k'.repeat(129) }), TypeError)
  await t.rejects(c.request('echo', { text: 'x' }, { key: '' }), /key must be a string of 1 to 128 characters/)
  const own = c.request('echo', { text: 'idem' }, { idempotent: true })
  await own
  t.type(sent.at(-1)?.key, 'string', '{ idempotent: true } per call sends a generated key')
})

t.test('requestTimeout counts from the write: a request queued before the server is up is answered once it is', async (t) => {
  const probe = await serve(t)
  const port = probe.port
  await probe.app.close()
  const c = client(t, `ws://127.0.0.1:${port}/ws`, { requestTimeout: 100, backoff: { initialDelay: 30, maxDelay: 60 } })
  const answer = c.request('echo', { text: 'early' })
  let failures = 0
  c.on('close', () => { failures++ })
  await until(() => failures >= 4)
  t.equal(c.queued, 1, 'waiting, well past its 100 ms timeout')
  await serve(t, port)
  t.same(await answer, { text: 'early' })
})

// Needs the server half: lib/messages/idempotency.ts's runIdempotent called from the route
// dispatch for routes declared `idempotent: true` (the lead wires it into the core).
t.test('end to end: a request resent after a lost connection runs its handler once', async (t) => {
  const app = Fastify()
  await app.register(realtime)
  let runs = 0
  let release = (): void => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  app.realtime.route({
    type: 'slow',
    schema: contract.routes.slow,
    idempotent: true,
    handler: async (data: { n: number }) => {
      const run = ++runs
      await gate
      return { n: data.n, run }
    }
  } as never)
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const c = client(t, `ws://127.0.0.1:${(app.server.address() as { port: number }).port}/ws`)
  await until(() => c.state === 'open')
  const answer = c.request('slow', { n: 1 })
  await until(() => runs === 1)
  app.realtime.disconnect([...app.realtime.connections][0].id, 4011, 'go again')
  await until(() => c.state === 'open')
  release()
  t.same(await answer, { n: 1, run: 1 }, 'the remembered answer of the first run')
  t.equal(runs, 1, 'the handler ran once')
})
