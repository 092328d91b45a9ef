// Internal state is not public API: what README.md documents of `app.realtime`, a
// connection, its subscriptions and the registry is reachable from the exported types,
// and nothing else is. Each line under an expect-error directive must fail to compile.
import Fastify from 'fastify'
import { Type } from '@sinclair/typebox'
import realtime, {
  type Connection,
  type ConnectionInfo,
  type ConnectionState,
  type ConnectionSubscriptions,
  type HandlerTrace,
  type MessageContext,
  type Realtime,
  type Registry,
  type SubscriptionInfo
} from '../lib/index.js'
import * as api from '../lib/index.js'

function expectType<T> (_value: T): void {}

const app = Fastify()
await app.register(realtime)
const rt: Realtime = app.realtime

// ---------------------------------------------------------------- app.realtime

expectType<Registry>(rt.connections)
expectType<number>(rt.stats().connections.total)
expectType<string>(rt.options.path)
expectType<object>(rt.broker)
expectType<unknown>(rt.metrics)
expectType<unknown>(rt.describe())
expectType<unknown>(rt.asyncapi())
await rt.close({ code: 1012 })
// @ts-expect-error: the plugin's own wiring is not API
expectType<unknown>(rt.accept)
// @ts-expect-error: the plugin's own wiring is not API
expectType<unknown>(rt.admission)
// @ts-expect-error: the plugin's own wiring is not API
expectType<unknown>(rt.start)
// @ts-expect-error: the plugin's own wiring is not API
expectType<unknown>(rt.shutdown)
// @ts-expect-error: the heartbeat's sweep period is internal
expectType<number>(rt.heartbeatTick)
// @ts-expect-error: use app.log or a connection's log
expectType<unknown>(rt.log)
// @ts-expect-error: app.realtime.broker identifies the instance; its methods are not API
expectType<unknown>(rt.broker.publish)
// A shutdown closes with 1000 (stop for good: clients do not reconnect), 1001 or 1012, and
// nothing else: the error names the three ('not assignable to type 1000 | 1001 | 1012').
await rt.close({ code: 1000 })
await rt.close({ code: 1001, reason: 'maintenance' })
expectType<1000 | 1001 | 1012>(rt.options.closeCode)
// @ts-expect-error: a shutdown closes with 1000, 1001 or 1012 only
await rt.close({ code: 4000 })
// @ts-expect-error: 1002 is the WebSocket layer's, not a shutdown's
await rt.close({ code: 1002 })

// ---------------------------------------------------------------- the registry

const registry = app.realtime.connections
expectType<number>(registry.size)
for (const connection of registry) expectType<Connection>(connection)
expectType<Connection | undefined>(registry.get('id'))
expectType<Connection[]>(registry.byUser('u'))
// @ts-expect-error: only the plugin adds connections
expectType<unknown>(registry.add)
// @ts-expect-error: only the plugin removes them
expectType<unknown>(registry.delete)
// @ts-expect-error: read it from stats()
expectType<number>(registry.total)

// ---------------------------------------------------------------- a connection

declare const connection: Connection<{ name: string }>
expectType<string>(connection.id)
expectType<{ name: string } | undefined>(connection.user)
expectType<string | undefined>(connection.userId)
expectType<ConnectionState>(connection.state)
expectType<number>(connection.connectedAt + connection.lastSeen + connection.messagesIn + connection.messagesOut + connection.bufferedAmount)
expectType<string>(connection.request.ip)
connection.log.info('hello')
connection.data = { ...connection.data }
expectType<boolean>(connection.isSubscribed('room/a'))
expectType<ConnectionInfo>(connection.toJSON())
// @ts-expect-error: read-only
connection.user = { name: 'x' }
// @ts-expect-error: read-only
connection.messagesIn = 0
// @ts-expect-error: the socket is the plugin's
expectType<unknown>(connection.socket)
// @ts-expect-error: internal state
expectType<unknown>(connection.backlog)
// @ts-expect-error: internal state
expectType<unknown>(connection.bucket)
// @ts-expect-error: internal state
expectType<unknown>(connection.authTimer)
// @ts-expect-error: internal state
expectType<unknown>(connection.closeInfo)
// @ts-expect-error: internal state
expectType<unknown>(connection.pingedAt)
// @ts-expect-error: internal state
expectType<unknown>(connection.ip)
// @ts-expect-error: use app.realtime.send, or an event handle
expectType<unknown>(connection.send)
// @ts-expect-error: use app.realtime.disconnect
expectType<unknown>(connection.close)
// @ts-expect-error: internal
expectType<unknown>(connection.terminate)

// ---------------------------------------------------------------- its subscriptions

const subscriptions: ConnectionSubscriptions = connection.subscriptions
expectType<number>(subscriptions.size)
expectType<boolean>(subscriptions.has('room/a'))
const subscription = subscriptions.get('room/a')
expectType<SubscriptionInfo | undefined>(subscription)
expectType<string | undefined>(subscription?.topic)
expectType<string | undefined>(subscription?.pattern)
for (const [topic, s] of subscriptions) expectType<[string, SubscriptionInfo]>([topic, s])
subscriptions.forEach((s, topic) => { expectType<string>(s.pattern + topic) })
expectType<string[]>([...subscriptions.keys()])
expectType<SubscriptionInfo[]>([...subscriptions.values()])
// @ts-expect-error: publications held until the subscribe reply are internal
expectType<unknown>(subscription?.held)
// @ts-expect-error: the delivery position is internal
expectType<unknown>(subscription?.offset)
// @ts-expect-error: the delivery position is internal
expectType<unknown>(subscription?.epoch)
// @ts-expect-error: read only: subscribe through the protocol
expectType<unknown>(subscriptions.set)
// @ts-expect-error: read only: use app.realtime.unsubscribe
expectType<unknown>(subscriptions.delete)

// ---------------------------------------------------------------- handlers and observers

app.realtime.route({
  type: 'whoami',
  schema: { reply: Type.String() },
  handler: (_data, ctx) => {
    expectType<string>(ctx.type)
    expectType<Connection>(ctx.connection)
    // @ts-expect-error: the compiled route is the runner's
    expectType<unknown>(ctx.route)
    // @ts-expect-error: internal
    expectType<unknown>(ctx.replied)
    // @ts-expect-error: internal
    expectType<unknown>(ctx.capture)
    // @ts-expect-error: the connection a handler is given is the public one
    expectType<unknown>(ctx.connection.socket)
    return ctx.connection.id
  }
})

declare const context: MessageContext
expectType<Connection>(context.connection)

declare const trace: HandlerTrace
expectType<string>(trace.route)
expectType<Connection>(trace.connection)
// @ts-expect-error: the start time is the observers' own (not in the documented payload)
expectType<number | undefined>(trace.startedAt)

app.realtime.addHook('onDisconnect', (c, info) => {
  expectType<number>(info.code)
  // @ts-expect-error: hooks are given the public connection
  expectType<unknown>(c.backlog)
})

// ---------------------------------------------------------------- no class values

// Realtime and Connection are types: the classes behind them are not exported.
// @ts-expect-error: no value
expectType<unknown>(api.Realtime)
// @ts-expect-error: no value
expectType<unknown>(api.Connection)
