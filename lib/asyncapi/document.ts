// Builds an AsyncAPI 3.0 document from an application's declarations. The document
// describes the server: `receive` operations are frames the server takes from a
// client, `send` operations are frames it sends. All frames travel on one WebSocket:
// the `connection` channel holds routes, events and the connection's built-ins, and
// each topic pattern has a channel of its own (`room/{name}`) for its publications,
// presence and the requests that name it (subscribe, publish, presence).
import type { TSchema } from '../protocol/schema.js'
import { SUBPROTOCOL } from '../protocol/constants.js'
import { schemaEngines } from '../wire/schema-compiler.js'
import { isInternalTopic, type ApiDescription, type AsyncApiOptions, type RouteDescription, type TopicDescription } from './description.js'
import { example } from './example.js'
import { SchemaComponents, type JsonSchema } from './schemas.js'
import * as wire from './wire.js'

export const ASYNCAPI_VERSION = '3.0.0'

export interface AsyncApiDocument {
  asyncapi: typeof ASYNCAPI_VERSION
  info: { title: string, version: string, description?: string }
  defaultContentType: string
  servers: Record<string, JsonSchema>
  channels: Record<string, JsonSchema>
  operations: Record<string, JsonSchema>
  components: { schemas: Record<string, JsonSchema>, messages: Record<string, JsonSchema>, securitySchemes?: Record<string, JsonSchema> }
}

interface MessagePlan { name: string, title: string, summary: string, payload: TSchema }
interface Answer { channel: string, messages: string[] }
interface OperationPlan {
  action: 'send' | 'receive'
  channel: string
  messages: string[]
  title: string
  summary: string
  description?: string
  reply?: Answer
}
interface ChannelPlan {
  address: string | null
  title: string
  description: string
  parameters?: Record<string, JsonSchema>
  /** Key in the channel → key in components.messages. */
  messages: Record<string, string>
  bindings?: JsonSchema
}

const CONNECTION = 'connection'
const KEY = /[^A-Za-z0-9._-]/g
const DEFAULT_USER = { type: 'object', properties: { id: { anyOf: [{ type: 'string' }, { type: 'number' }] } } } as unknown as TSchema

/** A key that is valid in an AsyncAPI map and not yet taken. */
function uniqueKey (taken: object, wanted: string): string {
  const base = wanted.replace(KEY, '_')
  let key = base
  for (let i = 2; key in taken; i++) key = `${base}_${i}`
  return key
}

/** `room/:name` → `room/{name}`; `ticker/*symbol` → `ticker/{symbol}`. */
export function channelAddress (pattern: string): string {
  return pattern.split('/').map((s) => s[0] === ':' || s[0] === '*' ? `{${s.slice(1)}}` : s).join('/')
}

class Plan {
  readonly messages: Record<string, MessagePlan> = {}
  readonly channels: Record<string, ChannelPlan> = {}
  readonly operations: Record<string, OperationPlan> = {}
  /** Names for shared schemas of our own making (a topic's presence member). */
  readonly hints: Array<[TSchema, string]> = []

  /** Adds a message to components (once per `shared` key) and to a channel; returns its key in that channel. */
  message (channel: string, local: string, plan: MessagePlan, shared?: string): string {
    let key = shared
    if (key === undefined || !(key in this.messages)) {
      key = key ?? uniqueKey(this.messages, channel === CONNECTION ? local : `${channel}.${local}`)
      this.messages[key] = plan
    }
    const messages = this.channels[channel].messages
    const inChannel = uniqueKey(messages, local)
    messages[inChannel] = key
    return inChannel
  }

  operation (wanted: string, plan: OperationPlan): void {
    this.operations[uniqueKey(this.operations, wanted)] = plan
  }
}

