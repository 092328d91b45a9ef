// @fastify/websocket registered after us. We registered it ourselves (the app had not), and it
// can be registered once per chain of contexts: its first line decorates every request with
// `ws`, and a second registration throws FST_ERR_DEC_ALREADY_PRESENT from inside avvio, an
// uncaught exception that no plugin can catch. So the app's `register` learns to recognise
// it: without options it is already done (ours serves the app's WebSocket routes too, since
// its onRoute hook sits in the app's context); with options, which ours cannot take back,
// the app fails to start with an error that says which order works.
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { errorCodes } from '../protocol/errors.js'

const WEBSOCKET_PLUGIN = '@fastify/websocket'
/** What fastify-plugin puts on a plugin function: its name among them. */
const PLUGIN_META = Symbol.for('plugin-meta')
/** Options avvio and Fastify read for themselves, not the plugin's own. */
const REGISTER_OPTIONS: ReadonlySet<string> = new Set(['prefix', 'logLevel', 'logSerializers'])

function isWebsocketPlugin (plugin: unknown): boolean {
  const meta = (plugin as Record<symbol, { name?: string } | undefined> | null)?.[PLUGIN_META]
  return meta?.name === WEBSOCKET_PLUGIN
}

function hasOwnOptions (options: unknown): boolean {
  if (typeof options === 'function') return true
  if (options === null || typeof options !== 'object') return false
  return Object.keys(options).some((key) => !REGISTER_OPTIONS.has(key))
}

/** Stands in for a later @fastify/websocket: done already, or refused with the remedy. */
function standIn (path: string) {
  return fp(function websocketAlreadyRegistered (_instance, options, next) {
    if (hasOwnOptions(options)) next(new errorCodes.FST_REALTIME_WEBSOCKET_ORDER(path))
    else next()
  }, { name: `${WEBSOCKET_PLUGIN} (registered by fastify-realtime)` })
}

/**
 * Makes `app.register(websocket)` after fastify-realtime work (or fail with a clear
 * error) instead of crashing. Child contexts inherit `register` from the app, so a later
 * registration in any of them is seen too.
 */
export function adoptLaterWebsocket (app: FastifyInstance, path: string): void {
  const register = app.register as unknown as (this: unknown, plugin: unknown, options?: unknown) => unknown
  const replacement = standIn(path)
  const pick = (plugin: unknown): unknown => {
    if (isWebsocketPlugin(plugin)) return replacement
    // An ES module namespace (`register(import('@fastify/websocket'))` resolves to one).
    const namespace = plugin as { default?: unknown } | null
    if (namespace !== null && typeof namespace === 'object' && isWebsocketPlugin(namespace.default)) return replacement
    return plugin
  }
  const wrapped = function (this: unknown, plugin: unknown, options?: unknown): unknown {
    const given = plugin !== null && typeof (plugin as PromiseLike<unknown>)?.then === 'function'
      ? (plugin as PromiseLike<unknown>).then(pick)
      : pick(plugin)
    return register.call(this, given, options)
  }
  ;(app as unknown as { register: typeof wrapped }).register = wrapped
}
