// Prototype (issue 16): compress once. With permessage-deflate negotiated, ws
// compresses every message again for every socket, through one zlib stream per
// socket (CPU per delivery, and a deflate context per connection). A publication
// sent to many sockets can instead be deflated once and that one compressed frame
// (RSV1 set) written to every socket that can decode it.
//
// Which sockets can take the shared compressed frame (RFC 7692):
//   - permessage-deflate was negotiated on the connection;
//   - `server_no_context_takeover` was negotiated. Our frame is compressed from an
//     empty window. A client decodes such a frame whatever it negotiated, but ws's
//     own deflate stream for that socket (replies, events sent with ws.send) would
//     otherwise keep a window the client no longer shares once our message sits in
//     between: its next back-reference would point at the wrong bytes. With no
//     context takeover ws resets its stream after every message, so the two mix.
//     (A server that sets `serverNoContextTakeover: true` always gets this.)
//   - the window we compressed with is not larger than the negotiated
//     `server_max_window_bits` (15 when absent). One compressed frame is kept per
//     window size asked for, made on first use.
//   - ws's Sender is idle (frame-once.ts: `senderIdle`), as for any direct write.
// Any other socket gets the payload through ws.send(), which compresses it for that
// socket (or not, per its threshold), queued in order. A payload under `threshold`
// goes uncompressed, like ws does with no context takeover; a payload that deflate
// does not shrink goes uncompressed too (a plain message never touches the peer's
// inflate window, so it mixes with compressed ones freely).

import { constants, deflateRawSync } from 'node:zlib'
import type { WebSocket } from 'ws'
import { frameOf, internals, payloadOf, senderIdle, textFrame, writeFrame, type Route } from './frame-once.js'

export interface DeflateOnceOptions {
  /** Payloads smaller than this many bytes are sent uncompressed (ws's default is 1024). */
  threshold: number
  /** zlib level, 1 (fast) to 9 (small), or -1 for zlib's default (6). */
  level: number
  memLevel: number
}

/** ws's defaults: a 1024-byte threshold, zlib's default level (6) and memLevel (8). */
export const defaultDeflateOnce: DeflateOnceOptions = { threshold: 1024, level: constants.Z_DEFAULT_COMPRESSION, memLevel: 8 }

const DEFAULT_WINDOW_BITS = 15
/** zlib turns windowBits 8 into 9 for raw deflate: output could use a window a peer asking for 8 cannot hold. */
const MIN_WINDOW_BITS = 9
const TRAILER_LENGTH = 4 // 00 00 ff ff, left by Z_SYNC_FLUSH and removed on the wire (RFC 7692 7.2.1)

/**
 * The payload of one message compressed for permessage-deflate: raw deflate from an
 * empty window, sync-flushed, without the trailing 00 00 ff ff. Null when it is not
 * smaller than the payload.
 */
export function deflateMessage (payload: Buffer, windowBits: number, options: DeflateOnceOptions): Buffer | null {
  const out = deflateRawSync(payload, {
    level: options.level,
    memLevel: options.memLevel,
    windowBits,
    finishFlush: constants.Z_SYNC_FLUSH
  })
  const length = out.length - TRAILER_LENGTH
  if (length >= payload.length) return null
  return out.subarray(0, length)
}

/** One publication: its plain frame, and its compressed frames made on first need. */
export class Publication {
  readonly plain: Buffer
  readonly #options: DeflateOnceOptions
  /** windowBits -> compressed frame, or null when compressing does not pay. */
  readonly #deflated = new Map<number, Buffer | null>()

  constructor (text: string, options: DeflateOnceOptions = defaultDeflateOnce) {
    this.plain = textFrame(text)
    this.#options = options
  }

  /** The compressed frame for a socket whose peer keeps a window of `windowBits`. */
  deflated (windowBits: number): Buffer | null {
    let frame = this.#deflated.get(windowBits)
    if (frame === undefined) {
      const payload = payloadOf(this.plain)
      const compressed = payload.length < this.#options.threshold ? null : deflateMessage(payload, windowBits, this.#options)
      frame = compressed === null ? null : frameOf(compressed, { rsv1: true })
      this.#deflated.set(windowBits, frame)
    }
    return frame
  }
}

/** The window size a shared compressed frame must fit for this socket, or null if it cannot take one. */
export function sharedDeflateWindow (ws: WebSocket): number | null {
  const extension = internals(ws)._extensions['permessage-deflate']
  const params = extension?.params
  if (params == null || params.server_no_context_takeover !== true) return null
  const bits = typeof params.server_max_window_bits === 'number' ? params.server_max_window_bits : DEFAULT_WINDOW_BITS
  return bits < MIN_WINDOW_BITS ? null : bits
}

export type DeflateRoute = Route | 'direct-deflated'

/**
 * Sends a publication to one socket by the cheapest route that keeps order and the
 * negotiated extension: the shared compressed frame, the shared plain frame, or
 * ws.send() when ws must do it (busy Sender, context takeover negotiated).
 */
export function sendPublication (ws: WebSocket, publication: Publication): DeflateRoute {
  const extension = internals(ws)._extensions['permessage-deflate']
  if (extension === undefined) return writeFrame(ws, publication.plain, true)
  const bits = sharedDeflateWindow(ws)
  // Context takeover negotiated: only ws's own per-socket stream may compress.
  if (bits === null) return writeFrame(ws, publication.plain, false)
  const compressed = publication.deflated(bits)
  if (compressed === null) return writeFrame(ws, publication.plain, true)
  if (internals(ws).readyState !== 1) return 'closed'
  if (senderIdle(ws)) {
    internals(ws)._socket?.write(compressed)
    return 'direct-deflated'
  }
  return writeFrame(ws, publication.plain, false)
}
