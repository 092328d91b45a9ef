// permessage-deflate as every server in the compression scenario configures it:
// no context takeover either way (what compress-once needs, and what keeps a
// connection's memory flat), ws's default threshold and zlib level. The servers
// accept it only when a client offers it, which only the deflate scenario's clients do.
import type { PerMessageDeflateOptions } from 'ws'
import type { CompressionOptions } from '../../lib/wire/compression-options.js'

export const BENCH_DEFLATE: PerMessageDeflateOptions = {
  serverNoContextTakeover: true,
  clientNoContextTakeover: true,
  threshold: 1024
}

/** Compress once (lib/wire/compress-once.ts) with ws's defaults: the threshold above, zlib's default level and memLevel. */
export const BENCH_DEFLATE_ONCE: CompressionOptions = { threshold: 1024, level: -1, memLevel: 8 }
