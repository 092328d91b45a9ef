// Type tests of fastify-realtime/react, checked by `tsc -p types`: the hooks take their
// types from the same contract as the client. Every line under an expect-error
// directive must fail to compile.
import { Type } from '@sinclair/typebox'
import { defineContract, type ClientState, type MessageMeta, type RealtimeClient } from '../lib/client/index.js'
import { createRealtimeHooks, useRealtimeClient, type PresenceInfo, type SubscriptionStatus } from '../lib/react/index.js'

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
function expectType<T> (_value: T): void {}
function assertEqual<T extends true> (_proof?: T): void {}

const contract = defineContract({
  routes: {
    'chat.send': {
      data: Type.Object({ room: Type.String(), text: Type.String() }),
      reply: Type.Object({ id: Type.String() }),
      errors: { NOT_IN_ROOM: Type.Object({ room: Type.String() }) },
      idempotent: true
    },
    'chat.typing': { data: Type.Object({ typing: Type.Boolean() }) }
  },
  topics: {
    'room/:name': { message: Type.Object({ text: Type.String() }) }
  },
  events: {
    notice: Type.Object({ text: Type.String() })
  }
})

const hooks = createRealtimeHooks<typeof contract>()
// Passing the contract itself gives the same types.
assertEqual<Equal<typeof hooks, ReturnType<typeof createRealtimeHooks<typeof contract>>>>()
expectType<typeof hooks>(createRealtimeHooks(contract))

// Hooks are called inside components; their types are what matters here.
export function Component (): void {
  const client = hooks.useClient()
  expectType<RealtimeClient<typeof contract>>(client)
  expectType<RealtimeClient>(useRealtimeClient())

  const connection = hooks.useConnectionState()
  expectType<ClientState>(connection.state)
  expectType<boolean>(connection.online)
  // @ts-expect-error: a state is one of the four
  expectType<'offline'>(connection.state)

  const status = hooks.useSubscription('room/general', (message, meta) => {
    assertEqual<Equal<typeof message, { text: string }>>()
    expectType<MessageMeta>(meta)
  })
  expectType<SubscriptionStatus>(status)
  // @ts-expect-error: no topic pattern matches
  hooks.useSubscription('nowhere/1')

  const [first] = hooks.useMessages('room/a', { limit: 10 })
  expectType<{ text: string }>(first.data)
  // @ts-expect-error: a message of this topic has no `n`
  expectType<number>(first.data.n)

  expectType<PresenceInfo>(hooks.usePresence('room/a'))

  const send = hooks.useRequest('chat.send')
  expectType<Promise<{ id: string }>>(send.request({ room: 'a', text: 'hi' }))
  send.request({ room: 'a', text: 'hi' }, { key: 'k-1' }).catch(() => {})
  assertEqual<Equal<typeof send.data, { id: string } | undefined>>()
  if (send.error !== undefined && send.error.code === 'NOT_IN_ROOM') expectType<{ room: string }>(send.error.details)
  // @ts-expect-error: the data must match the route's schema
  send.request({ room: 'a' }).catch(() => {})
  // @ts-expect-error: not a route
  hooks.useRequest('chat.nope')
  expectType<Promise<void>>(hooks.useRequest('chat.typing').request({ typing: true }))

  hooks.useEvent('notice', (data) => { assertEqual<Equal<typeof data, { text: string }>>() })
  // @ts-expect-error: not an event of the contract
  hooks.useEvent('nope', () => {})

  // What the server decides: its subscriptions (topics of the contract) and member counts.
  expectType<string[]>(hooks.useServerSubscriptions())
  expectType<number | undefined>(hooks.usePresenceCount('room/a'))
  // @ts-expect-error: not a topic of the contract
  hooks.usePresenceCount('nope')
  hooks.useSubscription('room/a', undefined, { filter: { tag: 'kind', in: ['a', 'b'] } })
}

// The provider takes a client or options for one.
declare const existing: RealtimeClient<typeof contract>
expectType<Parameters<typeof hooks.RealtimeProvider>[0]>({ client: existing })
expectType<Parameters<typeof hooks.RealtimeProvider>[0]>({ options: { url: '/ws', contract } })
// @ts-expect-error: one or the other, not both
expectType<Parameters<typeof hooks.RealtimeProvider>[0]>({ client: existing, options: { url: '/ws' } })
