// A small multi-room chat on top of fastify-realtime.
//
// What it shows: authentication by first message, a parameterised topic
// (`room/:name`) with a union message schema, presence and history, message routes
// that publish to it (one with a typed reply, one ephemeral that skips its sender),
// recent history on join, a declared application error, lifecycle hooks ("ann
// joined" notices, and who is online while any of their tabs is open), and a plain
// Fastify route serving the browser page.
//
// `buildChat()` returns the app without listening, so tests can start it on any port;
// server.ts is the runnable entry (`npm start`).
import { randomUUID } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import Fastify, { type FastifyInstance } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { build as esbuild } from 'esbuild'
import { Registry } from 'prom-client'
import type { Pool } from 'pg'
import realtime, { type Broker } from '../../lib/index.js'
import realtimeDashboard from '../../lib/dashboard/index.js'
import { createPostsTable, inTransaction } from './posts.js'

export const ChatUserSchema = Type.Object({ id: Type.String(), name: Type.String() }, { title: 'ChatUser' })
export type ChatUser = Static<typeof ChatUserSchema>

/** A room's short name, as it appears in `room/<name>`. */
const RoomName = Type.String({ pattern: '^[a-z0-9-]{1,32}$', title: 'RoomName', description: 'A room\'s short name', examples: ['general'] })

export const ChatPostSchema = Type.Object({
  kind: Type.Literal('chat'),
  id: Type.String(),
  user: ChatUserSchema,
  text: Type.String(),
  /** Milliseconds since the epoch, as stamped by the server. */
  at: Type.Integer()
}, { title: 'ChatPost' })
export type ChatPost = Static<typeof ChatPostSchema>

export const TypingNoticeSchema = Type.Object({
  kind: Type.Literal('typing'),
  user: ChatUserSchema,
  typing: Type.Boolean()
})
export type TypingNotice = Static<typeof TypingNoticeSchema>

/** "ann joined" / "ann left": told when a user's first tab joins a room and when their last one leaves. */
export const RoomNoticeSchema = Type.Object({
  kind: Type.Literal('notice'),
  user: ChatUserSchema,
  event: Type.Union([Type.Literal('joined'), Type.Literal('left')]),
  at: Type.Integer()
})
export type RoomNotice = Static<typeof RoomNoticeSchema>

/** Everything published on a room: a post, a typing notice or a join/leave notice, told apart by `kind`. */
export const RoomMessageSchema = Type.Union([ChatPostSchema, TypingNoticeSchema, RoomNoticeSchema])

/** Published on `online` when a user's first connection opens and when their last one closes. */
export const OnlineChangeSchema = Type.Object({ user: ChatUserSchema, online: Type.Boolean() })

const NotInRoom = Type.Object({ room: Type.String() }, { title: 'NotInRoom' })

/**
 * Display names that are accepted: 1 to 32 letters, digits, spaces, `_` or `-`,
 * not starting or ending with a space (so "bob" and " bob" are not two people).
 */
const NAME = /^(?=.{1,32}$)[\p{L}\p{N}_-](?:[\p{L}\p{N} _-]*[\p{L}\p{N}_-])?$/u

export function isValidName (name: string): boolean {
  return NAME.test(name)
}

const pagePath = new URL('./public/index.html', import.meta.url)
const clientEntry = fileURLToPath(new URL('../../lib/client/index.ts', import.meta.url))
let clientBuild: Promise<string> | undefined

/**
 * fastify-realtime/client built for browsers, in memory, once per process. The
 * browser platform also proves that no Node-only module reaches the client.
 */
export function clientBundle (): Promise<string> {
  clientBuild ??= esbuild({ entryPoints: [clientEntry], bundle: true, platform: 'browser', format: 'esm', target: 'es2022', write: false, logLevel: 'silent' })
    .then((result) => result.outputFiles[0].text)
  return clientBuild
}

export interface ChatOptions {
  logger?: boolean
  broker?: Broker
  /**
   * PostgreSQL (with the PostgreSQL broker on the same database): posts are stored in
   * `posts` and published in the same transaction.
   */
  database?: Pool
}

