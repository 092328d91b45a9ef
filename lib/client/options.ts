// The client's options, checked once when it is created; a wrong one throws a TypeError
// naming it.
import { ClientUsageError } from './errors.js'
import type { Contract } from '../protocol/contract.js'
import { resolveBackoff, type ResolvedBackoff } from './backoff.js'
import type { HeartbeatOption } from './liveness.js'
import { browserOnline, defaultTargets } from './network.js'
import type { ClientOptions, NetworkTargets, TokenSource, WebSocketConstructor } from './types.js'
import { positiveNumber, resolveUrl } from './util.js'

export interface ResolvedClientOptions {
  url: string
  WebSocket: WebSocketConstructor
  getToken: TokenSource | undefined
  contract: Contract | undefined
  requestTimeout: number
  maxQueue: number
  queueTimeout: number | undefined
  connectTimeout: number
  backoff: ResolvedBackoff
  heartbeat: HeartbeatOption
  keepAlive: boolean
  network: NetworkTargets | false
  /** Whether the browser is online now (true where it cannot tell). */
  online: boolean
  autoConnect: boolean
  encoding: 'json' | 'msgpack'
}

export function resolveClientOptions (options: ClientOptions<any>): ResolvedClientOptions {
  if (options === null || typeof options !== 'object') throw new ClientUsageError('createClient: options are required')
  const url = resolveUrl(options.url)
  const WebSocket = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
  if (typeof WebSocket !== 'function') {
    throw new ClientUsageError('createClient: no WebSocket available; pass the `WebSocket` option (in Node 20: `import { WebSocket } from \'ws\'`)')
  }
  if (options.getToken !== undefined && typeof options.getToken !== 'function') throw new ClientUsageError('createClient: getToken must be a function')
  const network = options.network
  if (network !== undefined && network !== false && (network === null || typeof network !== 'object')) {
    throw new ClientUsageError('createClient: network must be false or an object of event targets')
  }
  const encoding = options.encoding ?? 'json'
  if (encoding !== 'json' && encoding !== 'msgpack') throw new ClientUsageError('createClient: encoding must be \'json\' or \'msgpack\'')
  return {
    encoding,
    url,
    WebSocket,
    getToken: options.getToken,
    contract: options.contract,
    requestTimeout: positiveNumber('createClient: requestTimeout', options.requestTimeout, 10_000),
    maxQueue: options.maxQueue === 0 ? 0 : positiveNumber('createClient: maxQueue', options.maxQueue, 100),
    queueTimeout: options.queueTimeout === undefined ? undefined : positiveNumber('createClient: queueTimeout', options.queueTimeout, 0),
    connectTimeout: positiveNumber('createClient: connectTimeout', options.connectTimeout, 10_000),
    backoff: resolveBackoff(options.backoff),
    heartbeat: options.heartbeat ?? {},
    keepAlive: options.keepAlive === true,
    network: network ?? defaultTargets(),
    online: network === undefined ? browserOnline() : true,
    autoConnect: options.autoConnect !== false
  }
}
