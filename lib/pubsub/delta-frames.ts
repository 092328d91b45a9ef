// The frames of one publication for the subscribers that asked for deltas, made once per
// publication (not per subscriber) and only when one of them needs it: the full form (the
// data as its JSON text) and the delta against the publication just before it in the
// stream (same epoch, offset - 1), when this node delivered that one too. Which of the
// two a subscriber gets is the delivery rule's decision (delivery.ts).
import { deltaMessageFrame } from '../wire/frames.js'
import { fossilDelta } from '../wire/delta.js'
import type { SharedFrame } from '../wire/compress-once.js'

export class DeltaFrames {
  readonly #topic: string
  readonly #offset: number
  readonly #epoch: string
  readonly #data: string
  /** The data of the publication at offset - 1 in this epoch; undefined when unknown here. */
  #previous: string | undefined
  readonly #shared: (text: string) => SharedFrame
  #full: SharedFrame | undefined
  #patch: SharedFrame | null | undefined

  constructor (topic: string, offset: number, epoch: string, data: string, previous: string | undefined, shared: (text: string) => SharedFrame) {
    this.#topic = topic
    this.#offset = offset
    this.#epoch = epoch
    this.#data = data
    this.#previous = previous
    this.#shared = shared
  }

  /** The publication whole (its data as JSON text, `delta: false`). */
  full (): SharedFrame {
    this.#full ??= this.#shared(deltaMessageFrame(this.#topic, this.#offset, this.#epoch, false, this.#data))
    return this.#full
  }

  /** The delta against offset - 1 (`delta: true`); null when that one is unknown here or the delta saves nothing. */
  patch (): SharedFrame | null {
    if (this.#patch === undefined) {
      const delta = this.#previous === undefined ? null : fossilDelta(this.#previous, this.#data)
      this.#patch = delta === null ? null : this.#shared(deltaMessageFrame(this.#topic, this.#offset, this.#epoch, true, delta))
      // Nothing else needs the previous data: let it go.
      this.#previous = undefined
    }
    return this.#patch
  }
}
