// Type tests with TypeBox 1.x (the `typebox` package): routes, topics, events, contracts
// and the client take its schemas, and their data is typed as TypeBox 1's `Static`. The
// same with TypeBox 0.34 is index.test-d.ts and client.test-d.ts. Every line under an
// expect-error directive must fail to compile.
import Fastify from 'fastify'
import { Type, type Static } from 'typebox'
import { WebSocket } from 'ws'
import realtime, { type DeclaredData, type PublishResult, type RouteData, type TopicMessage, type EventData } from '../lib/index.js'
import { createClient, defineContract, type MessageMeta } from '../lib/client/index.js'

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
function expectType<T> (_value: T): void {}
function assertEqual<T extends true> (_proof?: T): void {}

const app = Fastify()
await app.register(realtime)

// ------------------------------------------------------------------ routes

const Data = Type.Object({ room: Type.String(), text: Type.String(), tags: Type.Optional(Type.Array(Type.String())) })
const Reply = Type.Object({ id: Type.String(), at: Type.Number() })
const RoomFull = Type.Object({ capacity: Type.Integer() })

app.realtime.route({
  type: 'chat.send',
  schema: { data: Data, reply: Reply, errors: { ROOM_FULL: RoomFull } },
  handler: async (data, ctx) => {
    assertEqual<Equal<typeof data, Static<typeof Data>>>()
    expectType<string>(data.text)
    expectType<string[] | undefined>(data.tags)
    // @ts-expect-error: no such field in the data schema
    expectType<unknown>(data.txt)
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

const Kinds = Type.Object({
  n: Type.Integer(),
  flag: Type.Boolean(),
  maybe: Type.Union([Type.String(), Type.Null()]),
  mode: Type.Union([Type.Literal('a'), Type.Literal('b')]),
  pair: Type.Tuple([Type.String(), Type.Number()]),
  counts: Type.Record(Type.String(), Type.Number()),
  both: Type.Intersect([Type.Object({ x: Type.String() }), Type.Object({ y: Type.Number() })]),
  fixed: Type.Readonly(Type.String()),
  free: Type.Unknown(),
  date: Type.Unsafe<Date>({ type: 'string' })
})
app.realtime.route({
  type: 'kinds',
  schema: { data: Kinds },
  handler: (data) => {
    // The same type as TypeBox 1's own Static.
    assertEqual<Equal<typeof data, Static<typeof Kinds>>>()
    expectType<number>(data.n)
    expectType<boolean>(data.flag)
    assertEqual<Equal<typeof data.maybe, string | null>>()
    assertEqual<Equal<typeof data.mode, 'a' | 'b'>>()
    assertEqual<Equal<typeof data.pair, [string, number]>>()
    expectType<number | undefined>(data.counts.any)
    expectType<string>(data.both.x)
    expectType<number>(data.both.y)
    expectType<unknown>(data.free)
    expectType<Date>(data.date)
    // @ts-expect-error: a literal union refuses other strings
    data.mode = 'c'
    // @ts-expect-error: a Readonly property
    data.fixed = 'x'
  }
})
assertEqual<Equal<DeclaredData<typeof Kinds>, Static<typeof Kinds>>>()
assertEqual<Equal<DeclaredData<{ text: string }>, { text: string }>>()

// ------------------------------------------------------------------ topics and events

const room = app.realtime.topic('room/:name', {
  params: Type.Object({ name: Type.String() }),
  message: Type.Object({ text: Type.String() }),
  authorize: ({ params }) => {
    expectType<string>(params.name)
    return true
  }
})
await room.publish({ name: 'general' }, { text: 'hi' })
// @ts-expect-error: the message type comes from the topic's schema
await room.publish({ name: 'general' }, { body: 'hi' })
// @ts-expect-error: params are typed
room.name({ room: 'general' })
expectType<string>(room.name({ name: 'general' }))

const feed = app.realtime.topic('feed/:id', { message: Type.Object({ n: Type.Number() }) })
await feed.publish({ id: 'a' }, { n: 1 })
// @ts-expect-error: a wrong field
await feed.publish({ id: 'a' }, { m: 1 })

const notice = app.realtime.event('notice', Type.Object({ text: Type.String() }))
expectType<number>(notice.broadcast({ text: 'x' }))
// @ts-expect-error: event data is typed
notice.broadcast({ txt: 'x' })

// ------------------------------------------------------------------ a contract, the server and the client

const ChatPost = Type.Object({ kind: Type.Literal('chat'), id: Type.String(), text: Type.String() })
const Typing = Type.Object({ kind: Type.Literal('typing'), typing: Type.Boolean() })

const contract = defineContract({
  routes: {
    'chat.send': {
      data: Type.Object({ room: Type.String(), text: Type.String() }),
      reply: Type.Object({ id: Type.String(), at: Type.Integer() }),
      errors: { NOT_IN_ROOM: Type.Object({ room: Type.String() }) }
    },
    get_status: { reply: Type.Object({ up: Type.Boolean() }) }
  },
  topics: {
    'room/:name': { params: Type.Object({ name: Type.String() }), message: Type.Union([ChatPost, Typing]) }
  },
  events: {
    notice: Type.Object({ text: Type.String() })
  }
})
type C = typeof contract
assertEqual<Equal<RouteData<C, 'chat.send'>, { room: string, text: string }>>()
assertEqual<Equal<TopicMessage<C, 'room/a'>, Static<typeof ChatPost> | Static<typeof Typing>>>()
assertEqual<Equal<EventData<C, 'notice'>, { text: string }>>()

const server = Fastify()
await server.register(realtime)
server.realtime.route({
  type: 'chat.send',
  schema: contract.routes['chat.send'],
  handler: async (data, ctx) => {
    expectType<string>(data.text)
    if (data.room === 'x') throw ctx.error('NOT_IN_ROOM', { room: data.room })
    // @ts-expect-error: error details come from the contract
    if (data.room === 'y') throw ctx.error('NOT_IN_ROOM', { room: 1 })
    return { id: 'm1', at: 1 }
  }
})
const contractRoom = server.realtime.topic('room/:name', contract.topics['room/:name'])
await contractRoom.publish({ name: 'a' }, { kind: 'chat', id: '1', text: 'hi' })
// @ts-expect-error: the message schema comes from the contract
await contractRoom.publish({ name: 'a' }, { kind: 'chat', id: 1 })

const client = createClient({ url: 'ws://localhost/ws', contract, WebSocket })
const reply = await client.request('chat.send', { room: 'general', text: 'hi' })
expectType<string>(reply.id)
assertEqual<Equal<typeof reply, { id: string, at: number }>>()
expectType<{ up: boolean }>(await client.request('get_status'))
// @ts-expect-error: data must match the route's schema
await client.request('chat.send', { room: 'general', txt: 'hi' })
client.subscribe('room/general', (message, meta) => {
  assertEqual<Equal<typeof message, Static<typeof ChatPost> | Static<typeof Typing>>>()
  expectType<MessageMeta>(meta)
  if (message.kind === 'chat') expectType<string>(message.text)
  // @ts-expect-error: a typing message has no text
  else expectType<string>(message.text)
})
