// A topic subscribed with `delta: true`: publications arrive as the JSON text of their
// data (`delta: false`) or as a Fossil delta from the text of the one before
// (`delta: true`). This keeps the last text (the base) and rebuilds each publication
// whole; a delta it cannot apply is reported (null), never turned into a wrong object.
import { applyFossil } from './fossil.js'

export interface DeltaBase {
  offset: number
  epoch: string
  /** The UTF-8 bytes of the last publication's data, as JSON text. */
  bytes: Uint8Array
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** The bytes of a delta sent as a string of one character per byte. */
function bytesOf (binary: string): Uint8Array | null {
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) {
    const code = binary.charCodeAt(i)
    if (code > 0xff) return null
    bytes[i] = code
  }
  return bytes
}

/**
 * The publication of a delta-form `message` frame and the base it leaves, or null when it
 * cannot be rebuilt (no base at offset - 1 in the same epoch, a delta that does not
 * apply, text that is not JSON).
 */
export function rebuild (base: DeltaBase | null, frame: { offset: number, epoch: string, delta: boolean, data: string }): { data: unknown, base: DeltaBase } | null {
  let bytes: Uint8Array
  if (!frame.delta) {
    bytes = encoder.encode(frame.data)
  } else {
    if (base === null || base.epoch !== frame.epoch || base.offset !== frame.offset - 1) return null
    const delta = bytesOf(frame.data)
    if (delta === null) return null
    try {
      bytes = applyFossil(base.bytes, delta)
    } catch {
      return null
    }
  }
  try {
    return { data: JSON.parse(decoder.decode(bytes)), base: { offset: frame.offset, epoch: frame.epoch, bytes } }
  } catch {
    return null
  }
}
