// Count presence (`presence: { mode: 'count' }`): a topic with thousands of members
// would send every subscriber every join and leave, a frame per change per subscriber.
// Instead each node, told of a change, waits the topic's interval, then asks the broker
// how many members the topic has (on every node) and sends that one number to its local
// subscribers: at most one count per topic per interval, however many joined or left.
import type { Broker } from '../broker/types.js'

export class PresenceCounts {
  readonly #broker: Broker
  readonly #send: (topic: string, count: number) => void
  /** Topics with a count scheduled. */
  readonly #due = new Set<string>()

  constructor (broker: Broker, send: (topic: string, count: number) => void) {
    this.#broker = broker
    this.#send = send
  }

  /** A member joined or left: the topic's count goes out once the interval is over. */
  changed (topic: string, interval: number): void {
    if (this.#due.has(topic)) return
    this.#due.add(topic)
    // Unref'd: a count due never keeps the process alive; after a shutdown no subscriber is left to send it to.
    setTimeout(() => { this.#count(topic) }, interval).unref()
  }

  #count (topic: string): void {
    this.#due.delete(topic)
    this.#broker.members(topic).then((members) => this.#send(topic, members.length), () => {
      // The broker is away: the next change schedules another count.
    })
  }
}
