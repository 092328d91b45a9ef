// Events on Node's diagnostics_channel, so that APMs, OpenTelemetry and our own
// metrics (metrics.ts) and dashboard can observe the plugin without the core knowing
// about any of them. Every publish site in the core reads `hasSubscribers` first: when
// nobody listens, an event costs one property read and builds no payload.
// The channel names and payloads are documented in README.md ("Diagnostics channels").
import dc from 'node:diagnostics_channel'

export const CHANNEL_PREFIX = 'fastify-realtime'

export const channels = {
  /** `{ connection }`: a connection was admitted and welcomed. */
  connectionOpen: dc.channel(`${CHANNEL_PREFIX}:connection:open`),
  /** `{ connection, code, reason }`: an accepted socket closed (admitted or not). */
  connectionClose: dc.channel(`${CHANNEL_PREFIX}:connection:close`),
  /** `{ connection, topic, pattern, recovered }`: a subscribe was confirmed. */
  subscribe: dc.channel(`${CHANNEL_PREFIX}:subscribe`),
  /** `{ connection, topic, pattern, reason }`: a confirmed subscription ended. */
  unsubscribe: dc.channel(`${CHANNEL_PREFIX}:unsubscribe`),
  /** `{ broker, topic, pattern, offset, duration }`: a publication went through the broker (duration in ms). */
  publish: dc.channel(`${CHANNEL_PREFIX}:publish`),
  /** `{ connection, type }`: a frame arrived; `type` is a route or built-in name, `unknown` or `invalid`. */
  messageIn: dc.channel(`${CHANNEL_PREFIX}:message:in`),
  /** `{ connection, type }`: a frame other than fan-out was sent (fan-out is counted on `delivery`). */
  messageOut: dc.channel(`${CHANNEL_PREFIX}:message:out`),
  /** `{ connection, code }`: an error frame was sent, with its wire code. */
  error: dc.channel(`${CHANNEL_PREFIX}:error`),
  /** `{ broker, topic, pattern, subscribers, dropped }`: one publication (or presence change) fanned out on this node. */
  delivery: dc.channel(`${CHANNEL_PREFIX}:delivery`),
  /** `{ broker, topic, pattern, count }`: messages of one publication dropped for slow subscribers of a volatile topic. */
  dropped: dc.channel(`${CHANNEL_PREFIX}:dropped`),
  /** `{ broker, type, connections }`: one `broadcast()` of an event, sent to that many connections (once, not per connection). */
  broadcast: dc.channel(`${CHANNEL_PREFIX}:broadcast`)
}

/** Built-in frame types a client may send: the other bounded label values beside route names. */
const BUILT_INS: ReadonlySet<string> = new Set(['ping', 'subscribe', 'unsubscribe', 'publish', 'presence', 'auth'])

/**
 * The label of an inbound frame: its type when the app or the protocol declares it,
 * else `unknown`. A client's made-up type never becomes a label value, so observers
 * keyed on it (a metrics registry) cannot be grown by a client.
 */
export function inboundType (type: string, routes: { get: (type: string) => unknown }): string {
  return BUILT_INS.has(type) || routes.get(type) !== undefined ? type : 'unknown'
}

/** The `type` of a frame built by frames.ts (every one starts with `{"type":"`). */
export function frameType (frame: string): string {
  return frame.slice(9, frame.indexOf('"', 9))
}

/** Messages dropped by Connection.send, read by the hub around one fan-out (synchronous, so the difference is that fan-out's). */
export const dropTally = { count: 0 }
