// Subscriptions the server decides (`app.realtime.subscribe`), and their recovery.
//
// A server subscription lives on its connection, as a client's does. It is restored
// after a reconnection by the application's `onConnect` hook, which runs for the new
// connection as it did for the old one: the client is told `subscribed` with the topic's
// position, and when it held an older position on that topic (it was away), it asks for
// what it missed with a `subscribe` carrying `since`. That subscribe, on a topic the
// server subscribed it to, recovers in place: no `authorize` (the server holds the
// subscription), no hooks again, no presence change; the reply says `recovered` and the
// missed publications follow it, in order, before any newer one, as for any recovery.
import type { RecoveryResult, StreamPosition } from '../broker/types.js'
import type { Connection, Subscription } from '../connection/connection.js'
import { wireErrors } from '../protocol/errors.js'
import type { MessageId } from '../wire/frames.js'

/** What an in-place recovery needs of the topic commands. */
export interface InPlaceHost {
  recover: (topic: string, since: StreamPosition) => Promise<RecoveryResult>
  reply: (connection: Connection<any>, id: MessageId, data: { topic: string, offset: number, epoch: string, recovered: boolean }) => void
  release: (connection: Connection<any>, subscription: Subscription, recovery: RecoveryResult) => void
}

/** Whether the subscription was confirmed (its reply or `subscribed` is out): only then is its end told. */
export function confirmed (subscription: Subscription): boolean {
  return subscription.held === null || subscription.recovering === true
}

/**
 * The position delivery goes on from: the stream's, or, when publications are sent first
 * (a new epoch replayed after `recovered: false`, the latest value), the one the first of
 * them follows, so a client that adopts it takes every one.
 */
export function startOf (recovery: RecoveryResult): StreamPosition {
  return recovery.recovered || recovery.publications.length === 0
    ? recovery.position
    : { offset: recovery.publications[0].offset - 1, epoch: recovery.position.epoch }
}

/**
 * Recovers a confirmed server subscription from `since`: live publications are held
 * while history is read, then the delivery rule takes the recovered and the held ones
 * from `since` on (what was sent live meanwhile is sent again after the reply: the
 * client drops what it had, by offset).
 */
export async function recoverInPlace (host: InPlaceHost, connection: Connection<any>, subscription: Subscription, since: StreamPosition, id: MessageId): Promise<void> {
  const topic = subscription.topic
  subscription.held = []
  subscription.recovering = true
  let recovery: RecoveryResult
  try {
    recovery = await host.recover(topic, since)
  } catch (err) {
    // Nothing recovered: what was held goes on from where the subscription stood.
    delete subscription.recovering
    host.release(connection, subscription, { position: { offset: subscription.offset, epoch: subscription.epoch }, recovered: false, publications: [] })
    throw err
  }
  delete subscription.recovering
  if (connection.subscriptions.get(topic) !== subscription) throw wireErrors.notSubscribed(topic)
  const from = startOf(recovery)
  host.reply(connection, id, { topic, offset: from.offset, epoch: from.epoch, recovered: recovery.recovered })
  host.release(connection, subscription, recovery)
}
