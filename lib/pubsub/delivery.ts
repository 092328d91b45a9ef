// The delivery rule: what one subscriber gets of one publication. Live fan-out
// (hub.ts), the release of what was held during a subscribe and the replay of what a
// subscribe with `since` recovered all apply it, so a publication is judged the same
// way whichever path it takes: nothing here sends a publication past `apply`.
import type { Connection } from '../connection/connection.js'
import type { DeltaForms, Delivery, Subscription } from '../connection/subscriptions.js'
import { DeltaFrames } from './delta-frames.js'

export type { Delivery }
import { messageFrame } from '../wire/frames.js'
import type { Publication, StreamPosition } from '../broker/types.js'
import type { SharedFrame } from '../wire/compress-once.js'
import { untag } from './tags.js'

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
 * A publication read from history (recovery) as a delivery: framed as live ones are,
 * so that it meets the same rule (volatile drops, the send-queue limit, the offset checks).
 */
export function recoveredDelivery (publication: Publication, shared: (text: string) => SharedFrame, delta = false): Delivery {
  const { topic, offset, epoch } = publication
  const { data, tags } = untag(publication.data)
  const delivery: Delivery = { offset, epoch, frame: shared(messageFrame(topic, offset, epoch, data)), volatile: false }
  if (tags !== undefined) delivery.tags = tags
  // Recovered publications go whole to a delta subscriber; live ones may follow as deltas.
  if (delta) delivery.delta = new DeltaFrames(topic, offset, epoch, data, undefined, shared)
  return delivery
}

/**
 * After the subscribe reply: the recovered publications, then those held meanwhile
 * that come after them, each through `apply`. In order, none twice, none missing, or
 * a gap told. `position` is where the stream stood when history was read; recovered
 * publications run up to it, one offset after another. Returns how many recovered
 * publications were sent (a volatile topic drops them for a slow subscriber).
 */
export function release (connection: Connection<any>, subscription: Subscription, position: StreamPosition, recovered: Delivery[], onGap: GapHandler): number {
  const held = subscription.held as Delivery[]
  subscription.held = null
  subscription.epoch = position.epoch
  // Just before the first recovered publication, so that the rule takes it as the next one.
  subscription.offset = recovered.length > 0 ? recovered[0].offset - 1 : position.offset
  let sent = 0
  for (const delivery of recovered) {
    if (connection.subscriptions.get(subscription.topic) !== subscription) return sent
    if (apply(connection, subscription, delivery, onGap)) sent++
  }
  for (const delivery of held) {
    // A gap ends the subscription: nothing after it may be sent.
    if (connection.subscriptions.get(subscription.topic) !== subscription) return sent
    apply(connection, subscription, delivery, onGap)
  }
  return sent
}

/** The rule itself. True when the frame was handed to the socket. */
function apply (connection: Connection<any>, subscription: Subscription, delivery: Delivery, onGap: GapHandler): boolean {
  const offset = delivery.offset
  // The excluded (the sender, a filter's non-matches) move on past it like the others,
  // unsent. Only publications carry tags: presence is never filtered.
  const excluded = (delivery.except !== undefined && delivery.except.includes(connection.id)) ||
    (subscription.filter !== undefined && delivery.tags !== undefined && !subscription.filter.matches(delivery))
  if (offset === 0) {
    return !excluded && connection.sendShared(delivery.frame, delivery.volatile)
  } else if (delivery.epoch !== subscription.epoch) {
    // The stream was reset (store flushed, meta expired): offsets restart, so
    // comparing them would hide a gap.
    onGap(connection, subscription)
  } else if (offset <= subscription.offset) {
    // Already sent: recovery and live delivery overlap. Skip it.
  } else if (offset === subscription.offset + 1 || subscription.volatile || subscription.filter?.skips(delivery, subscription.offset) === true) {
    // A volatile topic skips what a slow subscriber lost instead of calling it a gap; a
    // filter, what it left out without visiting its subscribers (filter-index.ts).
    subscription.offset = offset
    if (subscription.delta < 0) return !excluded && connection.sendShared(delivery.frame, subscription.volatile)
    const forms = delivery.delta
    const sent = !excluded && connection.sendShared(forms === undefined ? delivery.frame : deltaFrame(subscription, forms, offset), subscription.volatile)
    // A publication the subscriber did not get (excluded, dropped), or got without its text, cannot be a base.
    subscription.delta = sent && forms !== undefined ? offset : 0
    return sent
  } else {
    onGap(connection, subscription)
  }
  return false
}

/**
 * For a subscriber that asked for deltas: the delta when the last publication it was sent
 * is the one just before this (same epoch, offset - 1: the base it holds), else the
 * publication whole. After recovery, a gap, a drop or a new epoch, the next one is whole.
 */
function deltaFrame (subscription: Subscription, forms: DeltaForms, offset: number): SharedFrame {
  return subscription.delta === offset - 1 ? forms.patch() ?? forms.full() : forms.full()
}