export async function buildChat (opts: ChatOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: opts.logger ?? false })
  const database = opts.database
  if (database !== undefined) await createPostsTable(database)

  // Read and built once at startup: the page and the client are static and small.
  const page = await readFile(pagePath, 'utf8')
  const clientJs = await clientBundle()
  const metrics = new Registry()

  await app.register(realtime, {
    // DEMO ONLY: there are no passwords here. The token a client sends in its `auth`
    // frame *is* the display name it wants, and any valid name is accepted, so anyone
    // can speak as anyone. A real application verifies a session or a signed token
    // here and takes the user from it.
    authenticate: (token) => isValidName(token) ? { user: { id: token, name: token } } : null,
    userSchema: ChatUserSchema,
    // Restarting with the same broker keeps history and epochs, so pages recover what they missed.
    broker: opts.broker,
    // The API's AsyncAPI document at /asyncapi.json (and .yaml), its page at /asyncapi.
    asyncapi: { path: '/asyncapi', info: { title: 'Chat', version: '1.0.0', description: 'A multi-room chat: rooms are topics `room/<name>`; posts go through `chat.send`.' } },
    // Prometheus metrics in this app's own registry, served at GET /metrics below.
    metrics: { registry: metrics }
  })

  // The live monitoring dashboard at /dashboard. OPEN TO ANYONE HERE, for the demo:
  // a real application lets only its operators in, for example
  // `authorize: (request) => request.session?.user?.role === 'admin'`.
  await app.register(realtimeDashboard, {
    path: '/dashboard',
    authorize: () => true,
    // This server authenticates by message: the dashboard's own connection signs in
    // as "dashboard" (any valid name is accepted in this demo, see above).
    authToken: () => 'dashboard'
  })

  app.get('/metrics', async (_request, reply) => {
    return reply.type(metrics.contentType).send(await metrics.metrics())
  })

  const rt = app.realtime

  rt.topic('room/:name', {
    params: Type.Object({ name: RoomName }),
    message: RoomMessageSchema,
    // Connections must authenticate before they can send anything else, so this
    // always holds here; it is spelled out so that the rule survives a change of
    // authentication scheme.
    authorize: ({ connection }) => connection.user !== undefined,
    // Members hear `join`/`leave`; `presence` lists who is in the room (one entry per
    // connection: a user with two tabs appears twice, the page groups them by user id).
    presence: true,
    // The last 100 posts of the last hour are kept: a page that reconnects gets what it
    // missed, and `chat.history` shows recent posts on join.
    history: { size: 100, ttl: 60 * 60_000 }
  })

  rt.topic('online', { message: OnlineChangeSchema, history: { size: 0 } })

  // Who is online, and who is in which room, counted per user: a user with two tabs is
  // online (and in a room) until the last of them goes. The counts live in this
  // process; a deployment of several nodes would keep them in its shared store.
  const tabs = new Counts()
  const inRoom = new Counts()
  const announce = (topic: string, data: unknown): void => {
    // During shutdown publishing is closed: nobody is left to tell.
    rt.publish(topic, data).catch((err) => { if (err.code !== 'FST_REALTIME_CLOSED') app.log.error({ err }, 'announcement failed') })
  }

  rt.addHook('onConnect', (connection) => {
    const user = userOf(connection.user)
    if (tabs.add(user.id, user) === 1) announce('online', { user, online: true })
  })
  rt.addHook('onDisconnect', (connection) => {
    const user = userOf(connection.user)
    if (tabs.remove(user.id) === 0) announce('online', { user, online: false })
  })
  rt.addHook('onSubscribe', (connection, { topic }) => {
    if (!topic.startsWith('room/')) return
    const user = userOf(connection.user)
    if (inRoom.add(`${topic}\n${user.id}`, user) === 1) announce(topic, { kind: 'notice', user, event: 'joined', at: Date.now() })
  })
  rt.addHook('onUnsubscribe', (connection, { topic }) => {
    if (!topic.startsWith('room/')) return
    const user = userOf(connection.user)
    if (inRoom.remove(`${topic}\n${user.id}`) === 0) announce(topic, { kind: 'notice', user, event: 'left', at: Date.now() })
  })

  rt.route({
    type: 'people.online',
    schema: { reply: Type.Object({ users: Type.Array(ChatUserSchema) }) },
    handler: () => ({ users: tabs.values() })
  })

  rt.route({
    type: 'chat.history',
    schema: {
      data: Type.Object({ room: RoomName, limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })) }),
      reply: Type.Object({ posts: Type.Array(ChatPostSchema) }),
      errors: { NOT_IN_ROOM: NotInRoom }
    },
    handler: async ({ room, limit }, ctx) => {
      const topic = joinedRoom(ctx, room)
      const { publications } = await rt.history(topic, { limit: limit ?? 50 })
      return { posts: publications.map((p) => p.data as ChatPost).filter((p) => p.kind === 'chat') }
    }
  })

  rt.route({
    type: 'chat.send',
    // A post resent after a lost connection (same key) is posted once.
    idempotent: true,
    schema: {
      data: Type.Object({
        room: RoomName,
        text: Type.String({ minLength: 1, maxLength: 2000 })
      }),
      reply: Type.Object({ id: Type.String(), at: Type.Integer() }),
      errors: { NOT_IN_ROOM: NotInRoom }
    },
    handler: async ({ room, text }, ctx) => {
      const topic = joinedRoom(ctx, room)
      const post: ChatPost = { kind: 'chat', id: randomUUID(), user: userOf(ctx.user), text, at: Date.now() }
      if (database === undefined) {
        await ctx.publish(topic, post)
      } else {
        // Stored and published in one transaction: both or neither.
        await inTransaction(database, async (client) => {
          const { offset } = await ctx.publish(topic, post, { transaction: client })
          await client.query('INSERT INTO posts (id, room, user_id, text, at, "offset") VALUES ($1, $2, $3, $4, $5, $6)', [post.id, room, post.user.id, text, post.at, offset])
        })
      }
      return { id: post.id, at: post.at }
    }
  })

  rt.route({
    type: 'chat.typing',
    schema: {
      data: Type.Object({ room: RoomName, typing: Type.Boolean() }),
      errors: { NOT_IN_ROOM: NotInRoom }
    },
    handler: async ({ room, typing }, ctx) => {
      const topic = joinedRoom(ctx, room)
      const notice: TypingNotice = { kind: 'typing', user: userOf(ctx.user), typing }
      // The typer knows it is typing: everyone in the room but its own connection hears it.
      // Ephemeral: typing is not part of the room's history and is never replayed.
      await ctx.publish(topic, notice, { except: ctx.connection.id, ephemeral: true })
    }
  })

  app.get('/', async (_request, reply) => {
    return reply.type('text/html; charset=utf-8').send(page)
  })

  app.get('/client.js', async (_request, reply) => {
    return reply.type('text/javascript; charset=utf-8').send(clientJs)
  })

  return app
}