export function buildAsyncApi (declared: ApiDescription, options: AsyncApiOptions = {}): AsyncApiDocument {
  // Decided here, where both the served document and the CLI's are built.
  const description = { ...declared, topics: declared.topics.filter((topic) => !isInternalTopic(topic.pattern)) }
  const plan = new Plan()
  const user = description.userSchema ?? DEFAULT_USER
  plan.channels[CONNECTION] = {
    address: null,
    title: 'The connection',
    description: `Every frame travels on one WebSocket at \`${description.path}\` (subprotocol \`${SUBPROTOCOL}\`): one JSON object per text frame. This channel carries the message routes, the server's events and the connection's built-in frames.`,
    messages: {},
    bindings: { ws: { method: 'GET', headers: { type: 'object', properties: { 'Sec-WebSocket-Protocol': { type: 'string', const: SUBPROTOCOL } } }, bindingVersion: '0.1.0' } }
  }
  const error = plan.message(CONNECTION, 'error', { name: 'error', title: 'Error', summary: 'A request failed, or a frame without id did. The connection stays open.', payload: wire.errorFrame([wire.ProtocolError]) }, 'error')

  plan.message(CONNECTION, 'welcome', { name: 'welcome', title: 'Welcome', summary: 'First frame of an accepted connection (after `auth` where the server authenticates by message).', payload: wire.welcome(description.heartbeat) })
  plan.operation('welcome', { action: 'send', channel: CONNECTION, messages: ['welcome'], title: 'Welcome', summary: 'The server accepts the connection' })
  plan.operation('error', { action: 'send', channel: CONNECTION, messages: [error], title: 'Error', summary: 'The server reports a failed frame that carried no id' })

  if (description.auth === 'message') {
    const auth = plan.message(CONNECTION, 'auth', { name: 'auth', title: 'Authenticate', summary: 'Must be the first frame, within the auth timeout; may be sent again to refresh credentials.', payload: wire.request('auth', wire.AuthData) })
    const reply = plan.message(CONNECTION, 'auth.reply', { name: 'reply', title: 'Authenticated', summary: 'The user as clients see it. Bad credentials: an UNAUTHORIZED error, then close 4500.', payload: wire.reply(object({ user })) })
    plan.operation('auth', { action: 'receive', channel: CONNECTION, messages: [auth], title: 'Authenticate', summary: 'A client authenticates with a token', reply: { channel: CONNECTION, messages: [reply, error] } })
  }

  for (const route of description.routes) addRoute(plan, route, error)
  for (const topic of description.topics) addTopic(plan, topic, user, error)

  const unsubscribe = plan.message(CONNECTION, 'unsubscribe', { name: 'unsubscribe', title: 'Unsubscribe', summary: 'Leaves a topic.', payload: wire.request('unsubscribe', wire.TopicData) })
  const unsubscribed = plan.message(CONNECTION, 'unsubscribe.reply', { name: 'reply', title: 'Unsubscribed', summary: 'Empty data.', payload: wire.reply(object({})) })
  plan.operation('unsubscribe', { action: 'receive', channel: CONNECTION, messages: [unsubscribe], title: 'Unsubscribe', summary: 'A client leaves a topic', reply: { channel: CONNECTION, messages: [unsubscribed, error] } })
  const ping = plan.message(CONNECTION, 'ping', { name: 'ping', title: 'Ping', summary: 'For clients that cannot see WebSocket pings (browsers).', payload: wire.request('ping', undefined) })
  const pong = plan.message(CONNECTION, 'pong', { name: 'pong', title: 'Pong', summary: 'The answer to `ping`.', payload: wire.Pong })
  plan.operation('ping', { action: 'receive', channel: CONNECTION, messages: [ping], title: 'Ping', summary: 'A client checks the connection', reply: { channel: CONNECTION, messages: [pong] } })

  for (const { name, schema } of description.events) {
    const key = plan.message(CONNECTION, name, { name, title: name, summary: `The server's \`${name}\` event.`, payload: wire.event(name, schema) })
    plan.operation(`event.${name}`, { action: 'send', channel: CONNECTION, messages: [key], title: name, summary: `The server sends the \`${name}\` event` })
  }

  return write(plan, description, options)
}

