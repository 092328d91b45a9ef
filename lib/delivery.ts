// The delivery rule: what one subscriber gets of one publication. Live fan-out
// (hub.ts) and the release of what was held during a subscribe both apply it, so a
// publication is judged the same way whichever path it takes.
import type { Connection, Subscription } from './connection.js'
import { messageFrame } from './frames.js'
import type { Publication, StreamPosition } from './broker/types.js'
import type { SharedFrame } from './compress-once.js'

/** One framed publication (or presence change) on its way to the subscribers of a topic. */
export interface Delivery {
  /** The publication's offset; 0 for a frame outside the stream (ephemeral, presence). */
  offset: number
  epoch: string
  /** Framed once (and compressed once where negotiated) for every subscriber. */
  frame: SharedFrame
  /** For a frame outside the stream: drop it for a slow subscriber instead of closing (typing, not presence). */
  volatile: boolean
}

/** What to do with a subscriber that would miss publications: tell it (2500) and end the subscription. */
export type GapHandler = (connection: Connection<any>, subscription: Subscription) => void

/**
 * Sends a delivery to one subscriber, or holds it while the subscriber's subscribe
 * reply is not out yet (so nothing overtakes the reply).
 */
export function deliver (connection: Connection<any>, subscription: Subscription, delivery: Delivery, onGap: GapHandler): void {
  if (subscription.held !== null) subscription.held.push(delivery)
  else apply(connection, subscription, delivery, onGap)
}

/**
 * After the subscribe reply: the recovered publications, then those held meanwhile
 * that come after them. In order, none twice, none missing, or a gap told.
 */
export function release (connection: Connection<any>, subscription: Subscription, position: StreamPosition, recovered: Publication[], onGap: GapHandler): void {
  for (const p of recovered) connection.send(messageFrame(p.topic, p.offset, p.epoch, p.data))
  const held = subscription.held as Delivery[]
  subscription.held = null
  subscription.offset = position.offset
  subscription.epoch = position.epoch
  for (const delivery of held) {
    // A gap ends the subscription: nothing after it may be sent.
    if (connection.subscriptions.get(subscription.topic) !== subscription) return
    apply(connection, subscription, delivery, onGap)
  }
}

function apply (connection: Connection<any>, subscription: Subscription, delivery: Delivery, onGap: GapHandler): void {
  const offset = delivery.offset
  if (offset === 0) {
    connection.sendShared(delivery.frame, delivery.volatile)
  } else if (delivery.epoch !== subscription.epoch) {
    // The stream was reset (store flushed, meta expired): offsets restart, so
    // comparing them would hide a gap.
    onGap(connection, subscription)
  } else if (offset <= subscription.offset) {
    // Already sent: recovery and live delivery overlap. Skip it.
  } else if (offset === subscription.offset + 1 || subscription.volatile) {
    // A volatile topic skips what a slow subscriber lost instead of calling it a gap.
    subscription.offset = offset
    connection.sendShared(delivery.frame, subscription.volatile)
  } else {
    onGap(connection, subscription)
  }
}
