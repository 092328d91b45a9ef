// Type tests of the client and of contracts, checked by `tsc -p types`. Every line
// under an expect-error directive must fail to compile.
import Fastify from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { WebSocket } from 'ws'
import realtime, { defineContract as defineFromServer } from '../lib/index.js'
import {
  createClient, defineContract, RealtimeClientError, isRealtimeClientError,
  type ClientState, type MessageMeta, type RequestError, type RequestErrorCode, type TopicName, type Subscription,
  type SubscribeInfo, type RealtimeClient
} from '../lib/client/index.js'

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
function expectType<T> (_value: T): void {}
function assertEqual<T extends true> (_proof?: T): void {}

// ------------------------------------------------------------------ the contract

const ChatPost = Type.Object({ kind: Type.Literal('chat'), id: Type.String(), text: Type.String() })
const Typing = Type.Object({ kind: Type.Literal('typing'), typing: Type.Boolean() })

const contract = defineContract({
  routes: {
    'chat.send': {
      data: Type.Object({ room: Type.String(), text: Type.String() }),
      reply: Type.Object({ id: Type.String(), at: Type.Integer() }),
      errors: { NOT_IN_ROOM: Type.Object({ room: Type.String() }), ROOM_FULL: Type.Object({ capacity: Type.Integer() }) }
    },
    'chat.typing': {
      data: Type.Object({ room: Type.String(), typing: Type.Boolean() })
    }
  },
  topics: {
    'room/:name': { params: Type.Object({ name: Type.String() }), message: Type.Union([ChatPost, Typing]) },
    'org/:org/team/:team': { message: Type.Object({ n: Type.Number() }) },
    news: { message: Type.Object({ headline: Type.String() }) }
  },
  events: {
    notice: Type.Object({ text: Type.String() })
  }
})

// The same function is exported by the server entry.
assertEqual<Equal<typeof defineFromServer, typeof defineContract>>()

// A route without a data schema takes no data: the client calls it without any.
const statusContract = defineContract({ routes: { get_status: { reply: Type.Object({ up: Type.Boolean() }) }, echo: { data: Type.String() } } })
expectType<object>(statusContract.routes)
const statusClient = createClient<typeof statusContract>({ url: 'ws://localhost/ws', WebSocket })
expectType<{ up: boolean }>(await statusClient.request('get_status'))
expectType<{ up: boolean }>(await statusClient.request('get_status', undefined, { timeoutMs: 1000 }))
// @ts-expect-error: and refuses data
await statusClient.request('get_status', { verbose: true })
// @ts-expect-error: a route with data still needs it
await statusClient.request('echo')
statusClient.send('get_status')
// @ts-expect-error: a topic needs a message schema
defineContract({ topics: { 'room/:name': { params: Type.Object({}) } } })

// Patterns become template literal types.
assertEqual<Equal<TopicName<'room/:name'>, `room/${string}`>>()
assertEqual<Equal<TopicName<'org/:org/team/:team'>, `org/${string}/team/${string}`>>()
assertEqual<Equal<TopicName<'news'>, 'news'>>()

// ------------------------------------------------------------------ the server takes the same schemas

const app = Fastify()
await app.register(realtime)
app.realtime.route({
  type: 'chat.send',
  schema: contract.routes['chat.send'],
  handler: async (data, ctx) => {
    expectType<string>(data.text)
    if (data.room === 'x') throw ctx.error('NOT_IN_ROOM', { room: data.room })
    // @ts-expect-error: error details come from the contract
    if (data.room === 'y') throw ctx.error('ROOM_FULL', { capacity: 'many' })
    return { id: 'm1', at: 1 }
  }
})
app.realtime.route({
  type: 'chat.bad',
  schema: contract.routes['chat.send'],
  // @ts-expect-error: the reply schema comes from the contract
  handler: async () => ({ id: 1, at: 2 })
})
const room = app.realtime.topic('room/:name', contract.topics['room/:name'])
await room.publish({ name: 'a' }, { kind: 'chat', id: '1', text: 'hi' })
// @ts-expect-error: the message schema comes from the contract
await room.publish({ name: 'a' }, { kind: 'chat', id: 1 })

// ------------------------------------------------------------------ the client

const client = createClient({ url: 'ws://localhost/ws', contract, WebSocket })
expectType<RealtimeClient<typeof contract>>(client)
const explicit = createClient<typeof contract>({ url: 'ws://localhost/ws', WebSocket })
expectType<RealtimeClient<typeof contract>>(explicit)
expectType<ClientState>(client.state)

