// The ws server options the `websocket` option passes through, declared here rather than
// imported from @types/ws: the public declarations then name no `ws` type, so an app type-checks
// with skipLibCheck off without @types/ws (and the @types/node it pulls into production
// installs). types/index.test-d.ts holds these assignable to ws's own ServerOptions, so a
// drift fails `npm test`.
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http'
import type { ZlibOptions } from 'node:zlib'

/** permessage-deflate settings, as ws takes them. */
export interface PerMessageDeflateOptions {
  serverNoContextTakeover?: boolean
  clientNoContextTakeover?: boolean
  serverMaxWindowBits?: number
  clientMaxWindowBits?: number
  zlibDeflateOptions?: {
    flush?: number
    finishFlush?: number
    chunkSize?: number
    windowBits?: number
    level?: number
    memLevel?: number
    strategy?: number
    info?: boolean
  }
  zlibInflateOptions?: ZlibOptions
  /** Payloads smaller than this many bytes are not compressed. */
  threshold?: number
  concurrencyLimit?: number
}

/** What a handshake check is told. */
export interface VerifyClientInfo {
  origin: string
  secure: boolean
  req: IncomingMessage
}

/**
 * ws server options an app may set. The plugin owns `noServer`, `server`, `port`, `path`
 * and `maxPayload` (that one is the `maxPayload` option).
 */
export interface WebSocketServerOptions {
  verifyClient?: ((info: VerifyClientInfo) => boolean) | ((info: VerifyClientInfo, callback: (result: boolean, code?: number, message?: string, headers?: OutgoingHttpHeaders) => void) => void)
  handleProtocols?: (protocols: Set<string>, request: IncomingMessage) => string | false
  allowSynchronousEvents?: boolean
  autoPong?: boolean
  clientTracking?: boolean
  perMessageDeflate?: boolean | PerMessageDeflateOptions
  maxBufferedChunks?: number
  maxFragments?: number
  skipUTF8Validation?: boolean
}
