// fastify-realtime: the plugin entry. It only composes: the plugin (plugin/register.ts)
// wrapped by fastify-plugin, and the public API, exported from the modules that define it.
import fp from 'fastify-plugin'
import { plugin } from './plugin/register.js'

const fastifyRealtime = fp(plugin, {
  fastify: '5.x',
  name: 'fastify-realtime'
})

export default fastifyRealtime
export { fastifyRealtime }
export type { RealtimeUserRegistry, RealtimeUser } from './plugin/register.js'
export type { Realtime, TopicHandle, EventHandle, TopicOptions, BroadcastOptions, RealtimeStats, ServerSubscribeOptions } from './plugin/public.js'
export type { Tags, TagsOptions } from './pubsub/tags.js'
export type { RouteDefinition, RoutePreHandler, MessageContext, RouteSchema, ReplyOf, ErrorSchemas } from './messages/router.js'
export type { AuthorizeContext, TopicAction, PresenceOptions } from './pubsub/topics.js'
export type { PublishOptions, PublishResult } from './pubsub/publish.js'
export type { Connection, ConnectionInfo, ConnectionState, RealtimeConnectionData, ConnectionSubscriptions, SubscriptionInfo, Registry } from './connection/public.js'
export type { RealtimeHooks, HookName, DisconnectInfo, SubscribeInfo, UnsubscribeInfo, UnsubscribeReason } from './messages/hooks.js'
export type { RealtimeOptions, AuthResult } from './config/options.js'
export type { WebSocketServerOptions, PerMessageDeflateOptions } from './config/websocket-options.js'
export { defaults, OptionsSchema } from './config/options.js'
export { errorCodes, RealtimeError, isRealtimeError, ContractError } from './protocol/errors.js'
export { ErrorCode, CloseCode, UnsubscribeCode, SUBPROTOCOL, SHUTDOWN_CODES, shouldReconnect } from './protocol/constants.js'
export type { ShutdownCode } from './protocol/constants.js'
export { defineContract } from './protocol/contract.js'
export { buildAsyncApi, type AsyncApiDocument } from './asyncapi/document.js'
export { asyncapiFromContract } from './asyncapi/contract.js'
export type { ApiDescription, AsyncApiOptions, ContractAsyncApiOptions } from './asyncapi/description.js'
export type { Contract, RouteContract, TopicContract, RouteName, RouteData, RouteReply, RouteErrorMap, TopicName, TopicNames, TopicMessage, EventName, EventData } from './protocol/contract.js'
export type { TopicsOf, EventsOf, TopicParams, TopicParamNames, TagFilter } from './protocol/contract.js'
export type { RealtimeTopics, RealtimeEvents, TopicData, EventPayload, DeclaredTopicName, DeclaredEventName, DeclaredData, DeclaredPatternOf, NameMatches, PublishFunction } from './pubsub/typed.js'
export { MemoryBroker } from './broker/memory.js'
export type { Broker, Publication, StreamPosition, PublicationListener, RecoveryResult, HistoryOptions, PresenceMember, PresenceEvent, PresenceListener, PublishOptions as BrokerPublishOptions, BrokerCommand, CommandListener, ResyncListener } from './broker/types.js'
export type { IdempotencyScope, IdempotencyClaim, IdempotencyStore } from './broker/types.js'
export type { MemoryBrokerOptions } from './broker/memory.js'
// The Redis broker and the publisher are in fastify-realtime/redis (lib/redis.ts).
export type { MetricsOptions, MetricsRegistry } from './plugin/metrics.js'
export { channels as diagnosticsChannels } from './protocol/diagnostics.js'
export { handlerChannel, type HandlerTrace } from './messages/handler-trace.js'
