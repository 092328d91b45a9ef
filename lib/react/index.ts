// fastify-realtime/react: a provider that holds the client in a React context, and hooks
// for the connection state, topics, presence, requests and events, typed from the same
// contract as the client. React is an optional peer dependency: only this entry needs it,
// and nothing in the client depends on React.
//
//   const { RealtimeProvider, useSubscription, useRequest } = createRealtimeHooks<typeof contract>()
import type { ReactNode } from 'react'
import type {
  Contract, EventData, EventName, MessageMeta, RealtimeClient, RequestError, RouteData, RouteName, RouteReply,
  SubscribeOptions, TopicMessage, TopicNames
} from '../client/index.js'
import {
  useConnectionState, useEvent, useMessages, usePresence, useRequest, useSubscription,
  type ConnectionInfo, type PresenceInfo, type ReceivedMessage, type RequestStatus, type SubscriptionStatus
} from './hooks.js'
import { RealtimeProvider, useRealtimeClient, type RealtimeProviderProps } from './provider.js'
import { usePresenceCount, useServerSubscriptions } from './server-hooks.js'

export {
  RealtimeProvider, RealtimeContext, useRealtimeClient, type RealtimeProviderProps
} from './provider.js'
export {
  useConnectionState, useEvent, useMessages, usePresence, useRequest, useSubscription,
  type ConnectionInfo, type PresenceInfo, type ReceivedMessage, type RequestStatus, type SubscriptionStatus
} from './hooks.js'
export { usePresenceCount, useServerSubscriptions } from './server-hooks.js'

/** The hooks, typed by a contract. */
export interface RealtimeHooks<C extends Contract> {
  RealtimeProvider: (props: RealtimeProviderProps<C>) => ReactNode
  useClient: () => RealtimeClient<C>
  useConnectionState: () => ConnectionInfo
  useSubscription: <T extends TopicNames<C>>(topic: T, listener?: (message: TopicMessage<C, T>, meta: MessageMeta) => void, options?: SubscribeOptions) => SubscriptionStatus
  useMessages: <T extends TopicNames<C>>(topic: T, options?: { limit?: number, delta?: boolean }) => Array<ReceivedMessage<TopicMessage<C, T>>>
  usePresence: <T extends TopicNames<C>>(topic: T) => PresenceInfo
  useRequest: <K extends RouteName<C>>(type: K) => RequestStatus<RouteData<C, K>, RouteReply<C, K>, RequestError<C, K>>
  useEvent: <K extends EventName<C>>(name: K, listener: (data: EventData<C, K>) => void) => void
  useServerSubscriptions: () => Array<TopicNames<C>>
  usePresenceCount: <T extends TopicNames<C>>(topic: T) => number | undefined
}

/**
 * The provider and hooks typed by the contract `C` (pass the contract or give its type:
 * `createRealtimeHooks<typeof contract>()`). They are the same functions as the ones
 * exported untyped; only their types differ.
 */
export function createRealtimeHooks<C extends Contract> (_contract?: C): RealtimeHooks<C> {
  return {
    RealtimeProvider,
    useClient: useRealtimeClient,
    useConnectionState,
    useSubscription,
    useMessages,
    usePresence,
    useRequest,
    useEvent,
    useServerSubscriptions,
    usePresenceCount
  } as unknown as RealtimeHooks<C>
}
