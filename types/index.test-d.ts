// Type tests of the public API, checked by `tsc -p types` in `npm test`. Every line
// under an expect-error directive must fail to compile: if one ever compiles, tsc
// reports the unused directive and the test fails.
import Fastify from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import realtime, { type AsyncApiDocument, asyncapiFromContract, type Connection, type PublishResult, RealtimeError, type RealtimeStats } from '../lib/index.js'

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
function expectType<T> (_value: T): void {}
function assertEqual<T extends true> (_proof?: T): void {}

const app = Fastify()
await app.register(realtime, { path: '/ws', heartbeat: { interval: 1000 }, maxSubscriptions: 10 })
// @ts-expect-error: options are typed
await app.register(realtime, { heartbeat: { interval: 'fast' } })
// @ts-expect-error: authenticate returns { user } or a falsy value
await app.register(realtime, { authenticate: async () => 'user' })
// A shutdown's close code: 1000 (stop for good), 1001 or 1012
await app.register(realtime, { closeCode: 1000 })
// @ts-expect-error: a shutdown closes with 1000, 1001 or 1012 only
await app.register(realtime, { closeCode: 4000 })

const Data = Type.Object({ room: Type.String(), text: Type.String() })
const Reply = Type.Object({ id: Type.String(), at: Type.Number() })
const RoomFull = Type.Object({ capacity: Type.Integer() })

app.realtime.route({
  type: 'chat.send',
  schema: { data: Data, reply: Reply, errors: { ROOM_FULL: RoomFull } },
  handler: async (data, ctx) => {
    assertEqual<Equal<typeof data, Static<typeof Data>>>()
    expectType<string>(data.text)
    // @ts-expect-error: no such field in the data schema
    expectType<unknown>(data.txt)
    expectType<Connection<unknown>>(ctx.connection)
    expectType<string | number | undefined>(ctx.id)
    if (data.room === 'full') throw ctx.error('ROOM_FULL', { capacity: 3 })
    // @ts-expect-error: details must match the declared schema
    if (data.room === 'x') throw ctx.error('ROOM_FULL', { capacity: 'three' })
    // @ts-expect-error: only declared codes
    if (data.room === 'y') throw ctx.error('ROOM_GONE', { capacity: 3 })
    // @ts-expect-error: ctx.reply takes the reply type
    ctx.reply({ id: 1, at: 2 })
    const published: PublishResult = await ctx.publish('room/a', { text: 'x' })
    expectType<number>(published.offset)
    return { id: 'm-1', at: Date.now() }
  }
})

app.realtime.route({
  type: 'bad.reply',
  schema: { data: Data, reply: Reply },
  // @ts-expect-error: the reply must match its schema
  handler: () => ({ id: 5, at: 1 })
})

app.realtime.route({
  type: 'no.reply',
  schema: { data: Type.Object({ n: Type.Integer() }) },
  handler: (data) => { expectType<number>(data.n) }
})

const room = app.realtime.topic('room/:name', {
  params: Type.Object({ name: Type.String() }),
  message: Type.Object({ text: Type.String() }),
  authorize: ({ params, action, user }) => {
    expectType<string>(params.name)
    expectType<'subscribe' | 'publish' | 'presence'>(action)
    expectType<unknown>(user)
    return true
  }
})
await room.publish({ name: 'general' }, { text: 'hi' })
// @ts-expect-error: the message type comes from the topic's schema
await room.publish({ name: 'general' }, { body: 'hi' })
// @ts-expect-error: params are typed
room.name({ room: 'general' })
expectType<string>(room.name({ name: 'general' }))

const notice = app.realtime.event('notice', Type.Object({ text: Type.String() }))
expectType<boolean>(notice.send('id', { text: 'x' }))
expectType<number>(notice.broadcast({ text: 'x' }, { except: 'id' }))
// @ts-expect-error: event data is typed
notice.broadcast({ txt: 'x' })

expectType<boolean>(app.realtime.send('id', 'notice', { text: 'x' }))
// An app that declares no names by merging (RealtimeTopics, RealtimeEvents): any name, checked at run time.
expectType<number>(app.realtime.broadcast('anything', { any: 'data' }))
expectType<Promise<unknown>>(app.realtime.publish('any/topic', 1))
expectType<boolean>(app.realtime.disconnect('id', 4503, 'bye'))
expectType<RealtimeStats>(app.realtime.stats())
for (const c of app.realtime.connections) {
  expectType<string>(c.id)
  expectType<number>(c.bufferedAmount)
  expectType<string[]>(c.toJSON().subscriptions)
}
expectType<Connection<unknown>[]>(app.realtime.connections.byUser('ann'))
expectType<RealtimeError>(new RealtimeError('X', 'y'))

// Routes that take no data: the handler gets undefined, and may still reply.
app.realtime.route({
  type: 'get_status',
  schema: { reply: Type.Object({ up: Type.Boolean() }) },
  handler: (data) => {
    assertEqual<Equal<typeof data, undefined>>()
    return { up: true }
  }
})
app.realtime.route({ type: 'poke', handler: (data) => { expectType<undefined>(data) } })
app.realtime.route({
  type: 'get_status2',
  schema: { reply: Type.Object({ up: Type.Boolean() }) },
  // @ts-expect-error: the reply is still typed
  handler: () => ({ up: 'yes' })
})

// AsyncAPI (issue 15): the option, the document in code, and from a contract.
await app.register(realtime, { asyncapi: { path: '/docs', info: { title: 'Chat' }, server: { url: 'wss://x.example.com' } } })
// @ts-expect-error: info.title is a string
await app.register(realtime, { asyncapi: { info: { title: 3 } } })
const asyncDoc: AsyncApiDocument = app.realtime.asyncapi({ info: { version: '2.0.0' } })
expectType<'3.0.0'>(asyncDoc.asyncapi)
expectType<AsyncApiDocument>(asyncapiFromContract({ routes: { ping: { data: Type.Object({}) } } }, { auth: true, path: '/ws' }))

// The `websocket` option is declared by us (the public types name no ws type, so apps need no
// @types/ws) and must stay what ws accepts: ours assignable to ws's own ServerOptions.
{
  const ours: import('../lib/index.js').WebSocketServerOptions = { perMessageDeflate: { threshold: 512, zlibDeflateOptions: { level: 1 } }, skipUTF8Validation: false }
  const theirs: import('ws').ServerOptions = ours
  expectType<import('ws').ServerOptions>(theirs)
  // @ts-expect-error: the plugin owns maxPayload (its own option of that name)
  await app.register(realtime, { websocket: { maxPayload: 10 } })
}
