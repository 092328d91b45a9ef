// WebSocket frames built once, header and payload in one Buffer, and written as
// that same Buffer to every subscriber's net.Socket, bypassing ws's per-send framing
// (a header allocation, an options object and a cork/two-write/uncork per delivery).
//
// Why a direct write is safe, and when it is not. ws.send() on an OPEN socket whose
// Sender is idle frames the data and writes it to the net.Socket synchronously.
// Writing our own frame to the same net.Socket at that moment lands in the same
// place in the byte stream, so order with earlier and later ws.send() calls holds.
// ws's Sender is not idle when
//   - it is compressing a message (permessage-deflate runs zlib asynchronously) or
//     reading a Blob: its `_state` is not DEFAULT (0) (ws < 8.17: `_deflating`);
//   - sends are queued behind that work: `_queue` is not empty.
// A frame written directly then would overtake them, so its payload goes through
// ws.send(), which queues it behind them. Our frames are never masked (server to
// client) and never fragmented; ws only fragments when the app passes fin: false,
// which nothing here does, so frames cannot interleave with a fragmented message.
//
// bufferedAmount stays meaningful: ws computes it as
// `_socket._writableState.length + _sender._bufferedBytes`, and bytes written
// directly that the kernel did not take at once are in `_writableState.length` like
// ws's own, so the send-queue limit sees them. A cork()ed net.Socket keeps a direct
// write in the same batch as ws's writes.
//
// A frame Buffer is shared by every socket it is written to and may still sit in a
// socket's write queue after the loop: it is never modified once built.
import type { Socket } from 'node:net'
import type { WebSocket } from 'ws'
import { ReadyState } from '../protocol/constants.js'

const OPCODE_TEXT = 0x01
const OPCODE_BINARY = 0x02
const FIN = 0x80
const RSV1 = 0x40

/** Bytes a frame header takes for a payload of `length` bytes (server frames are unmasked). */
function headerLength (length: number): number {
  return length < 126 ? 2 : length < 65536 ? 4 : 10
}

/** Writes FIN, RSV1, opcode and the 7/16/64-bit payload length at the start of `frame`. */
function writeHeader (frame: Buffer, length: number, opcode: number, rsv1: boolean): number {
  frame[0] = FIN | (rsv1 ? RSV1 : 0) | opcode
  if (length < 126) {
    frame[1] = length
    return 2
  }
  if (length < 65536) {
    frame[1] = 126
    frame.writeUInt16BE(length, 2)
    return 4
  }
  frame[1] = 127
  // 64-bit length; a Buffer cannot exceed 2^53 bytes, so the top half fits a double division.
  frame.writeUInt32BE(Math.floor(length / 0x100000000), 2)
  frame.writeUInt32BE(length >>> 0, 6)
  return 10
}

/**
 * A complete, unmasked, unfragmented text frame for `text`, in one Buffer. The
 * string is encoded straight into the frame: no intermediate payload Buffer.
 */
export function textFrame (text: string): Buffer {
  const length = Buffer.byteLength(text)
  const frame = Buffer.allocUnsafe(headerLength(length) + length)
  const at = writeHeader(frame, length, OPCODE_TEXT, false)
  frame.write(text, at, length, 'utf8')
  return frame
}

/** A complete unmasked frame around `payload` (copied once), with RSV1 set for a compressed payload. */
export function frameOf (payload: Buffer, options: { opcode?: number, rsv1?: boolean } = {}): Buffer {
  const length = payload.length
  const frame = Buffer.allocUnsafe(headerLength(length) + length)
  const at = writeHeader(frame, length, options.opcode ?? OPCODE_TEXT, options.rsv1 === true)
  payload.copy(frame, at)
  return frame
}

/** A complete unmasked binary frame around `payload` (a MessagePack frame). */
export function binaryFrame (payload: Buffer): Buffer {
  return frameOf(payload, { opcode: OPCODE_BINARY })
}

/** The payload of a frame built here, as a view (no copy). */
export function payloadOf (frame: Buffer): Buffer {
  const len7 = frame[1] & 0x7f
  return frame.subarray(len7 < 126 ? 2 : len7 === 126 ? 4 : 10)
}

/** The parts of ws's WebSocket and Sender read here (ws 8; not public API). */
interface SenderInternals {
  _queue: unknown[]
  /** ws >= 8.17: DEFAULT (0), DEFLATING (1), GET_BLOB_DATA (2). */
  _state?: number
  /** ws < 8.17. */
  _deflating?: boolean
}
interface WsInternals {
  readyState: number
  _socket: Socket | null
  _sender: SenderInternals | null
  _extensions: Record<string, { params?: Record<string, unknown> | null } | undefined>
}

function internals (ws: WebSocket): WsInternals {
  return ws as unknown as WsInternals
}

/**
 * Whether this ws build exposes the Sender state the safety check reads. Checked
 * once on a live connection; when false, every send goes through ws.send() (a
 * future ws that renames them degrades to ws's own framing, never to reordering).
 */
export function senderLooksFamiliar (ws: WebSocket): boolean {
  const sender = internals(ws)._sender
  if (sender === null || typeof sender !== 'object' || !Array.isArray(sender._queue)) return false
  return typeof sender._state === 'number' || typeof sender._deflating === 'boolean'
}

/** True when a frame written to the net.Socket now would go out exactly where ws.send() would put it. */
export function senderIdle (ws: WebSocket): boolean {
  const { _sender: sender, _socket: socket } = internals(ws)
  if (sender === null || socket === null) return false
  if (sender._queue.length !== 0) return false
  return sender._state === undefined ? sender._deflating !== true : sender._state === 0
}

export type Route = 'direct' | 'ws' | 'closed'

/**
 * Sends a frame built by `textFrame`/`frameOf` (uncompressed): the Buffer itself
 * when `direct` is allowed and ws's Sender is idle, otherwise its payload through
 * ws.send() (queued behind whatever ws holds, and compressed by ws if it should).
 * Returns the route taken, or 'closed' when the socket is not OPEN (nothing sent).
 */
export function writeFrame (ws: WebSocket, frame: Buffer, direct: boolean): Route {
  const inner = internals(ws)
  if (inner.readyState !== ReadyState.OPEN) return 'closed'
  if (direct && senderIdle(ws)) {
    ;(inner._socket as Socket).write(frame)
    return 'direct'
  }
  ws.send(payloadOf(frame), { binary: (frame[0] & 0x0f) === OPCODE_BINARY, fin: true })
  return 'ws'
}

/** Writes an already compressed frame (RSV1) when ws's Sender is idle; false when it is not. */
export function writeDeflated (ws: WebSocket, frame: Buffer): boolean {
  if (internals(ws).readyState !== ReadyState.OPEN || !senderIdle(ws)) return false
  ;(internals(ws)._socket as Socket).write(frame)
  return true
}

/** The negotiated permessage-deflate parameters, or undefined when it was not negotiated. */
export function deflateParams (ws: WebSocket): Record<string, unknown> | undefined {
  const extension = internals(ws)._extensions['permessage-deflate']
  return extension === undefined ? undefined : (extension.params ?? {})
}