function addRoute (plan: Plan, route: RouteDescription, error: string): void {
  const { type } = route
  const request = plan.message(CONNECTION, type, {
    name: type,
    title: type,
    summary: route.data === undefined ? `Calls \`${type}\`, which takes no data.` : `Calls \`${type}\`; \`data\` is validated before the handler runs.`,
    payload: wire.request(type, route.data, route.idempotent)
  })
  const reply = plan.message(CONNECTION, `${type}.reply`, {
    name: 'reply',
    title: `${type} reply`,
    summary: route.reply === undefined ? 'Sent when the request had an id; carries no data.' : 'Sent when the request had an id.',
    payload: wire.reply(route.reply)
  })
  const codes = Object.entries(route.errors ?? {})
  const failed = codes.length === 0
    ? error
    : plan.message(CONNECTION, `${type}.error`, {
      name: 'error',
      title: `${type} error`,
      summary: `Codes of the route (${codes.map(([code]) => code).join(', ')}) with their details, or a protocol error.`,
      payload: wire.errorFrame([...codes.map(([code, details]) => wire.appError(code, details)), wire.ProtocolError])
    })
  plan.operation(type, {
    action: 'receive',
    channel: CONNECTION,
    messages: [request],
    title: type,
    summary: `Route \`${type}\``,
    description: route.idempotent === true ? 'Idempotent: send a `key` to have a retry answered without running the handler again.' : undefined,
    reply: { channel: CONNECTION, messages: [reply, failed] }
  })
}

