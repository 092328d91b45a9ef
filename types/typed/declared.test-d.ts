// Type tests of the server helpers in an application that declares its topics and
// events by declaration merging: a separate program (types/typed/tsconfig.json), since an
// augmentation holds for every file of the program it is in.
import Fastify from 'fastify'
import { Type } from '@sinclair/typebox'
import realtime, { defineContract, type EventsOf, type TopicData, type EventPayload, type TopicsOf, type DeclaredTopicName, type DeclaredEventName } from '../../lib/index.js'

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
function assertEqual<T extends true> (_proof?: T): void {}

// Topics and events from a contract (schemas)…
export const contract = defineContract({
  topics: {
    'ticker/*symbol': { params: Type.Object({ symbol: Type.String() }), message: Type.Object({ price: Type.Number() }) },
    'org/:org/team/:team': { message: Type.Object({ text: Type.String() }) }
  },
  events: { shutdown: Type.Object({ inMs: Type.Integer() }) }
})
type ContractTopics = TopicsOf<typeof contract>
type ContractEvents = EventsOf<typeof contract>

declare module '../../lib/index.js' {
  interface RealtimeTopics extends ContractTopics {
    // …and written by hand (plain types).
    'room/:name': { params: { name: string }, message: { text: string } }
    feed: { message: { id: number } }
  }
  interface RealtimeEvents extends ContractEvents {
    notice: { text: string }
  }
}

assertEqual<Equal<TopicData<'room/a'>, { text: string }>>()
assertEqual<Equal<TopicData<`room/${string}`>, { text: string }>>()
assertEqual<Equal<TopicData<'ticker/BTC/USDT'>, { price: number }>>()
assertEqual<Equal<TopicData<'org/a/team/b'>, { text: string }>>()
assertEqual<Equal<TopicData<'feed'>, { id: number }>>()
// Names of no declared pattern, and names typed only as string, stay unknown.
assertEqual<Equal<TopicData<'room/a/b'>, unknown>>()
assertEqual<Equal<TopicData<'org/a/team'>, unknown>>()
assertEqual<Equal<TopicData<'ticker'>, unknown>>()
assertEqual<Equal<TopicData<'feeds'>, unknown>>()
assertEqual<Equal<TopicData<string>, unknown>>()
assertEqual<Equal<EventPayload<'notice'>, { text: string }>>()
assertEqual<Equal<EventPayload<'shutdown'>, { inMs: number }>>()
assertEqual<Equal<EventPayload<'other'>, unknown>>()

const app = Fastify()
await app.register(realtime)

await app.realtime.publish('room/a', { text: 'hi' })
// @ts-expect-error: wrong data for a declared topic
await app.realtime.publish('room/a', { text: 5 })
// @ts-expect-error: a field the message does not have
await app.realtime.publish('room/a', { body: 'hi' })
const id = 'x' as string
await app.realtime.publish(`room/${id}`, { text: 'hi' })
// @ts-expect-error: template literal names are matched too
await app.realtime.publish(`room/${id}`, { text: null })
await app.realtime.publish('ticker/BTC/USDT', { price: 1 })
// @ts-expect-error: the wildcard takes the rest of the name
await app.realtime.publish('ticker/BTC/USDT', { price: '1' })
await app.realtime.publish('feed', { id: 1 }, { ephemeral: true })
// @ts-expect-error: a literal pattern has its own message
await app.realtime.publish('feed', { text: 'x' })

// A name of no declared pattern is a compile error, as it would be FST_REALTIME_UNKNOWN_TOPIC
// at run time; a name typed only as string is checked at run time.
// @ts-expect-error: 'undeclared/topic' is of no declared pattern
await app.realtime.publish('undeclared/topic', { anything: 1 })
// @ts-expect-error: one segment too many for room/:name
await app.realtime.publish('room/a/b', { text: 'hi' })
// @ts-expect-error: a template literal name of no declared pattern
await app.realtime.publish(`nope/${id}`, { text: 'hi' })
// @ts-expect-error: history() takes declared names too
await app.realtime.history('undeclared/topic')
await app.realtime.publish(id, 12)
assertEqual<Equal<DeclaredTopicName<'nope'>, 'Undeclared topic "nope": declare its pattern in RealtimeTopics'>>()
assertEqual<Equal<DeclaredTopicName<'room/a'>, 'room/a'>>()
assertEqual<Equal<DeclaredTopicName<string>, string>>()
assertEqual<Equal<DeclaredEventName<'nope'>, 'Undeclared event "nope": declare it in RealtimeEvents'>>()
assertEqual<Equal<DeclaredEventName<'notice'>, 'notice'>>()

app.realtime.send('c1', 'notice', { text: 'x' })
// @ts-expect-error: wrong data for a declared event
app.realtime.send('c1', 'notice', { text: 1 })
app.realtime.broadcast('shutdown', { inMs: 1000 }, { except: 'c1' })
// @ts-expect-error: the contract's schema types the event
app.realtime.broadcast('shutdown', { inMs: 'soon' })
// @ts-expect-error: an event nobody declared (FST_REALTIME_UNKNOWN_EVENT at run time)
app.realtime.broadcast('nope', { anything: 1 })
// @ts-expect-error: send() too
app.realtime.send('c1', 'nope', { text: 'x' })
const eventName = 'notice' as string
app.realtime.broadcast(eventName, { anything: 1 })

app.realtime.route({
  type: 'say',
  schema: { data: Type.Object({ room: Type.String(), text: Type.String() }) },
  handler: async (data, ctx) => {
    await ctx.publish(`room/${data.room}`, { text: data.text })
    // @ts-expect-error: ctx.publish is typed like app.realtime.publish
    await ctx.publish(`room/${data.room}`, { txt: data.text })
    // @ts-expect-error: and takes declared names only
    await ctx.publish('undeclared/topic', { text: data.text })
  }
})

// history() is typed by the same declarations.
export const recent = await app.realtime.history('room/a', { limit: 10 })
assertEqual<Equal<typeof recent.publications[number]['data'], { text: string }>>()
export const prices = await app.realtime.history('ticker/BTC/USDT')
assertEqual<Equal<typeof prices.publications[number]['data'], { price: number }>>()
export const anyTopic = await app.realtime.history(id)
assertEqual<Equal<typeof anyTopic.publications[number]['data'], unknown>>()
