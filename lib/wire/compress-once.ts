// Frames shared by every subscriber of a publication, and compress once. With
// permessage-deflate, ws compresses every message again for every socket through
// one zlib stream per socket. A publication sent to many sockets is instead
// deflated once and that one compressed frame (RSV1 set) written to every socket
// that can decode it.
//
// Which sockets can take the shared compressed frame (RFC 7692):
//   - permessage-deflate was negotiated with `server_no_context_takeover`. Our
//     frame is compressed from an empty window; ws's own stream for that socket
//     (replies, events sent with ws.send) resets after every message too, so the
//     two mix. With context takeover ws's stream keeps a window our frame would
//     desynchronise: only ws may compress for that socket.
//   - the window we compressed with is not larger than the negotiated
//     `server_max_window_bits` (15 when absent). One compressed frame is kept per
//     window size asked for, made on first need (usually one).
//   - ws's Sender is idle (ws-frame.ts), as for any direct write.
// A payload under the threshold, or one deflate does not shrink, goes as the plain
// frame: a plain message never touches the peer's inflate window.
import { constants, deflateRawSync } from 'node:zlib'
import type { PerMessageDeflateOptions, WebSocket } from 'ws'
import type { CompressionOptions } from './compression-options.js'
import { binaryFrame, deflateParams, frameOf, payloadOf, senderLooksFamiliar, textFrame, writeDeflated, writeFrame } from './ws-frame.js'
import { packFrame } from './msgpack.js'

/**
 * ws's settings for the compression option: no context takeover either way, so a
 * frame compressed once decodes on every socket and no connection keeps a deflate
 * window between messages. Nothing when compression is off (ws then never offers it).
 */
export function perMessageDeflateOf (compression: CompressionOptions | undefined): { perMessageDeflate?: PerMessageDeflateOptions } {
  if (compression === undefined) return {}
  return {
    perMessageDeflate: {
      serverNoContextTakeover: true,
      clientNoContextTakeover: true,
      threshold: compression.threshold,
      zlibDeflateOptions: { level: compression.level, memLevel: compression.memLevel }
    }
  }
}

const DEFAULT_WINDOW_BITS = 15
/** zlib turns windowBits 8 into 9 for raw deflate: output could use a window a peer asking for 8 cannot hold. */
const MIN_WINDOW_BITS = 9
const TRAILER_LENGTH = 4 // 00 00 ff ff, left by Z_SYNC_FLUSH and removed on the wire (RFC 7692 7.2.1)

/**
 * The payload of one message compressed for permessage-deflate: raw deflate from an
 * empty window, sync-flushed, without the trailing 00 00 ff ff. Null when it is not
 * smaller than the payload.
 */
function deflateMessage (payload: Buffer, windowBits: number, options: CompressionOptions): Buffer | null {
  const out = deflateRawSync(payload, { level: options.level, memLevel: options.memLevel, windowBits, finishFlush: constants.Z_SYNC_FLUSH })
  const length = out.length - TRAILER_LENGTH
  return length >= payload.length ? null : out.subarray(0, length)
}

/** One encoding of a shared message: its plain frame and its compressed frames, made on first need. */
class Encoded {
  readonly plain: Buffer
  /** windowBits -> compressed frame, or null when compressing does not pay. */
  #deflated: Map<number, Buffer | null> | undefined

  constructor (plain: Buffer) {
    this.plain = plain
  }

  deflated (windowBits: number, options: CompressionOptions): Buffer | null {
    this.#deflated ??= new Map()
    let frame = this.#deflated.get(windowBits)
    if (frame === undefined) {
      const payload = payloadOf(this.plain)
      const compressed = payload.length < options.threshold ? null : deflateMessage(payload, windowBits, options)
      // The compressed frame keeps the opcode (text or binary) of the plain one.
      frame = compressed === null ? null : frameOf(compressed, { rsv1: true, opcode: this.plain[0] & 0x0f })
      this.#deflated.set(windowBits, frame)
    }
    return frame
  }
}

/**
 * One server message on its way to many sockets: its JSON text frame, made at once, and
 * its MessagePack frame, packed on the first MessagePack socket that needs it. Each is
 * compressed once per window size where compression is on.
 */
export class SharedFrame {
  readonly #json: Encoded
  #msgpack: Encoded | undefined
  readonly #text: string
  readonly #compression: CompressionOptions | undefined

  constructor (text: string, compression?: CompressionOptions) {
    this.#text = text
    this.#json = new Encoded(textFrame(text))
    this.#compression = compression
  }

  /** The JSON text frame. */
  get plain (): Buffer {
    return this.#json.plain
  }

  /** The frame of one encoding (`msgpack`: the binary MessagePack frame). */
  frame (msgpack: boolean): Buffer {
    return this.#encoded(msgpack).plain
  }

  #encoded (msgpack: boolean): Encoded {
    if (!msgpack) return this.#json
    this.#msgpack ??= new Encoded(binaryFrame(packFrame(this.#text)))
    return this.#msgpack
  }

  /** The compressed frame for a peer keeping a window of `windowBits`; null when it goes plain; undefined when this frame does not compress. */
  deflated (windowBits: number, msgpack = false): Buffer | null | undefined {
    const options = this.#compression
    if (options === undefined) return undefined
    return this.#encoded(msgpack).deflated(windowBits, options)
  }
}

/**
 * How a socket takes shared frames, fixed at open (the extension is negotiated
 * before it): a number, so a connection pays one small field for it.
 *   0: always through ws.send() (ws's internals unfamiliar, or deflate with context takeover);
 *   1: the plain frame, directly when the Sender is idle;
 *   9..15: deflate without context takeover, that server window: the shared compressed frame.
 */
export const FrameRoute = { Ws: 0, Plain: 1 } as const

let familiar: boolean | undefined

/** The route for a newly opened socket (see FrameRoute). */
export function frameRoute (ws: WebSocket): number {
  // Checked once per process, on the first connection.
  familiar ??= senderLooksFamiliar(ws)
  if (!familiar) return FrameRoute.Ws
  const params = deflateParams(ws)
  if (params === undefined) return FrameRoute.Plain
  if (params.server_no_context_takeover !== true) return FrameRoute.Ws
  const bits = typeof params.server_max_window_bits === 'number' ? params.server_max_window_bits : DEFAULT_WINDOW_BITS
  return bits < MIN_WINDOW_BITS ? FrameRoute.Ws : bits
}

export type SendRoute = 'direct' | 'direct-deflated' | 'ws' | 'closed'

/**
 * Sends a shared frame to one socket by the cheapest route that keeps order and the
 * negotiated extension: the shared compressed frame, the shared plain frame, or
 * ws.send() when ws must do it (busy Sender, context takeover, no compression here).
 */
export function sendShared (ws: WebSocket, frame: SharedFrame, route: number, msgpack = false): SendRoute {
  const plain = frame.frame(msgpack)
  if (route <= FrameRoute.Plain) return writeFrame(ws, plain, route === FrameRoute.Plain)
  const compressed = frame.deflated(route, msgpack)
  // This frame does not compress (option off): ws compresses for the socket as it was configured to.
  if (compressed === undefined) return writeFrame(ws, plain, false)
  // Under the threshold or incompressible: plain, which never touches the peer's window.
  if (compressed === null) return writeFrame(ws, plain, true)
  if (writeDeflated(ws, compressed)) return 'direct-deflated'
  return writeFrame(ws, plain, false)
}
