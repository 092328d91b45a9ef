// Serves a server's AsyncAPI document when the `asyncapi` option is set: JSON at
// `<path>.json`, YAML at `<path>.yaml`, and at `<path>` itself the HTML page, or JSON
// or YAML for a client that asks for them in `Accept`.
import type { AddressInfo } from 'node:net'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { ApiDescription, AsyncApiOptions } from './description.js'
import { buildAsyncApi, type AsyncApiDocument } from './document.js'
import { renderPage } from './page.js'
import { toYaml } from './yaml.js'
import { defaults } from '../config/options.js'

/** The resolved plugin option (see options.ts). */
export interface AsyncApiPluginOptions extends AsyncApiOptions {
  /** Filled with its default (`/asyncapi`) when the options are resolved. */
  path?: string
}

/** What the generator needs of `app.realtime`. */
export interface Describable {
  describe: () => ApiDescription
  options: { asyncapi?: AsyncApiPluginOptions }
}

/** Where each server listens, once it does: the default server URL of its document. */
const listening = new WeakMap<Describable, string>()

/** `app.realtime.asyncapi(options)`: the call's options over the plugin's, over the listening address. */
export function asyncApiOf (realtime: Describable, options: AsyncApiOptions = {}): AsyncApiDocument {
  const plugin = realtime.options.asyncapi
  const url = options.server?.url ?? plugin?.server?.url ?? listening.get(realtime)
  return buildAsyncApi(realtime.describe(), {
    info: { ...plugin?.info, ...options.info },
    ...(url === undefined ? {} : { server: { url } })
  })
}

/** `ws://host:port` of a listening address; a wildcard address is written `localhost`. */
export function urlOf (address: AddressInfo | string | null): string | undefined {
  if (address === null || typeof address === 'string') return undefined
  const wildcard = address.address === '0.0.0.0' || address.address === '::'
  const host = wildcard ? 'localhost' : address.family === 'IPv6' ? `[${address.address}]` : address.address
  return `ws://${host}:${address.port}`
}

/** A URL, or null for what is not one (a Host header can hold anything). */
function parseUrl (text: string): URL | null {
  try {
    const url = new URL(text)
    return url.host.length > 0 ? url : null
  } catch {
    return null
  }
}

/** Registers the document's routes (when the option is set) and records the listening address. */
export function registerAsyncApi (app: FastifyInstance, realtime: Describable): void {
  app.addHook('onListen', function () {
    const url = urlOf(app.server.address())
    if (url !== undefined) listening.set(realtime, url)
  })
  const options = realtime.options.asyncapi
  if (options === undefined) return
  const path = options.path ?? defaults.asyncapiPath
  // Built once per set of declarations (they are only ever added, so their count names
  // the set), not per request: building compiles every payload to check its example.
  let cached: { key: string, document: AsyncApiDocument } | undefined
  const baseDocument = (): AsyncApiDocument => {
    const { routes, topics, events } = realtime.describe()
    const key = `${routes.length}/${topics.length}/${events.length}`
    if (cached?.key !== key) cached = { key, document: asyncApiOf(realtime) }
    return cached.document
  }
  // The served document names the host the client used to reach it, which is the one
  // it can connect to, behind a proxy too (unless `server.url` says otherwise).
  const documentFor = (request: FastifyRequest): AsyncApiDocument => {
    const document = baseDocument()
    const url = parseUrl(options.server?.url ?? `${request.protocol === 'https' ? 'wss' : 'ws'}://${request.host}`)
    if (url === null) return document
    return { ...document, servers: { realtime: { ...document.servers.realtime, host: url.host, protocol: url.protocol.replace(/:$/, '') } } }
  }
  const json = async (request: FastifyRequest, reply: FastifyReply) => reply.type('application/json; charset=utf-8').send(JSON.stringify(documentFor(request), null, 2))
  const yaml = async (request: FastifyRequest, reply: FastifyReply) => reply.type('application/yaml; charset=utf-8').send(toYaml(documentFor(request)))
  app.get(`${path}.json`, json)
  app.get(`${path}.yaml`, yaml)
  app.get(`${path}.yml`, yaml)
  app.get(path, async (request, reply) => {
    const accepts = request.headers.accept ?? ''
    if (/\b(application|text)\/(x-)?yaml\b/.test(accepts)) return yaml(request, reply)
    if (/\bapplication\/json\b/.test(accepts) && !/\btext\/html\b/.test(accepts)) return json(request, reply)
    return reply
      .type('text/html; charset=utf-8')
      // The page is self-contained: no script, no fetch, only its own inline styles.
      .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'")
      .send(renderPage(documentFor(request), { json: `${path}.json`, yaml: `${path}.yaml` }))
  })
}
