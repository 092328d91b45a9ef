// Diagnostics channels: each channel's payload after a scripted session, the handler
// tracing channel for sync, async and failing handlers, and nothing published when
// nobody listens.
import t from 'tap'
import dc from 'node:diagnostics_channel'
import { Type } from '@sinclair/typebox'
import { diagnosticsChannels, handlerChannel, type HandlerTrace } from '../../lib/index.js'
import { build, connect, until } from '../fixtures/helpers.js'

type Event = Record<string, any>

function listen (t: Tap.Test, name: string): Event[] {
  const events: Event[] = []
  const fn = (message: unknown): void => { events.push(message as Event) }
  dc.subscribe(name, fn)
  t.teardown(() => dc.unsubscribe(name, fn))
  return events
}

declare namespace Tap { type Test = { teardown: (fn: () => unknown) => void } }

t.test('each channel tells its event once, with its payload', async (t) => {
  const on = Object.fromEntries(Object.entries(diagnosticsChannels).map(([key, channel]) => [key, listen(t, channel.name as string)]))
  const { app, url } = await build(t, { maxQueue: 1024 }, (app) => {
    app.realtime.topic('room/:name', { message: Type.Object({ text: Type.String() }) })
    app.realtime.topic('ticker', { message: Type.Object({ pad: Type.String() }), volatile: true })
    app.realtime.route({ type: 'echo', schema: { data: Type.String(), reply: Type.String() }, handler: (data) => data })
    app.realtime.event('notice', Type.String())
  })
  const a = await connect(t, url)
  const [connection] = [...app.realtime.connections]
  t.same(on.connectionOpen.map((e) => e.connection.id), [connection.id])

  await a.request('subscribe', { topic: 'room/x' })
  t.match(on.subscribe, [{ connection, topic: 'room/x', pattern: 'room/:name', recovered: false }])
  t.match(on.messageIn, [{ connection, type: 'subscribe' }])

  await a.request('echo', 'hi')
  await a.request('what', {})
  a.send('{')
  await a.nextOfType('error')
  t.same(on.messageIn.map((e) => e.type), ['subscribe', 'echo', 'unknown', 'invalid'])
  t.same(on.error.map((e) => e.code), ['UNKNOWN_TYPE', 'BAD_REQUEST'])
  t.same(on.messageOut.map((e) => e.type), ['welcome', 'reply', 'reply', 'error', 'error'])

  await app.realtime.publish('room/x', { text: 'one' })
  await a.nextOfType('message')
  t.match(on.publish, [{ broker: app.realtime.broker, topic: 'room/x', pattern: 'room/:name', offset: 1 }])
  t.ok(on.publish[0].duration >= 0 && on.publish[0].duration < 5000, 'the broker round trip in ms')
  t.match(on.delivery, [{ broker: app.realtime.broker, topic: 'room/x', pattern: 'room/:name', subscribers: 1, dropped: 0 }])
  t.equal(on.messageOut.length, 5, 'fan-out is told on delivery, not per subscriber')
  t.equal(app.realtime.broadcast('notice', 'all'), 1)
  await a.nextOfType('notice')
  t.match(on.broadcast, [{ broker: app.realtime.broker, type: 'notice', connections: 1 }], 'a broadcast is told once')
  t.equal(on.messageOut.length, 5, 'and not per connection')

  await a.request('unsubscribe', { topic: 'room/x' })
  t.match(on.unsubscribe, [{ connection, topic: 'room/x', pattern: 'room/:name', reason: 'client' }])

  await a.request('subscribe', { topic: 'ticker' })
  ;(a.ws as unknown as { _socket: import('node:net').Socket })._socket.pause()
  for (let i = 0; i < 200 && on.dropped.length === 0; i++) await app.realtime.publish('ticker', { pad: 'x'.repeat(4000) })
  t.match(on.dropped[0], { broker: app.realtime.broker, topic: 'ticker', pattern: 'ticker' })
  t.ok(on.dropped[0].count > 0)
  t.equal(on.delivery.at(-1)?.dropped, on.dropped.at(-1)?.count, 'delivery says how many of its subscribers were dropped')

  ;(a.ws as unknown as { _socket: import('node:net').Socket })._socket.resume()
  app.realtime.disconnect(connection.id, 4503, 'bye')
  await until(() => on.connectionClose.length === 1)
  t.match(on.connectionClose, [{ connection, code: 4503, reason: 'bye' }])
  t.match(on.unsubscribe.at(-1), { topic: 'ticker', reason: 'disconnect' })
})

t.test('the handler tracing channel wraps sync, async and failing handlers', async (t) => {
  const seen: string[] = []
  const traces: HandlerTrace[] = []
  const record = (what: string) => (trace: HandlerTrace) => {
    seen.push(`${what} ${trace.route}`)
    if (what === 'start') traces.push(trace)
  }
  const subscribers = { start: record('start'), end: record('end'), asyncStart: record('asyncStart'), asyncEnd: record('asyncEnd'), error: record('error') }
  handlerChannel.subscribe(subscribers)
  t.teardown(() => handlerChannel.unsubscribe(subscribers))
  const { url } = await build(t, {}, (app) => {
    app.realtime.route({ type: 'sync', schema: { data: Type.Unknown(), reply: Type.String() }, handler: () => 'ok' })
    app.realtime.route({ type: 'async', schema: { data: Type.Unknown(), reply: Type.String() }, handler: async () => 'later' })
    app.realtime.route({ type: 'throws', schema: { data: Type.Unknown() }, handler: () => { throw new Error('boom') } })
    app.realtime.route({ type: 'rejects', schema: { data: Type.Unknown() }, handler: async () => { throw new Error('later boom') } })
  })
  const c = await connect(t, url)
  t.equal((await c.request('sync', {})).data, 'ok')
  t.same(seen.splice(0), ['start sync', 'end sync'])
  t.equal((await c.request('async', {})).data, 'later')
  t.same(seen.splice(0), ['start async', 'end async', 'asyncStart async', 'asyncEnd async'])
  t.equal((await c.request('throws', {})).error?.code, 'INTERNAL')
  t.same(seen.splice(0), ['start throws', 'error throws', 'end throws'])
  t.equal((await c.request('rejects', {})).error?.code, 'INTERNAL')
  t.same(seen.splice(0), ['start rejects', 'end rejects', 'error rejects', 'asyncStart rejects', 'asyncEnd rejects'])
  t.ok(traces.every((trace) => typeof trace.connectionId === 'string' && trace.connection.id === trace.connectionId))
  t.equal((traces[1].result as unknown), 'later', 'asyncEnd carries the resolved value')
  t.match(traces[3].error, { message: 'later boom' })
})

t.test('with metrics off, the plugin itself listens on no channel (each event costs one property read)', async (t) => {
  const { url } = await build(t, {}, (app) => {
    app.realtime.route({ type: 'echo', schema: { data: Type.String(), reply: Type.String() }, handler: (data) => data })
  })
  const c = await connect(t, url)
  t.equal((await c.request('echo', 'x')).data, 'x')
  for (const channel of Object.values(diagnosticsChannels)) t.equal(channel.hasSubscribers, false, `${channel.name as string} has no subscriber`)
  t.equal(handlerChannel.start.hasSubscribers, false)
})
