// fastify-realtime/dashboard: a live monitoring page an app mounts beside the plugin.
// The page and its chart library (uPlot) are served from the package, no CDN. Live
// figures reach it over the plugin's own protocol, on a system topic only requests
// that pass `authorize` may subscribe to; the connections table and the disconnect
// actions are plain HTTP under the same `authorize`. Nothing here is reachable
// unless the app registers it, and nothing of it unless `authorize` says yes.
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { Type } from '../wire/json-schema.js'
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { INTERNAL_TOPIC_PREFIX } from '../asyncapi/description.js'
import { errorCodes } from '../protocol/errors.js'
import { CloseCode } from '../protocol/constants.js'
import { Collector } from './collector.js'
import { connectionRows } from './rows.js'

/** The system topic the page subscribes to. `$realtime/` keeps it apart from the app's own names and out of the AsyncAPI document. */
export const DASHBOARD_TOPIC = `${INTERNAL_TOPIC_PREFIX}dashboard`

export interface DashboardOptions {
  /** Where the page is served. Default `/realtime/dashboard`. */
  path?: string
  /**
   * Decides who may see the dashboard and act on it: the page, its API and its live
   * topic (checked on the WebSocket upgrade request). Required: return true only for
   * operators (say, by a session cookie or a header your auth sets).
   */
  authorize: (request: FastifyRequest) => boolean | Promise<boolean>
  /** ms between two snapshots. Default 1000, 250 to 60000. */
  interval?: number
  /** Most rows the connections table returns. Default 500. */
  maxRows?: number
  /**
   * Where the plugin authenticates by message (its `authenticate` option): the token
   * the page sends in its `auth` frame, made for an authorized request.
   */
  authToken?: (request: FastifyRequest) => string | Promise<string>
}

// Beside this module: lib/dashboard/public, copied next to dist/dashboard and dist/cjs/dashboard by the build.
const PUBLIC = fileURLToPath(new URL('./public/', import.meta.url))
const require = createRequire(import.meta.url)

