// Type tests of wildcard topic params and of the server helpers in an application that
// declares no RealtimeTopics / RealtimeEvents (types/typed/ checks one that does).
import Fastify from 'fastify'
import { Type } from '@sinclair/typebox'
import realtime, { defineContract, type TopicData, type EventPayload, type TopicName, type TopicParams } from '../lib/index.js'
import { createClient } from '../lib/client/index.js'

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
function expectType<T> (_value: T): void {}
function assertEqual<T extends true> (_proof?: T): void {}

const app = Fastify()
await app.register(realtime)

// ------------------------------------------------------------------ wildcard params

assertEqual<Equal<TopicName<'ticker/*symbol'>, `ticker/${string}`>>()
assertEqual<Equal<TopicName<'org/:org/file/*path'>, `org/${string}/file/${string}`>>()
assertEqual<Equal<TopicParams<'org/:org/file/*path'>, { org: string | number, path: string | number }>>()
assertEqual<Equal<TopicParams<string>, Record<string, string | number>>>()

const ticker = app.realtime.topic('ticker/*symbol', {
  params: Type.Object({ symbol: Type.String() }),
  message: Type.Object({ price: Type.Number() }),
  authorize: ({ params }) => params.symbol.includes('/')
})
expectType<string>(ticker.name({ symbol: 'BTC/USDT' }))
// @ts-expect-error: the params schema names the wildcard
ticker.name({ pair: 'BTC/USDT' })

// Without a params schema, the pattern itself names the params.
const files = app.realtime.topic('org/:org/file/*path', {
  message: Type.Object({ size: Type.Integer() }),
  authorize: ({ params }) => {
    expectType<string>(params.org)
    expectType<string>(params.path)
    // @ts-expect-error: no such param in the pattern
    expectType<string>(params.name)
    return true
  }
})
expectType<string>(files.name({ org: 'acme', path: 'docs/a.md' }))
// @ts-expect-error: every param of the pattern is needed
files.name({ org: 'acme' })
await files.publish({ org: 1, path: 'a/b' }, { size: 1 })

// The typed client takes wildcard names.
export const contract = defineContract({ topics: { 'ticker/*symbol': { message: Type.Object({ price: Type.Number() }) } } })
const client = createClient<typeof contract>({ url: 'ws://localhost/ws' })
client.subscribe('ticker/BTC/USDT', (message) => { expectType<number>(message.price) })
// @ts-expect-error: no pattern for this name
client.subscribe('tick/BTC', () => {})

// ------------------------------------------------------------------ helpers with nothing declared

assertEqual<Equal<TopicData<'room/a'>, unknown>>()
assertEqual<Equal<EventPayload<'notice'>, unknown>>()
await app.realtime.publish('room/a', { anything: true })
await app.realtime.publish('ticker/BTC/USDT', 42)
expectType<boolean>(app.realtime.send('id', 'notice', { whatever: 1 }))
expectType<number>(app.realtime.broadcast('notice', 'text', { except: ['a'] }))
app.realtime.route({
  type: 'x',
  schema: { data: Type.Unknown() },
  handler: async (_data, ctx) => { await ctx.publish('any/name', [1, 2]) }
})
// @ts-expect-error: the name is still a string
await app.realtime.publish(5, {})
