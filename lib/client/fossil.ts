// Applies a Fossil delta (https://fossil-scm.org/home/doc/tip/www/delta_format.wiki), as
// the server sends them on topics with delta compression. Written for the client (no
// dependency, no Node module): a delta is a header, the output's length, then commands,
// each an integer and a letter: `N@O,` copies N bytes of the source from offset O, `N:`
// inserts the next N bytes of the delta, `N;` ends it with the output's checksum.
// Integers are in base 64 over the digits below. Anything out of place throws.

const DIGITS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~'
const VALUE = new Int8Array(128).fill(-1)
for (let i = 0; i < DIGITS.length; i++) VALUE[DIGITS.charCodeAt(i)] = i

export class DeltaError extends Error {
  override name = 'DeltaError'
}

/** The sum of the output as big-endian 32-bit words (the last one padded with zeros), modulo 2^32. */
function checksum (bytes: Uint8Array): number {
  let sum = 0
  const whole = bytes.length - (bytes.length & 3)
  for (let i = 0; i < whole; i += 4) sum = (sum + ((bytes[i] << 24) | (bytes[i + 1] << 16) | (bytes[i + 2] << 8) | bytes[i + 3])) >>> 0
  let tail = 0
  for (let i = whole; i < bytes.length; i++) tail |= bytes[i] << (24 - 8 * (i - whole))
  return (sum + tail) >>> 0
}

export function applyFossil (source: Uint8Array, delta: Uint8Array): Uint8Array {
  let at = 0
  const integer = (): number => {
    let value = 0
    const start = at
    while (at < delta.length && delta[at] < 128 && VALUE[delta[at]] >= 0) {
      value = value * 64 + VALUE[delta[at++]]
      if (value > Number.MAX_SAFE_INTEGER / 64) throw new DeltaError('integer too large')
    }
    if (at === start) throw new DeltaError('integer expected')
    return value
  }
  const size = integer()
  if (delta[at++] !== 0x0a) throw new DeltaError('no size header')
  const out = new Uint8Array(size)
  let length = 0
  while (at < delta.length) {
    const n = integer()
    const op = delta[at++]
    if (op === 0x40) { // @: copy from the source
      const offset = integer()
      if (delta[at++] !== 0x2c) throw new DeltaError('copy without a comma')
      if (offset + n > source.length || length + n > size) throw new DeltaError('copy out of range')
      out.set(source.subarray(offset, offset + n), length)
      length += n
    } else if (op === 0x3a) { // :: insert literal bytes
      if (at + n > delta.length || length + n > size) throw new DeltaError('insert out of range')
      out.set(delta.subarray(at, at + n), length)
      length += n
      at += n
    } else if (op === 0x3b) { // ;: the end, with the checksum
      if (length !== size) throw new DeltaError('output shorter than announced')
      if (checksum(out) !== n) throw new DeltaError('bad checksum')
      return out
    } else {
      throw new DeltaError('unknown command')
    }
  }
  throw new DeltaError('delta ends without a checksum')
}
