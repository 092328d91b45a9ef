// The server of the command-line example. `buildCliServer()` returns the app without
// listening, for tests; run it with `node --import tsx examples/cli/server.ts`
// (HOST and PORT may be set; default 127.0.0.1:3001).
import { pathToFileURL } from 'node:url'
import Fastify, { type FastifyInstance } from 'fastify'
import realtime from '../../lib/index.js'
import { contract } from './contract.js'

/** Names are the demo's tokens: 1 to 32 letters, digits, _ or -. Not authentication. */
const NAME = /^[\p{L}\p{N}_-]{1,32}$/u

export async function buildCliServer (opts: { logger?: boolean } = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: opts.logger ?? false })
  const startedAt = Date.now()
  await app.register(realtime, {
    // DEMO ONLY: the token is the name the client wants to be known by.
    authenticate: (token) => NAME.test(token) ? { user: { id: token } } : null
  })
  const rt = app.realtime
  const nameOf = (user: unknown): string => (user as { id: string }).id

  rt.topic('broadcast', contract.topics.broadcast)

  rt.route({
    type: 'echo',
    schema: contract.routes.echo,
    handler: ({ text }, ctx) => ({ text, from: nameOf(ctx.user) })
  })

  rt.route({
    type: 'broadcast',
    schema: contract.routes.broadcast,
    handler: async ({ text }, ctx) => {
      if (text.trim() === '') throw ctx.error('BLANK', {}, 'Nothing to broadcast')
      const { offset } = await ctx.publish('broadcast', { from: nameOf(ctx.user), text, at: Date.now() })
      return { offset }
    }
  })

  rt.route({
    type: 'status',
    schema: contract.routes.status,
    handler: (_data, ctx) => {
      const stats = rt.stats()
      return {
        connections: stats.connections.active,
        subscribers: stats.topics.broadcast ?? 0,
        uptimeMs: Date.now() - startedAt,
        you: ctx.connection.id
      }
    }
  })

  return app
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const app = await buildCliServer({ logger: true })
  await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 3001) })
  const stop = (): void => { app.close().then(() => process.exit(0), () => process.exit(1)) }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}
