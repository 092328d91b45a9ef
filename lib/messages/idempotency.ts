// Idempotent routes: the first answer (reply or error) per (user, route, key) is kept in
// the broker for the route's window, so a request retried after a lost connection, on
// any node, gets that answer again instead of running its handler twice.
//
// A run claims the scope with a random token (a pending marker in the broker). A repeat
// that finds the marker polls until the answer is stored or the marker is gone (its
// node died: the marker lives `pendingTimeout` and the running node renews it, so a dead
// node blocks the key for at most that long), then takes the answer or claims it itself.
// Polling rather than a pub/sub wake-up keeps this within two single-key scripts that
// behave the same on a Redis Cluster; repeats are rare, so its cost is small.
import { randomBytes } from 'node:crypto'
import type { Broker, IdempotencyScope, IdempotencyStore } from '../broker/types.js'
import { errorCodes, wireErrors } from '../protocol/errors.js'
import { withId, type MessageId } from '../wire/frames.js'
import { defaults } from '../config/options.js'

/** First and longest pause between two looks at a claim held by another run. */
const POLL_FIRST = 10
const POLL_MAX = 250

export interface RunIdempotentOptions {
  broker: Broker
  /** The connection's user id; undefined for anonymous connections (they share one scope, so their keys must be unguessable). */
  userId: string | undefined
  route: string
  /** The envelope's `key` (already checked with `checkIdempotencyKey`). */
  key: string
  /** The envelope's `id`, put into the answer sent back (the remembered one may come from a request with another id). */
  id: MessageId
  /** Ms the answer is remembered (the plugin's `idempotency.ttl`). */
  ttl: number
  /** Ms a claim survives without renewal, and the longest a repeat waits for the first run. Default 30000. */
  pendingTimeout?: number
}

/**
 * Runs `run` once per (user, route, key) within the ttl and returns the answer record
 * with `options.id`. `run` must resolve with the answer record built without an id
 * (`replyFrame(undefined, data)`, `errorFrame(undefined, err)`, or `answerRecord` of one
 * to keep an error's close code): an error answer is remembered like a reply. When
 * `run` throws instead, nothing is remembered and a retry runs again (what is not the
 * handler's own outcome goes that way). Broker failures reject (answer them as UNAVAILABLE).
 */
export async function runIdempotent (options: RunIdempotentOptions, run: () => Promise<string>): Promise<string> {
  const store = idempotencyStore(options.broker, options.route)
  const scope: IdempotencyScope = { userId: options.userId ?? '', route: options.route, key: options.key }
  const pendingTimeout = options.pendingTimeout ?? defaults.idempotencyPendingTimeout
  const token = randomBytes(12).toString('base64url')
  const started = Date.now()
  let pause = POLL_FIRST
  for (;;) {
    const claim = await store.claimIdempotent(scope, token, pendingTimeout)
    if (claim.status === 'done') return recordWithId(claim.answer, options.id)
    if (claim.status === 'claimed') break
    if (Date.now() - started >= pendingTimeout) {
      throw wireErrors.unavailable('The first request with this key is still running', POLL_MAX)
    }
    // Not unref'd: the wait is bounded, and a caller awaiting it must not be cut short.
    await new Promise((resolve) => setTimeout(resolve, pause))
    pause = Math.min(pause * 2, POLL_MAX)
  }
  // Renew the claim while the handler runs, so a long handler is not run a second time.
  const renew = setInterval(() => {
    store.claimIdempotent(scope, token, pendingTimeout).catch(() => {})
  }, Math.max(1, Math.floor(pendingTimeout / 3)))
  renew.unref()
  let answer: string
  try {
    answer = await run()
  } catch (err) {
    clearInterval(renew)
    await store.settleIdempotent(scope, token, null, 0).catch(() => {})
    throw err
  }
  clearInterval(renew)
  // The handler ran: its answer goes out even when the broker cannot keep it (a retry
  // after the claim expires would then run again, which is the best that can be done).
  await store.settleIdempotent(scope, token, answer, options.ttl).catch(() => {})
  return recordWithId(answer, options.id)
}

/**
 * What is remembered of an answer: its frame, behind the close code its error carries
 * when it has one (`4504{"type":"error",…}`), so a repeat closes the connection as the
 * first answer did. A frame alone (every record before this format) reads as no close.
 */
export function answerRecord (frame: string, closeCode?: number): string {
  return closeCode === undefined ? frame : `${closeCode}${frame}`
}

export function readAnswerRecord (record: string): { frame: string, closeCode: number | undefined } {
  const at = record.indexOf('{')
  return at <= 0 ? { frame: record, closeCode: undefined } : { frame: record.slice(at), closeCode: Number(record.slice(0, at)) }
}

/** The record with the request's id put into its frame. */
function recordWithId (record: string, id: MessageId): string {
  const at = Math.max(0, record.indexOf('{'))
  return record.slice(0, at) + withId(record.slice(at), id)
}

/** The broker as an idempotency store; a broker without one fails naming the route. */
export function idempotencyStore (broker: Broker, route: string): IdempotencyStore {
  if (typeof broker.claimIdempotent !== 'function' || typeof broker.settleIdempotent !== 'function') {
    throw new errorCodes.FST_REALTIME_NO_IDEMPOTENCY(route)
  }
  return broker as IdempotencyStore
}