/** The room's topic, when this connection has joined it; NOT_IN_ROOM otherwise. */
function joinedRoom (
  ctx: { connection: { isSubscribed: (topic: string) => boolean }, error: (code: 'NOT_IN_ROOM', details: { room: string }, message?: string) => Error },
  room: string
): string {
  const topic = `room/${room}`
  if (!ctx.connection.isSubscribed(topic)) throw ctx.error('NOT_IN_ROOM', { room }, 'Join the room first')
  return topic
}

/** The connection's user, as `authenticate` above made it. */
function userOf (user: unknown): ChatUser {
  const { id, name } = user as ChatUser
  return { id, name }
}

/** How many of something each key has (tabs of a user, tabs of a user in a room), with the user it is for. */
class Counts {
  readonly #entries = new Map<string, { count: number, user: ChatUser }>()

  /** Counts one more; returns the new count. */
  add (key: string, user: ChatUser): number {
    const entry = this.#entries.get(key) ?? { count: 0, user }
    entry.count++
    this.#entries.set(key, entry)
    return entry.count
  }

  /** Counts one less; returns the new count (0: gone). */
  remove (key: string): number {
    const entry = this.#entries.get(key)
    if (entry === undefined) return 0
    if (--entry.count === 0) this.#entries.delete(key)
    return entry.count
  }

  values (): ChatUser[] {
    return [...this.#entries.values()].map((e) => e.user)
  }
}
