// permessage-deflate as every server in the compression scenario configures it:
// no context takeover either way (what compress-once needs, and what keeps a
// connection's memory flat), ws's default threshold and zlib level. The servers
// accept it only when a client offers it, which only the deflate scenario's clients do.
import type { PerMessageDeflateOptions } from 'ws'
import { defaultDeflateOnce, type DeflateOnceOptions } from '../prototype/deflate-once.js'

export const BENCH_DEFLATE: PerMessageDeflateOptions = {
  serverNoContextTakeover: true,
  clientNoContextTakeover: true,
  threshold: defaultDeflateOnce.threshold
}

/** The compress-once prototype with the same threshold and zlib level as ws uses above. */
export const BENCH_DEFLATE_ONCE: DeflateOnceOptions = defaultDeflateOnce
