// The AsyncAPI 3.0 documents of the chat example, of the CLI example's contract and of
// an app that declares every kind of thing, validated by @asyncapi/parser with no
// error and no warning, and read back for what a client author relies on.
import t from 'tap'
import Fastify from 'fastify'
import { Type } from '@sinclair/typebox'
import realtime, { asyncapiFromContract, defineContract, type AsyncApiDocument } from '../../lib/index.js'
import { buildChat } from '../../examples/chat/app.js'
import { contract as cliContract } from '../../examples/cli/contract.js'
import { problems } from '../fixtures/asyncapi.js'

type Obj = Record<string, any>

/** Follows a local `$ref` (`#/components/messages/x`) in the document. */
function deref (doc: AsyncApiDocument, value: Obj): Obj {
  if (typeof value?.$ref !== 'string') return value
  let target: any = doc
  for (const part of value.$ref.slice(2).split('/')) target = target[part.replace(/~1/g, '/').replace(/~0/g, '~')]
  return deref(doc, target)
}

/** The payloads of an operation's messages (or of its reply's). */
function payloads (doc: AsyncApiDocument, operation: string, reply = false): Obj[] {
  const op = doc.operations[operation] as Obj
  const messages = reply ? op.reply.messages : op.messages
  return messages.map((m: Obj) => deref(doc, deref(doc, m)).payload)
}

async function fullApp () {
  const app = Fastify()
  const Money = Type.Object({ amount: Type.Integer(), currency: Type.String({ minLength: 3, maxLength: 3 }) }, { $id: 'Money', description: 'An amount in minor units', examples: [{ amount: 250, currency: 'EUR' }] })
  const Cart = Type.Object({ items: Type.Array(Type.String()), total: Money })
  await app.register(realtime, {
    authenticate: (token) => token === 'ok' ? { user: { id: 'u1', name: 'Ann' } } : null,
    userSchema: Type.Object({ id: Type.String(), name: Type.String() }),
    asyncapi: { path: '/docs', info: { title: 'Shop', version: '2.1.0', description: 'Every feature' } }
  })
  const rt = app.realtime
  rt.topic('shop/:region/cart/:id', {
    params: Type.Object({ region: Type.Union([Type.Literal('eu'), Type.Literal('us')]), id: Type.Integer({ description: 'Cart number', examples: [42] }) }),
    message: Cart,
    presence: { meta: Type.Object({ device: Type.String({ enum: ['web', 'phone'] }) }) },
    clientPublish: true,
    volatile: true
  })
  rt.topic('news', { message: Type.Object({ headline: Type.String() }) })
  rt.route({
    type: 'cart:add',
    schema: {
      data: Type.Object({ sku: Type.String(), price: Money }),
      reply: Cart,
      errors: { OUT_OF_STOCK: Type.Object({ sku: Type.String() }), TOO_MANY: Type.Object({ max: Type.Integer() }) }
    },
    handler: () => ({ items: [], total: { amount: 0, currency: 'EUR' } })
  })
  rt.route({ type: 'cart.clear', schema: { data: Type.Object({}) }, handler: () => undefined })
  rt.event('price.changed', Type.Object({ sku: Type.String(), price: Money }))
  await app.ready()
  t.teardown(() => app.close())
  return app
}