// Requests: data and reply typed by the route.
const reply = await client.request('chat.send', { room: 'general', text: 'hi' })
assertEqual<Equal<typeof reply, { id: string, at: number }>>()
expectType<string>(reply.id)
const none = await client.request('chat.typing', { room: 'general', typing: true }, { timeoutMs: 500 })
assertEqual<Equal<typeof none, void>>()
expectType<void>(none)
// @ts-expect-error: no such route
await client.request('chat.sned', { room: 'general', text: 'hi' })
// @ts-expect-error: data must match the route's schema
await client.request('chat.send', { room: 'general', txt: 'hi' })
// @ts-expect-error: built-ins are not routes
await client.request('subscribe', { topic: 'room/a' })
expectType<boolean>(client.send('chat.typing', { room: 'general', typing: false }))
// @ts-expect-error: send is typed too
client.send('chat.typing', { room: 'general', typing: 'yes' })

// Errors: the route's own codes with typed details, or the protocol's and the client's.
type SendError = RequestError<typeof contract, 'chat.send'>
type SendCode = RequestErrorCode<typeof contract, 'chat.send'>
assertEqual<Equal<Extract<SendCode, 'NOT_IN_ROOM' | 'ROOM_FULL' | 'TIMEOUT' | 'QUEUE_FULL' | 'FORBIDDEN'>, 'NOT_IN_ROOM' | 'ROOM_FULL' | 'TIMEOUT' | 'QUEUE_FULL' | 'FORBIDDEN'>>()
// @ts-expect-error: a code nobody declared is not among them
expectType<SendCode>('ROOM_GONE')
assertEqual<Equal<RequestErrorCode<typeof contract, 'chat.typing'> extends 'NOT_IN_ROOM' ? true : false, false>>()
try {
  await client.request('chat.send', { room: 'general', text: 'hi' })
} catch (err) {
  if (client.isError(err, 'chat.send')) {
    expectType<SendError>(err)
    expectType<boolean>(err.temporary)
    expectType<number | undefined>(err.retryAfterMs)
    if (err.code === 'NOT_IN_ROOM') {
      assertEqual<Equal<typeof err.details, { room: string }>>()
    } else if (err.code === 'ROOM_FULL') {
      expectType<number>(err.details.capacity)
      // @ts-expect-error: details of ROOM_FULL have no room
      expectType<string>(err.details.room)
    } else {
      expectType<unknown>(err.details)
    }
  }
  if (isRealtimeClientError(err)) expectType<string>(err.code)
}
expectType<RealtimeClientError<'X', { a: number }>>(new RealtimeClientError('X', 'y', { details: { a: 1 } }))

// Topics: names typed by pattern, messages by the topic's schema.
const off = client.subscribe('room/general', (message, meta) => {
  assertEqual<Equal<typeof message, Static<typeof ChatPost> | Static<typeof Typing>>>()
  expectType<MessageMeta>(meta)
  expectType<number | undefined>(meta.offset)
  if (message.kind === 'chat') expectType<string>(message.text)
})
expectType<Subscription>(off)
expectType<Promise<SubscribeInfo>>(off.ready)
off()
const name: string = 'general'
client.subscribe(`room/${name}`, (message) => { expectType<'chat' | 'typing'>(message.kind) })
client.subscribe('org/acme/team/web', (message) => { expectType<number>(message.n) })
client.subscribe('news', (message) => { expectType<string>(message.headline) })
// @ts-expect-error: no pattern matches this name
client.subscribe('lobby', () => {})
// @ts-expect-error: the message type comes from the topic
client.subscribe('news', (message: { n: number }) => { expectType<number>(message.n) })
const published = await client.publish('news', { headline: 'x' })
expectType<number>(published.offset)
// @ts-expect-error: a publication must match the topic's schema
await client.publish('news', { title: 'x' })
const present = await client.presence('room/general')
expectType<string>(present.members[0].connectionId)

// Events: the client's own and the contract's.
client.on('state', (state, previous) => { expectType<ClientState>(state); expectType<ClientState>(previous) })
client.on('recovered', ({ topic, recovered }) => { expectType<string>(topic); expectType<boolean>(recovered) })
client.on('welcome', (info) => { expectType<number>(info.heartbeat.interval) })
client.on('notice', (data) => { expectType<string>(data.text) })
client.on('*', (frame) => { expectType<string>(frame.type) })
// @ts-expect-error: not an event of this contract
client.on('noticed', () => {})
const stop: () => void = client.on('close', ({ code, reconnect }) => { expectType<number>(code); expectType<boolean>(reconnect) })
stop()
await client.close()

// ------------------------------------------------------------------ without a contract everything is loose

const loose = createClient({ url: 'ws://localhost/ws', WebSocket, getToken: async () => 'token' })
const anything = await loose.request('whatever', { any: 'thing' })
expectType<unknown>(anything)
loose.subscribe('any/topic', (message) => { expectType<unknown>(message) })
loose.on('custom', (data) => { expectType<unknown>(data) })
// @ts-expect-error: getToken returns a string (or null), maybe asynchronously
createClient({ url: 'ws://localhost/ws', getToken: () => 42 })
// @ts-expect-error: options are typed
createClient({ url: 'ws://localhost/ws', backoff: { maxDelay: '5s' } })