function addTopic (plan: Plan, topic: TopicDescription, user: TSchema, error: string): void {
  const address = channelAddress(topic.pattern)
  const channel = uniqueKey(plan.channels, address.replace(/[{}]/g, '').replace(/\//g, '.'))
  const parameters = topicParameters(topic)
  plan.channels[channel] = {
    address,
    title: address,
    description: `Topic pattern \`${topic.pattern}\`.${topic.volatile === true ? ' Volatile: publications may be dropped for a slow subscriber rather than closing it.' : ''}`,
    ...(Object.keys(parameters).length > 0 ? { parameters } : {}),
    messages: {}
  }
  const errorHere = plan.message(channel, 'error', plan.messages[error], error)
  const publication = plan.message(channel, 'message', { name: 'message', title: `${address} publication`, summary: 'A publication on a subscribed topic.', payload: wire.publication(topic.message) })
  const received = [publication]
  const meta = topic.presence?.meta
  if (topic.presence?.count === true) {
    received.push(plan.message(channel, 'presence.count', { name: 'presence', title: `${address} member count`, summary: 'How many members the topic has (debounced), instead of each join and leave.', payload: wire.PresenceCount }))
  }
  if (topic.presence !== null) {
    const memberSchema = wire.member(user, meta)
    plan.hints.push([memberSchema, `${channel} member`])
    for (const kind of topic.presence.count === true ? [] : ['join', 'leave'] as const) {
      received.push(plan.message(channel, kind, { name: kind, title: `${address} ${kind}`, summary: `A member ${kind === 'join' ? 'joined' : 'left'} (one per connection).`, payload: wire.presenceEvent(kind, memberSchema) }))
    }
    const presence = plan.message(channel, 'presence', { name: 'presence', title: `${address} presence`, summary: 'Lists the members of a topic.', payload: wire.request('presence', wire.TopicData) })
    const members = plan.message(channel, 'presence.reply', { name: 'reply', title: `${address} members`, summary: 'One entry per connection.', payload: wire.reply(object({ members: { type: 'array', items: memberSchema } as unknown as TSchema })) })
    plan.operation(`${channel}.presence`, { action: 'receive', channel, messages: [presence], title: `Presence of ${address}`, summary: 'A client asks who is there', reply: { channel, messages: [members, errorHere] } })
  }
  received.push(plan.message(channel, 'subscribed', { name: 'subscribed', title: 'Subscribed by the server', summary: 'The server subscribed the connection to this topic.', payload: wire.Subscribed }, 'subscribed'))
  received.push(plan.message(channel, 'unsubscribed', { name: 'unsubscribed', title: 'Unsubscribed', summary: 'The server ended a subscription.', payload: wire.Unsubscribed }, 'unsubscribed'))
  plan.operation(`${channel}.receive`, { action: 'send', channel, messages: received, title: `Publications on ${address}`, summary: 'The server delivers to subscribers' })

  const subscribeData = object({ topic: wire.Topic, since: wire.since(), ...(meta === undefined ? {} : { meta }), ...(topic.tags === undefined ? {} : { filter: wire.filter(topic.tags) }) }, ['topic'])
  const subscribe = plan.message(channel, 'subscribe', { name: 'subscribe', title: `Subscribe to ${address}`, summary: 'Subscribes; with `since`, resumes after that position.', payload: wire.request('subscribe', subscribeData) })
  const subscribed = plan.message(channel, 'subscribe.reply', { name: 'reply', title: 'Subscribed', summary: 'Recovered publications follow this reply, before any newer one.', payload: wire.reply(wire.SubscribeReply) }, 'subscribe.reply')
  plan.operation(`${channel}.subscribe`, { action: 'receive', channel, messages: [subscribe], title: `Subscribe to ${address}`, summary: 'A client subscribes', reply: { channel, messages: [subscribed, errorHere] } })

  if (topic.clientPublish) {
    const publish = plan.message(channel, 'publish', { name: 'publish', title: `Publish on ${address}`, summary: 'Publishes from the client; `data` is validated by the topic\'s message schema.', payload: wire.request('publish', object({ topic: wire.Topic, data: topic.message })) })
    const published = plan.message(channel, 'publish.reply', { name: 'reply', title: 'Published', summary: 'The offset of the publication.', payload: wire.reply(wire.PublishReply) }, 'publish.reply')
    plan.operation(`${channel}.publish`, { action: 'receive', channel, messages: [publish], title: `Publish on ${address}`, summary: 'A client publishes', reply: { channel, messages: [published, errorHere] } })
  }
}

/** AsyncAPI parameters of a topic channel, from the params schema's properties (strings only: they are parts of a name). */
function topicParameters (topic: TopicDescription): Record<string, JsonSchema> {
  const out: Record<string, JsonSchema> = {}
  const properties = ((topic.params as JsonSchema | undefined)?.properties ?? {}) as Record<string, JsonSchema>
  for (const segment of topic.pattern.split('/')) {
    if (segment[0] !== ':' && segment[0] !== '*') continue
    const name = segment.slice(1)
    const schema = properties[name] ?? {}
    const words = [(typeof schema.description === 'string' ? schema.description : `The \`${name}\` part of the topic name`).replace(/([^.!?])$/, '$1.')]
    if (segment[0] === '*') words.push('It is the rest of the name, slashes included.')
    if (typeof schema.pattern === 'string') words.push(`Matches \`${schema.pattern}\`.`)
    const parameter: JsonSchema = { description: words.join(' ') }
    const values = allowedValues(schema)
    if (values !== undefined) parameter.enum = values.map(String)
    if (schema.default !== undefined) parameter.default = String(schema.default)
    if (Array.isArray(schema.examples)) parameter.examples = schema.examples.map(String)
    out[name] = parameter
  }
  return out
}

/** The values a param may take, where its schema lists them: `enum`, `const`, or a union of literals. */
function allowedValues (schema: JsonSchema): unknown[] | undefined {
  if (Array.isArray(schema.enum)) return schema.enum
  if (schema.const !== undefined) return [schema.const]
  const options = schema.anyOf ?? schema.oneOf
  if (Array.isArray(options) && options.length > 0 && options.every((o: JsonSchema) => o.const !== undefined)) return options.map((o: JsonSchema) => o.const)
  return undefined
}

function object (properties: Record<string, TSchema>, required = Object.keys(properties)): TSchema {
  return { type: 'object', properties, required } as unknown as TSchema
}

/** Shared schemas are named after what the application declared them as: `ChatSendReply`, `User`… */
function hintNames (schemas: SchemaComponents, description: ApiDescription): void {
  schemas.hint(description.userSchema, 'User')
  for (const route of description.routes) {
    schemas.hint(route.data, `${route.type} data`)
    schemas.hint(route.reply, `${route.type} reply`)
    for (const [code, details] of Object.entries(route.errors ?? {})) schemas.hint(details, `${route.type} ${code}`)
  }
  for (const topic of description.topics) {
    const name = channelAddress(topic.pattern).replace(/[{}]/g, '')
    schemas.hint(topic.message, `${name} message`)
    schemas.hint(topic.params, `${name} params`)
    schemas.hint(topic.presence?.meta, `${name} meta`)
  }
  for (const { name, schema } of description.events) schemas.hint(schema, name)
}

/**
 * A message example built from the schema, kept only when the schema accepts it (a
 * pattern may not). `addUsedSchema: false`: payloads that embed one `$id` are checked
 * one by one, never registered side by side (which Ajv would refuse).
 */
function exampleChecker (): (payload: TSchema) => { examples?: Array<{ name: string, payload: unknown }> } {
  // Required when a document is first built, not when the plugin is imported.
  const { Ajv, addFormats } = schemaEngines()
  const ajv = new Ajv({ strict: false, allErrors: false, addUsedSchema: false })
  addFormats(ajv)
  return (payload) => {
    const value = example(payload)
    try {
      if (ajv.validate(payload, value)) return { examples: [{ name: 'example', payload: value }] }
    } catch {
      // A schema Ajv cannot compile alone (a `$ref` to a schema the app gave its own Ajv): no example.
    }
    return {}
  }
}

function serverOf (description: ApiDescription, options: AsyncApiOptions): JsonSchema {
  const url = new URL(options.server?.url ?? 'ws://localhost')
  const protocol = url.protocol.replace(/:$/, '')
  const heartbeat = description.heartbeat === undefined
    ? ''
    : ` The server pings every ${description.heartbeat.interval} ms and drops a connection silent for interval + timeout (${description.heartbeat.interval + description.heartbeat.timeout} ms).`
  return {
    host: url.host,
    protocol,
    pathname: description.path,
    title: 'WebSocket endpoint',
    description: `WebSocket (RFC 6455), subprotocol \`${SUBPROTOCOL}\`. A client that offers other subprotocols only is refused with HTTP 400.${heartbeat}`,
    ...(description.auth === 'message' ? { security: [{ $ref: '#/components/securitySchemes/token' }] } : {})
  }
}

function write (plan: Plan, description: ApiDescription, options: AsyncApiOptions): AsyncApiDocument {
  const schemas = new SchemaComponents()
  for (const message of Object.values(plan.messages)) schemas.collect(message.payload)
  hintNames(schemas, description)
  for (const [schema, name] of plan.hints) schemas.hint(schema, name)
  const messages: Record<string, JsonSchema> = {}
  const examplesOf = exampleChecker()
  for (const [key, message] of Object.entries(plan.messages)) {
    messages[key] = {
      name: message.name,
      title: message.title,
      summary: message.summary,
      payload: schemas.write(message.payload, key),
      ...examplesOf(message.payload)
    }
  }
  const channels: Record<string, JsonSchema> = {}
  for (const [key, channel] of Object.entries(plan.channels)) {
    const { messages: refs, ...rest } = channel
    channels[key] = { ...rest, messages: Object.fromEntries(Object.entries(refs).map(([local, target]) => [local, { $ref: `#/components/messages/${target}` }])) }
  }
  const operations: Record<string, JsonSchema> = {}
  const ref = (channel: string): JsonSchema => ({ $ref: `#/channels/${channel}` })
  const messageRefs = (channel: string, keys: string[]): JsonSchema[] => keys.map((key) => ({ $ref: `#/channels/${channel}/messages/${key}` }))
  for (const [key, op] of Object.entries(plan.operations)) {
    operations[key] = {
      action: op.action,
      channel: ref(op.channel),
      title: op.title,
      summary: op.summary,
      ...(op.description === undefined ? {} : { description: op.description }),
      messages: messageRefs(op.channel, op.messages),
      ...(op.reply === undefined ? {} : { reply: { channel: ref(op.reply.channel), messages: messageRefs(op.reply.channel, op.reply.messages) } })
    }
  }
  const info = options.info ?? {}
  return {
    asyncapi: ASYNCAPI_VERSION,
    info: {
      title: info.title ?? 'Real-time API',
      version: info.version ?? '1.0.0',
      description: info.description ?? 'Frames are JSON objects `{ type, id?, data }`. Operations are seen from the server: it `receive`s requests and `send`s replies, publications and events.'
    },
    defaultContentType: 'application/json',
    servers: { realtime: serverOf(description, options) },
    channels,
    operations,
    components: {
      schemas: schemas.components,
      messages,
      ...(description.auth === 'message'
        ? { securitySchemes: { token: { type: 'httpApiKey', name: 'token', in: 'query', description: 'Not a query parameter: the token goes in the first frame, `{ "type": "auth", "data": { "token": "…" } }`.' } } }
        : {})
    }
  }
}