t.test('the chat example: a valid document naming its routes, topic, user and errors', async (t) => {
  const app = await buildChat()
  await app.ready()
  t.teardown(() => app.close())
  const doc = app.realtime.asyncapi()
  t.same(await problems(doc), [], 'no error, no warning')
  t.equal(doc.asyncapi, '3.0.0')
  t.same(doc.info, { title: 'Chat', version: '1.0.0', description: 'A multi-room chat: rooms are topics `room/<name>`; posts go through `chat.send`.' })
  t.match(doc.servers.realtime, { host: 'localhost', protocol: 'ws', pathname: '/ws', security: [{ $ref: '#/components/securitySchemes/token' }] })

  const room = doc.channels['room.name'] as Obj
  t.equal(room.address, 'room/{name}')
  t.match(room.parameters.name.description, /\^\[a-z0-9-\]\{1,32\}\$/, 'the parameter says what it matches')

  const [send] = payloads(doc, 'chat.send')
  t.same(send.properties.type, { const: 'chat.send', type: 'string' })
  t.same(send.required, ['type', 'data'])
  t.same(send.properties.data.properties.room, { $ref: '#/components/schemas/RoomName' }, 'a schema used in many places is a component')
  t.same(doc.components.schemas.RoomName, { pattern: '^[a-z0-9-]{1,32}$', title: 'RoomName', description: 'A room\'s short name', examples: ['general'], type: 'string' })
  const [reply, error] = payloads(doc, 'chat.send', true)
  t.same(reply.properties.data.required, ['id', 'at'])
  t.same(error.properties.error.anyOf[0].properties.code, { const: 'NOT_IN_ROOM', type: 'string' })
  t.same(error.properties.error.anyOf[0].properties.details, { $ref: '#/components/schemas/NotInRoom' })
  t.same(error.properties.error.anyOf[1], { $ref: '#/components/schemas/ProtocolError' })

  const [typingReply] = payloads(doc, 'chat.typing', true)
  t.notOk('data' in typingReply.properties, 'a route without a reply schema replies without data')

  // The user schema is written once and used by auth's reply and by presence members.
  t.ok(doc.components.schemas.ChatUser, 'the user schema, named by its title')
  t.same(payloads(doc, 'auth', true)[0].properties.data.properties.user, { $ref: '#/components/schemas/ChatUser' })
  const [publication, join] = payloads(doc, 'room.name.receive')
  t.same(publication.properties.data.anyOf[0], { $ref: '#/components/schemas/ChatPost' }, 'ChatPost, also in chat.history\'s reply, is written once')
  t.same(join.properties.type, { const: 'join', type: 'string' })
  t.same(deref(doc, join.properties.member).properties.user, { $ref: '#/components/schemas/ChatUser' }, 'members: the same user schema')

  t.match(doc.components.securitySchemes, { token: { description: /first frame/ } })
  const json = JSON.stringify(doc)
  t.notMatch(json, /"\[object|Symbol\(/, 'nothing of TypeBox but JSON Schema')
})

t.test('the CLI example\'s contract, without a server', async (t) => {
  const doc = asyncapiFromContract(cliContract, { info: { title: 'CLI demo' }, server: { url: 'wss://demo.example.com' } })
  t.same(await problems(doc), [], 'no error, no warning')
  t.match(doc.servers.realtime, { host: 'demo.example.com', protocol: 'wss', pathname: '/ws' })
  t.notOk(doc.servers.realtime.security, 'no auth unless told')
  t.notOk(doc.components.securitySchemes)
  t.same(Object.keys(doc.channels), ['connection', 'broadcast'])
  t.equal((doc.channels.broadcast as Obj).address, 'broadcast')
  t.notOk((doc.channels.broadcast as Obj).parameters, 'a pattern without params has none')
  for (const route of ['echo', 'broadcast', 'status']) t.equal(doc.operations[route].action, 'receive', `route ${route} is received by the server`)
  const [, blank] = payloads(doc, 'broadcast', true)
  t.equal(blank.properties.error.anyOf[0].properties.code.const, 'BLANK')
  t.equal(doc.info.version, '1.0.0', 'a default version')
})

t.test('an app that declares every kind of thing', async (t) => {
  const app = await fullApp()
  const doc = app.realtime.asyncapi({ info: { version: '3.0.0' } })
  t.same(await problems(doc), [], 'no error, no warning')
  t.same(doc.info, { title: 'Shop', version: '3.0.0', description: 'Every feature' }, 'the call\'s info over the option\'s')

  const cart = doc.channels['shop.region.cart.id'] as Obj
  t.equal(cart.address, 'shop/{region}/cart/{id}')
  t.same(cart.parameters.region.enum, ['eu', 'us'], 'literal params become an enum')
  t.match(cart.parameters.id, { description: 'Cart number', examples: ['42'] })
  t.match(cart.description, /Volatile/)
  t.same(Object.keys(cart.messages).sort(), ['error', 'join', 'leave', 'message', 'presence', 'presence.reply', 'publish', 'publish.reply', 'subscribe', 'subscribe.reply', 'subscribed', 'unsubscribed'])

  const [subscribe] = payloads(doc, 'shop.region.cart.id.subscribe')
  t.same(subscribe.properties.data.required, ['topic'])
  t.ok(subscribe.properties.data.properties.since, 'subscribe takes since')
  t.same(deref(doc, subscribe.properties.data.properties.meta).properties.device, { enum: ['web', 'phone'], type: 'string' }, 'presence meta is what subscribe sends')
  const [members] = payloads(doc, 'shop.region.cart.id.presence', true)
  t.same(deref(doc, members.properties.data.properties.members.items).properties.meta, subscribe.properties.data.properties.meta, 'members carry that meta')
  const [publish] = payloads(doc, 'shop.region.cart.id.publish')
  t.ok(publish.properties.data.properties.data, 'a topic clients publish on takes publish frames')
  t.notOk(doc.operations['news.publish'], 'a topic clients cannot publish on has no publish operation')
  t.notOk(doc.operations['news.presence'], 'nor presence without presence')

  // `Money` has an $id: one component, referenced everywhere, keeping its words.
  t.same(doc.components.schemas.Money, { $id: 'Money', description: 'An amount in minor units', examples: [{ amount: 250, currency: 'EUR' }], type: 'object', properties: { amount: { type: 'integer' }, currency: { minLength: 3, maxLength: 3, type: 'string' } }, required: ['amount', 'currency'] })
  t.equal((JSON.stringify(doc).match(/#\/components\/schemas\/Money/g) ?? []).length >= 3, true)
  const [addError] = payloads(doc, 'cart_add', true).slice(1)
  t.same(addError.properties.error.anyOf.map((e: Obj) => e.properties?.code?.const ?? e.$ref), ['OUT_OF_STOCK', 'TOO_MANY', '#/components/schemas/ProtocolError'])
  t.ok(doc.components.messages.cart_add, 'a route name with ":" gets a valid key')
  t.equal(deref(doc, doc.components.messages.cart_add).name, 'cart:add', 'and keeps its name')

  t.equal(doc.operations['event.price.changed'].action, 'send')
  t.equal(doc.operations.auth.action, 'receive')
  t.ok(doc.operations.ping.reply, 'ping is answered by pong')
})

t.test('routes without data, wildcard topics and idempotency, declared on a real server', async (t) => {
  const app = Fastify()
  await app.register(realtime, { path: '/realtime', heartbeat: { interval: 1000, timeout: 500 } })
  app.realtime.route({ type: 'session.end', handler: () => undefined })
  app.realtime.route({ type: 'order.place', idempotent: true, schema: { data: Type.Object({ sku: Type.String() }), reply: Type.Object({ id: Type.String() }) }, handler: () => ({ id: 'o1' }) })
  app.realtime.topic('ticker/*symbol', { message: Type.Object({ price: Type.Number() }), presence: true })
  await app.ready()
  t.teardown(() => app.close())
  const doc = app.realtime.asyncapi({ server: { url: 'ws://127.0.0.1:8080' } })
  t.same(await problems(doc), [], 'no error, no warning')
  const [end] = payloads(doc, 'session.end')
  t.same(end.required, ['type'], 'a route without data takes none')
  t.notOk('data' in end.properties)
  t.equal(end.additionalProperties, false)
  const [order] = payloads(doc, 'order.place')
  t.ok(order.properties.key, 'an idempotent route takes a key')
  t.match(doc.operations['order.place'].description, /Idempotent/)
  t.notOk(end.properties.key)
  const ticker = doc.channels['ticker.symbol'] as Obj
  t.equal(ticker.address, 'ticker/{symbol}')
  t.match(ticker.parameters.symbol.description, /slashes included/)
  t.match(doc.servers.realtime, { host: '127.0.0.1:8080', pathname: '/realtime', description: /every 1000 ms .* \(1500 ms\)/ })
  t.match(deref(doc, payloads(doc, 'ticker.symbol.receive')[1].properties.member).properties.user, { type: 'object' }, 'presence without a user schema: the default user')
})

t.test('a contract describes what the server built from it describes', async (t) => {
  const contract = defineContract({
    routes: {
      'order.place': { data: Type.Object({ sku: Type.String() }), reply: Type.Object({ id: Type.String() }), idempotent: true, errors: { SOLD_OUT: Type.Object({}) } },
      'session.end': {}
    },
    topics: { 'ticker/*symbol': { message: Type.Object({ price: Type.Number() }) } },
    events: { notice: Type.Object({ text: Type.String() }) }
  })
  const app = Fastify()
  await app.register(realtime, { authenticate: () => ({ user: { id: 'u' } }) })
  app.realtime.route({ type: 'order.place', schema: contract.routes['order.place'], handler: () => ({ id: 'o1' }) })
  app.realtime.route({ type: 'session.end', schema: contract.routes['session.end'], handler: () => undefined })
  app.realtime.topic('ticker/*symbol', contract.topics['ticker/*symbol'])
  app.realtime.event('notice', contract.events.notice)
  await app.ready()
  t.teardown(() => app.close())
  const server = app.realtime.asyncapi({ server: { url: 'ws://127.0.0.1:3000' } })
  const fromContract = asyncapiFromContract(contract, { auth: true, server: { url: 'ws://127.0.0.1:3000' } })
  t.same(await problems(fromContract), [], 'no error, no warning')
  t.ok(payloads(fromContract, 'order.place')[0].properties.key, 'idempotency survives the contract')
  for (const part of ['channels', 'operations'] as const) t.same(fromContract[part], server[part], `the same ${part}`)
  // Only the server knows its heartbeat: its welcome example carries the real interval.
  const { welcome: contractWelcome, ...contractMessages } = fromContract.components.messages as Obj
  const { welcome: serverWelcome, ...serverMessages } = server.components.messages as Obj
  t.same(contractMessages, serverMessages, 'the same messages')
  t.same({ ...fromContract.components, messages: null }, { ...server.components, messages: null }, 'the same schemas and security')
  t.equal(serverWelcome.examples[0].payload.data.heartbeat.interval, 25_000)
  t.ok(contractWelcome, 'a contract\'s document has welcome too')
})

t.test('a contract with events and params, and the options a contract needs', async (t) => {
  const contract = defineContract({
    topics: { 'user/:id': { params: Type.Object({ id: Type.Integer() }), message: Type.Object({ text: Type.String() }) } },
    events: {
      notice: Type.Object({ text: Type.String() }),
      // A contract is not compiled by a server: TypeBox kinds JSON cannot carry reach the generator.
      maintenance: Type.Object({ at: Type.Date({ description: 'When it starts' }) })
    }
  })
  const doc = asyncapiFromContract(contract, { path: '/rt', auth: true, userSchema: Type.Object({ id: Type.String() }) })
  t.same(await problems(doc), [], 'no error, no warning')
  t.equal(doc.servers.realtime.pathname, '/rt')
  t.ok(doc.operations.auth)
  t.ok(doc.operations['event.notice'])
  t.equal((doc.channels['user.id'] as Obj).address, 'user/{id}')
  const [maintenance] = payloads(doc, 'event.maintenance')
  t.same(maintenance.properties.data.properties.at, { description: 'When it starts' }, 'a Date is reduced to its words')
})

t.test('server subscriptions, filters, latest-value topics and count presence are described', async (t) => {
  const app = Fastify()
  await app.register(realtime)
  app.realtime.topic('stadium', { message: Type.Object({ n: Type.Integer() }), presence: { mode: 'count' }, latest: true, tags: { schema: Type.Object({ side: Type.String() }), from: () => ({ side: 'home' }) } })
  await app.ready()
  t.teardown(() => app.close())
  const doc = app.realtime.asyncapi() as any
  const channel = doc.channels.stadium
  t.same(Object.keys(channel.messages).sort(), ['error', 'message', 'presence', 'presence.count', 'presence.reply', 'subscribe', 'subscribe.reply', 'subscribed', 'unsubscribed'], 'a count instead of join and leave')
  const description = app.realtime.describe().topics[0]
  t.match(description, { latest: true, presence: { count: true }, tags: { type: 'object' } })
  t.match(JSON.stringify(doc), /Only the publications whose tags \(side\) match/)
})
