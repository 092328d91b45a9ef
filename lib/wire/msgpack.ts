// The MessagePack encoding of the protocol (`realtime.v1.msgpack`): the same envelope and
// the same server frames, as binary MessagePack instead of JSON text.
//
// Outbound, a frame is built as JSON text by frames.ts (the data in it serialised by its
// schema, so a property the schema does not name is never sent), then read back and
// packed: one source of truth for what is sent, whatever the encoding. A publication is
// packed once for all the MessagePack subscribers (compress-once.ts SharedFrame).
//
// Inbound, a frame is first walked without decoding (`scanMessagePack`): one value
// filling the frame, nested at most maxDepth levels, JSON types only (no bin, no ext),
// string keys, no `__proto__` key, and no length announcing more than the frame holds.
// Only then does msgpackr decode it, so a frame nested 60,000 deep or announcing 2^32
// elements is refused before any of it is built.
//
// msgpackr (not @msgpack/msgpack): on a ~1 KB quote it packs about 2.4 times and unpacks
// about 4 times as fast, for the same bytes (docs/performance.md). It is required on first
// use (a connection that negotiates MessagePack, a delta frame packed), never at import.
import { createRequire } from 'node:module'
import type { Packr, Unpackr } from 'msgpackr'

const require = createRequire(import.meta.url)

let codec: { packr: Packr, unpackr: Unpackr } | undefined

function engines (): { packr: Packr, unpackr: Unpackr } {
  if (codec === undefined) {
    const msgpackr = require('msgpackr') as typeof import('msgpackr')
    // Plain MessagePack: no records or structures, which a foreign client would not know.
    codec = {
      packr: new msgpackr.Packr({ useRecords: false, encodeUndefinedAsNil: false }),
      unpackr: new msgpackr.Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' })
    }
  }
  return codec
}

/**
 * Whether msgpackr can be loaded: an optional peer (2 MB installed, for the apps that offer
 * MessagePack only), checked when the option turns it on, so a missing one fails register.
 */
export function msgpackInstalled (): boolean {
  try {
    require.resolve('msgpackr')
    return true
  } catch {
    return false
  }
}

/** Packs a value (a frame read back from its JSON text, or parts of one). */
export function pack (value: unknown): Buffer {
  return engines().packr.pack(value)
}

/** Packs a server frame built as JSON text by frames.ts. */
export function packFrame (text: string): Buffer {
  return pack(JSON.parse(text))
}

/** Decodes a frame that `scanMessagePack` accepted. */
export function unpack (bytes: Buffer): unknown {
  return engines().unpackr.unpack(bytes)
}

/** Why a frame is not one MessagePack value the envelope can be (null when it is). */
export function scanMessagePack (bytes: Uint8Array, maxDepth: number): string | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const end = bytes.length
  let at = 0
  // Per open array or map: the values it still owes (a map owes two per entry, key first).
  const owed: number[] = []
  const isMap: boolean[] = []
  let expectKey = false
  for (;;) {
    if (at >= end) return 'Frame is not valid MessagePack'
    const byte = bytes[at++]
    let count = -1
    let map = false
    let skip = 0
    let str = -1
    if (byte <= 0x7f || byte >= 0xe0 || (byte >= 0xc0 && byte <= 0xc3 && byte !== 0xc1)) {
      // fixint, nil, false, true
    } else if (byte >= 0x80 && byte <= 0x8f) {
      count = byte & 0x0f
      map = true
    } else if (byte >= 0x90 && byte <= 0x9f) {
      count = byte & 0x0f
    } else if (byte >= 0xa0 && byte <= 0xbf) {
      str = byte & 0x1f
    } else {
      const need = SIZES[byte]
      if (need === undefined) return 'MessagePack frames carry JSON values only (no bin or ext)'
      if (at + need.width > end) return 'Frame is not valid MessagePack'
      const n = need.width === 1 ? bytes[at] : need.width === 2 ? view.getUint16(at) : need.width === 4 ? view.getUint32(at) : 0
      if (need.kind === 'str') {
        at += need.width
        str = n
      } else if (need.kind === 'array' || need.kind === 'map') {
        at += need.width
        count = n
        map = need.kind === 'map'
      } else {
        skip = need.width
      }
    }
    if (expectKey && str < 0) return 'MessagePack map keys must be strings'
    if (str >= 0) {
      if (at + str > end) return 'Frame is not valid MessagePack'
      if (expectKey && str === 9 && isProto(bytes, at)) return 'Forbidden prototype property in frame'
      at += str
    }
    at += skip
    if (count >= 0) {
      // Each element takes at least one byte: a count past what is left is a lie.
      if ((map ? count * 2 : count) > end - at) return 'Frame is not valid MessagePack'
      if (owed.length + 1 > maxDepth) return `Frames nest at most ${maxDepth} levels deep`
      owed.push(map ? count * 2 : count)
      isMap.push(map)
    }
    // The value just read pays its container; full containers close in turn.
    if (count < 0 || owed[owed.length - 1] === 0) {
      if (count >= 0) {
        owed.pop()
        isMap.pop()
      }
      while (owed.length > 0) {
        const top = owed.length - 1
        owed[top]--
        if (owed[top] > 0) break
        owed.pop()
        isMap.pop()
      }
    }
    if (owed.length === 0) return at === end ? null : 'Frame must hold one MessagePack value'
    // In a map, an even number owed means a key comes next.
    expectKey = isMap[isMap.length - 1] && owed[owed.length - 1] % 2 === 0
  }
}

const PROTO = [0x5f, 0x5f, 0x70, 0x72, 0x6f, 0x74, 0x6f, 0x5f, 0x5f] // __proto__

function isProto (bytes: Uint8Array, at: number): boolean {
  for (let i = 0; i < 9; i++) if (bytes[at + i] !== PROTO[i]) return false
  return true
}

type Kind = 'str' | 'array' | 'map' | 'fixed'
/** Formats past the fix* ones: how many bytes follow the type byte (a length, or the value itself). */
const SIZES: Record<number, { kind: Kind, width: number } | undefined> = {
  0xca: { kind: 'fixed', width: 4 }, // float 32
  0xcb: { kind: 'fixed', width: 8 }, // float 64
  0xcc: { kind: 'fixed', width: 1 }, // uint 8
  0xcd: { kind: 'fixed', width: 2 },
  0xce: { kind: 'fixed', width: 4 },
  0xcf: { kind: 'fixed', width: 8 },
  0xd0: { kind: 'fixed', width: 1 }, // int 8
  0xd1: { kind: 'fixed', width: 2 },
  0xd2: { kind: 'fixed', width: 4 },
  0xd3: { kind: 'fixed', width: 8 },
  0xd9: { kind: 'str', width: 1 },
  0xda: { kind: 'str', width: 2 },
  0xdb: { kind: 'str', width: 4 },
  0xdc: { kind: 'array', width: 2 },
  0xdd: { kind: 'array', width: 4 },
  0xde: { kind: 'map', width: 2 },
  0xdf: { kind: 'map', width: 4 }
}
