// The compression option's settings, apart from compress-once.ts so that the public
// declarations that name them do not pull in that file's ws types.

export interface CompressionOptions {
  /** Payloads smaller than this many bytes are sent uncompressed. */
  threshold: number
  /** zlib level, 1 (fast) to 9 (small), or -1 for zlib's default (6). */
  level: number
  /** zlib memLevel, 1 to 9. */
  memLevel: number
}
