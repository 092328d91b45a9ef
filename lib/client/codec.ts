// How the client writes and reads frames: JSON text (`realtime.v1`) or binary MessagePack
// (`realtime.v1.msgpack`, the `encoding: 'msgpack'` option). The MessagePack encoder,
// msgpackr, is imported when the first connection of such a client opens, so a client
// that speaks JSON never loads it (nor bundles it, with a bundler that splits chunks).
import { SUBPROTOCOL, SUBPROTOCOL_MSGPACK } from './protocol.js'
import type { ServerFrame } from './types.js'

export type Encoding = 'json' | 'msgpack'

export interface Codec {
  /** The subprotocol offered. */
  readonly protocol: string
  /** False until `load()` resolved: the connection opens after it. */
  readonly ready: boolean
  /** Loads the encoder, then calls `then` (only the latest `then` asked for: an older attempt is dropped). */
  whenReady: (then: () => void, failed: (err: unknown) => void) => void
  encode: (frame: Record<string, unknown>) => string | Uint8Array
  /** A server frame, or null when the data is none (not an object with a string `type`). */
  decode: (raw: unknown) => ServerFrame | null
}

function frameOf (value: unknown): ServerFrame | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || typeof (value as ServerFrame).type !== 'string') return null
  return value as ServerFrame
}

const json: Codec = {
  protocol: SUBPROTOCOL,
  ready: true,
  whenReady: (then) => then(),
  encode: (frame) => JSON.stringify(frame),
  decode: (raw) => {
    if (typeof raw !== 'string') return null
    try {
      return frameOf(JSON.parse(raw))
    } catch {
      return null
    }
  }
}

/** Bytes of a binary message: an ArrayBuffer (browsers, binaryType 'arraybuffer'), a Buffer or a view (ws). */
function bytesOf (raw: unknown): Uint8Array | null {
  if (raw instanceof ArrayBuffer) return new Uint8Array(raw)
  if (ArrayBuffer.isView(raw)) return new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength)
  return null
}

class MessagePackCodec implements Codec {
  readonly protocol = SUBPROTOCOL_MSGPACK
  #engine: { pack: (value: unknown) => Uint8Array, unpack: (bytes: Uint8Array) => unknown } | null = null
  #waiting: { then: () => void, failed: (err: unknown) => void } | null = null

  get ready (): boolean {
    return this.#engine !== null
  }

  whenReady (then: () => void, failed: (err: unknown) => void): void {
    const loading = this.#waiting !== null
    this.#waiting = { then, failed }
    if (loading) return
    import('msgpackr').then((msgpackr) => {
      const packr = new msgpackr.Packr({ useRecords: false })
      const unpackr = new msgpackr.Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' })
      this.#engine = { pack: (value) => packr.pack(value), unpack: (bytes) => unpackr.unpack(bytes) }
      const waiting = this.#waiting
      this.#waiting = null
      waiting?.then()
    }, (err: unknown) => {
      const waiting = this.#waiting
      this.#waiting = null
      waiting?.failed(err)
    })
  }

  encode (frame: Record<string, unknown>): Uint8Array {
    if (this.#engine === null) throw new Error('MessagePack is not loaded')
    return this.#engine.pack(frame)
  }

  decode (raw: unknown): ServerFrame | null {
    const bytes = bytesOf(raw)
    if (bytes === null || this.#engine === null) return null
    try {
      return frameOf(this.#engine.unpack(bytes))
    } catch {
      return null
    }
  }
}

/** The codec of a client's `encoding`: one per client (MessagePack's loads once). */
export function codecOf (encoding: Encoding): Codec {
  return encoding === 'msgpack' ? new MessagePackCodec() : json
}
