// The local subscribers of a topic with filtered subscriptions, grouped by filter, so
// that a tagged publication is walked to the subscribers it is for: those without a
// filter, and the groups whose filter matches it (judged once per group). The others
// are not visited at all: their filter remembers that it judged, one offset after
// another, every publication it left out (filters.ts, `skips`), and the delivery rule
// moves a subscriber of that filter past them when the next one reaches it.
import type { Connection } from '../connection/connection.js'
import type { Delivery, SubscriptionFilter } from '../connection/subscriptions.js'

interface TopicIndex {
  /** Subscribers without a filter. */
  plain: Set<Connection>
  groups: Map<SubscriptionFilter, Set<Connection>>
}

export class FilterIndex {
  readonly #topics = new Map<string, TopicIndex>()

  /** A subscriber joined the topic's local set (`all`, itself included). */
  add (connection: Connection, topic: string, all: Set<Connection>): void {
    const filter = connection.subscriptions.get(topic)?.filter
    let index = this.#topics.get(topic)
    if (filter === undefined) {
      index?.plain.add(connection)
      return
    }
    if (index === undefined) {
      // The first filtered subscriber: every other one so far has no filter.
      this.#topics.set(topic, index = { plain: new Set([...all].filter((c) => c !== connection)), groups: new Map() })
    }
    let group = index.groups.get(filter)
    if (group === undefined) index.groups.set(filter, group = new Set())
    group.add(connection)
  }

  remove (connection: Connection, topic: string): void {
    const index = this.#topics.get(topic)
    if (index === undefined || index.plain.delete(connection)) return
    for (const [filter, group] of index.groups) {
      if (!group.delete(connection)) continue
      if (group.size === 0) index.groups.delete(filter)
      break
    }
    if (index.groups.size === 0) this.#topics.delete(topic)
  }

  /** The subscribers a tagged publication is for, or undefined when the topic has no filtered subscriber here. */
  recipients (topic: string, delivery: Delivery): Connection[] | undefined {
    const index = this.#topics.get(topic)
    if (index === undefined) return undefined
    const out = [...index.plain]
    for (const [filter, group] of index.groups) {
      if (filter.judge(delivery)) for (const connection of group) out.push(connection)
    }
    return out
  }
}
