// Type tests of lifecycle hooks and `connection.data` (declaration merging).
import Fastify from 'fastify'
import { Type } from '@sinclair/typebox'
import realtime, { RealtimeError, type Connection, type DisconnectInfo, type MessageContext, type UnsubscribeReason } from '../lib/index.js'

declare module '../lib/index.js' {
  interface RealtimeConnectionData {
    room?: string
    joinedAt: number
  }
}

function expectType<T> (_value: T): void {}

const app = Fastify()
await app.register(realtime)

app.realtime.addHook('onConnect', async (connection) => {
  expectType<Connection<unknown>>(connection)
  connection.data.joinedAt = Date.now()
  connection.data.room = 'general'
  // @ts-expect-error: connection.data is typed by RealtimeConnectionData
  connection.data.room = 5
  // @ts-expect-error: only declared keys
  connection.data.nickname = 'ann'
  if (connection.userId === undefined) throw new RealtimeError('UNAUTHORIZED', 'log in first', { closeCode: 4500 })
})
app.realtime.addHook('onDisconnect', (connection, info) => {
  expectType<DisconnectInfo>(info)
  expectType<number>(info.code)
  expectType<string>(info.reason)
  expectType<string | undefined>(connection.data.room)
})
app.realtime.addHook('onSubscribe', (_connection, info) => {
  expectType<string>(info.topic)
  expectType<Record<string, unknown>>(info.params)
  expectType<boolean | undefined>(info.recovered)
})
app.realtime.addHook('onUnsubscribe', (_connection, info) => {
  expectType<UnsubscribeReason>(info.reason)
  // @ts-expect-error: the reasons are a closed set
  expectType<boolean>(info.reason === 'kicked')
})
app.realtime.addHook('preHandler', async (data, ctx) => {
  expectType<unknown>(data)
  expectType<string>(ctx.type)
  expectType<number>(ctx.connection.data.joinedAt)
})
app.realtime.addHook('onHandlerError', (error, ctx) => {
  expectType<unknown>(error)
  expectType<MessageContext<any, any, unknown>>(ctx)
})
// @ts-expect-error: no such hook
app.realtime.addHook('onConnected', () => {})
// @ts-expect-error: onDisconnect gets the connection and the close info, not a number
app.realtime.addHook('onDisconnect', (_connection, code: number) => { expectType<number>(code) })

app.realtime.route({
  type: 'move',
  schema: { data: Type.Object({ room: Type.String() }) },
  preHandler: (data, ctx) => {
    expectType<string>(data.room)
    expectType<string | undefined>(ctx.connection.data.room)
  },
  handler: (data, ctx) => { ctx.connection.data.room = data.room }
})
app.realtime.route({
  type: 'move2',
  schema: { data: Type.Object({ room: Type.String() }) },
  preHandler: [(data) => {
    // @ts-expect-error: route preHandlers get the route's data type
    expectType<number>(data.room)
  }],
  handler: () => {}
})
