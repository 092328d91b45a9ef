// How one publication's walk over its subscribers is spread across event-loop turns. A
// walk no larger than the slice runs at once, as it always did; a larger one writes to
// `slice` subscribers per turn and goes on in the next (setImmediate: the I/O of the turn,
// replies, pings and the fan-outs of other topics run between two slices). A topic's
// walks run one after the other: a publication that arrives during a sliced walk waits
// for it, so it never overtakes an earlier one for any subscriber of the topic.
import type { Connection } from '../connection/connection.js'

/** A topic's subscriber set, or the filtered recipients of one publication (filter-index.ts). */
export type Subscribers = ReadonlySet<Connection<any>> | ReadonlyArray<Connection<any>>

interface Walk {
  readonly topic: string
  readonly subscribers: Subscribers
  readonly visit: (connection: Connection<any>) => void
  readonly done: () => void
  /** The subscribers when the walk started: those who join later read the stream after it. */
  list: Array<Connection<any>> | null
  next: number
}

export class FanOuts {
  readonly #slice: number
  /** Per topic, its walk under way first, then those waiting behind it. */
  readonly #topics = new Map<string, Walk[]>()
  #idle: Array<() => void> = []

  constructor (slice: number) {
    this.#slice = slice
  }

  /**
   * Calls `visit` for each connection of `subscribers`, then `done`: at once when the set
   * is within the slice and no walk of the topic is under way, else in slices, after the
   * topic's earlier walks. A connection that left the topic meanwhile is still visited:
   * `visit` checks its subscription.
   */
  walk (topic: string, subscribers: Subscribers, visit: (connection: Connection<any>) => void, done: () => void): void {
    const queue = this.#topics.get(topic)
    const size = 'size' in subscribers ? subscribers.size : subscribers.length
    if (queue === undefined && size <= this.#slice) {
      for (const connection of subscribers) visit(connection)
      done()
      return
    }
    const walk: Walk = { topic, subscribers, visit, done, list: null, next: 0 }
    if (queue !== undefined) {
      queue.push(walk)
      return
    }
    this.#topics.set(topic, [walk])
    this.#step(walk)
  }

  /** Resolves once no walk is under way (a shutdown waits for it before closing the connections). */
  idle (): Promise<void> {
    if (this.#topics.size === 0) return Promise.resolve()
    return new Promise((resolve) => this.#idle.push(resolve))
  }

  #step (walk: Walk): void {
    const list = walk.list ??= [...walk.subscribers]
    const end = Math.min(list.length, walk.next + this.#slice)
    try {
      while (walk.next < end) walk.visit(list[walk.next++])
    } finally {
      // Even past a throw (it reaches the caller, as an unsliced walk's would): the rest
      // of the walk, and the topic's later ones, still go on.
      if (walk.next < list.length) setImmediate(() => this.#step(walk))
      else this.#finish(walk)
    }
  }

  #finish (walk: Walk): void {
    try {
      walk.done()
    } finally {
      const queue = this.#topics.get(walk.topic) as Walk[]
      queue.shift()
      // The next walk of the topic in the next turn: this one may have used the turn up.
      if (queue.length > 0) setImmediate(() => this.#step(queue[0]))
      else this.#ended(walk.topic)
    }
  }

  #ended (topic: string): void {
    this.#topics.delete(topic)
    if (this.#topics.size === 0 && this.#idle.length > 0) {
      const waiting = this.#idle
      this.#idle = []
      for (const resolve of waiting) resolve()
    }
  }
}
