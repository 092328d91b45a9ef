// fastify-realtime/client: a typed client for browsers and Node. No Node-only import
// reaches this entry, so it bundles for the browser as it is.
export { createClient, RealtimeClient } from './client.js'
export {
  CLIENT_EVENTS,
  type ClientOptions,
  type ClientState,
  type ClientEvents,
  type RequestOptions,
  type RequestError,
  type RequestErrorCode,
  type MessageMeta,
  type Subscription,
  type SubscribeInfo,
  type SubscribeOptions,
  type WelcomeInfo,
  type PresenceMember,
  type PresenceEvent,
  type RecoveredEvent,
  type UnsubscribedEvent,
  type ServerSubscribedEvent,
  type PresenceCountEvent,
  type CloseEvent,
  type AttemptEvent,
  type ServerFrame,
  type TokenSource,
  type WebSocketLike,
  type WebSocketConstructor,
  type NetworkTargets,
  type EventTargetLike
} from './types.js'
export { RealtimeClientError, isRealtimeClientError, type AnyRealtimeClientError, type ClientErrorCode, type RealtimeClientErrorOptions } from './errors.js'
export { backoffDelay, resolveBackoff, backoffDefaults, type BackoffOptions } from './backoff.js'
export { shouldReconnect, SUBPROTOCOL, UnsubscribeCode, type ProtocolErrorCode } from './protocol.js'
// The contract helper lives with the server too; exporting it here lets a contract
// module shared with a browser import nothing but this entry and TypeBox.
export {
  defineContract,
  type Contract,
  type RouteContract,
  type TopicContract,
  type RouteName,
  type RouteData,
  type RouteReply,
  type RouteErrorMap,
  type TopicName,
  type TopicNames,
  type TopicMessage,
  type EventName,
  type EventData,
  type TagFilter
} from '../protocol/contract.js'