function check (options: DashboardOptions): Required<Omit<DashboardOptions, 'authToken'>> & Pick<DashboardOptions, 'authToken'> {
  if (typeof options?.authorize !== 'function') throw new errorCodes.FST_REALTIME_INVALID_OPTION('authorize', 'the dashboard needs an authorize(request) function (return true only for operators)')
  const { path = '/realtime/dashboard', interval = 1000, maxRows = 500 } = options
  if (typeof path !== 'string' || !/^\/[^?#]*[^/?#]$/.test(path)) throw new errorCodes.FST_REALTIME_INVALID_OPTION('path', 'must start with "/" and not end with "/"')
  if (!Number.isInteger(interval) || interval < 250 || interval > 60_000) throw new errorCodes.FST_REALTIME_INVALID_OPTION('interval', 'must be a whole number of ms from 250 to 60000')
  if (!Number.isInteger(maxRows) || maxRows < 1) throw new errorCodes.FST_REALTIME_INVALID_OPTION('maxRows', 'must be a whole number >= 1')
  if (options.authToken !== undefined && typeof options.authToken !== 'function') throw new errorCodes.FST_REALTIME_INVALID_OPTION('authToken', 'must be a function')
  return { path, authorize: options.authorize, interval, maxRows, authToken: options.authToken }
}

/** A file of uPlot, the page's charts: an optional peer, as only apps with a dashboard need it. */
function uplot (file: string): string {
  try {
    return require.resolve(file)
  } catch {
    throw new errorCodes.FST_REALTIME_MISSING_PEER('fastify-realtime/dashboard', 'uplot', 'uplot')
  }
}

const escape = (s: string): string => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`)

const plugin: FastifyPluginAsync<DashboardOptions> = async function realtimeDashboard (app: FastifyInstance, input) {
  const options = check(input)
  const realtime = app.realtime
  const { path, authorize } = options
  const assets: Record<string, { type: string, body: string }> = {
    'dashboard.js': { type: 'text/javascript; charset=utf-8', body: await readFile(PUBLIC + 'dashboard.js', 'utf8') },
    'dashboard.css': { type: 'text/css; charset=utf-8', body: await readFile(PUBLIC + 'dashboard.css', 'utf8') },
    'uplot.js': { type: 'text/javascript; charset=utf-8', body: await readFile(uplot('uplot/dist/uPlot.iife.min.js'), 'utf8') },
    'uplot.css': { type: 'text/css; charset=utf-8', body: await readFile(uplot('uplot/dist/uPlot.min.css'), 'utf8') }
  }
  const page = (await readFile(PUBLIC + 'index.html', 'utf8'))
    .replaceAll('{{base}}', escape(path))
    .replaceAll('{{ws}}', escape(realtime.options.path))
    .replaceAll('{{topic}}', escape(DASHBOARD_TOPIC))
    .replaceAll('{{auth}}', options.authToken === undefined ? '' : 'token')

  realtime.topic(DASHBOARD_TOPIC, {
    message: Type.Unknown(),
    // Snapshots are for now, not for later: none kept, a slow page skips some.
    history: { size: 0 },
    volatile: true,
    authorize: async ({ action, connection }) => action === 'subscribe' && await authorize(connection.request) === true
  })

  const guard = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (await authorize(request) !== true) {
      await reply.code(403).send({ statusCode: 403, error: 'Forbidden', message: 'Not authorized for the realtime dashboard' })
    }
  }

  app.get(path, { onRequest: guard }, async (_request, reply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(page))
  app.get(`${path}/assets/:name`, { onRequest: guard }, async (request, reply) => {
    const asset = assets[(request.params as { name: string }).name]
    if (asset === undefined) return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: 'No such dashboard asset' })
    return reply.type(asset.type).send(asset.body)
  })
  const authToken = options.authToken
  if (authToken !== undefined) {
    app.get(`${path}/api/token`, { onRequest: guard }, async (request, reply) => reply.header('cache-control', 'no-store').send({ token: await authToken(request) }))
  }
  app.get(`${path}/api/connections`, {
    onRequest: guard,
    schema: { querystring: Type.Object({ q: Type.Optional(Type.String({ maxLength: 200 })) }) }
  }, async (request) => connectionRows(realtime, (request.query as { q?: string }).q ?? '', options.maxRows))
  app.post(`${path}/api/disconnect`, {
    onRequest: guard,
    schema: { body: Type.Union([Type.Object({ connectionId: Type.String({ minLength: 1, maxLength: 200 }) }), Type.Object({ userId: Type.String({ minLength: 1, maxLength: 200 }) })]) }
  }, async (request, reply) => {
    const body = request.body as { connectionId?: string, userId?: string }
    const reason = 'disconnected by an operator'
    if (body.connectionId !== undefined) {
      const done = realtime.disconnect(body.connectionId, CloseCode.DISCONNECTED, reason)
      request.log.warn({ connectionId: body.connectionId, done, operator: request.ip }, 'realtime dashboard: disconnect connection')
      if (!done) return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: 'No such connection on this node' })
      return { disconnected: 'connection', connectionId: body.connectionId }
    }
    const userId = body.userId as string
    // Every node closes the user's connections (the order goes through the broker).
    await realtime.disconnectUser(userId, CloseCode.DISCONNECTED, reason)
    request.log.warn({ userId, operator: request.ip }, 'realtime dashboard: disconnect user')
    return { disconnected: 'user', userId }
  })

  const collector = new Collector(realtime)
  let timer: NodeJS.Timeout | undefined
  const tick = (): void => {
    const watchers = realtime.stats().topics[DASHBOARD_TOPIC] ?? 0
    collector.watch(watchers > 0)
    const snapshot = collector.snapshot()
    if (watchers === 0) return
    realtime.publish(DASHBOARD_TOPIC, snapshot).catch((err: unknown) => app.log.warn({ err }, 'realtime dashboard: snapshot not published'))
  }
  app.addHook('onReady', async () => {
    timer = setInterval(tick, options.interval).unref()
  })
  app.addHook('onClose', async () => {
    clearInterval(timer)
    collector.watch(false)
  })
}

/** `app.register(realtimeDashboard, { path, authorize })`, after fastify-realtime. */
export const realtimeDashboard = fp(plugin, {
  fastify: '5.x',
  name: 'fastify-realtime-dashboard',
  dependencies: ['fastify-realtime']
})

export default realtimeDashboard
export type { Snapshot } from './collector.js'
