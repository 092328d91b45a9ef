// Where the Redis broker keeps things (P is the prefix, T a topic name). Every key of a
// topic carries the hash tag {T}, so on Redis Cluster a topic lives on one shard and
// its scripts touch one slot; the nodes' liveness and member lists share the tag
// {nodes}, one slot for them all.
//
//   P{T}:meta         hash    epoch, offset (last assigned), ttl (history ttl of the last publication)
//   P{T}:stream       stream  history; entry id `<offset>-0`, fields d (data), t (ms), x (except JSON)
//   P{T}:presence     hash    connection id -> "<node id>\n<member data>"
//   P{nodes}          zset    node id -> ms at which the node counts as dead unless it beats again
//   P{nodes}:<id>     set     "<connection id>\n<topic>" for every member the node added
//
// Channels: standalone, Pch:T (publications and presence events of T, PUBLISH) and
// Pcontrol (commands). On a cluster a topic's channel is the sharded channel P{T}:ch
// (SPUBLISH/SSUBSCRIBE: served by the topic's shard only), and Pcontrol stays a classic
// channel, which the cluster forwards to every shard.
//
// The tag on a cluster. Redis hashes what lies between the first `{` of a key and the
// first `}` after it, unless that is empty: then it hashes the whole key. A topic may
// hold braces (only control characters are barred, lib/protocol/topic-names.ts), so the tag of
// P{T}:… is T up to its first `}`: `a}b` hashes as `a`, `{x}` as `{x`, the same for
// all its keys and its channel, which is all that matters. But a topic that starts
// with `}` has an empty tag: Redis would hash each whole key, its meta, stream and
// channel would land in different slots, and every script on it would fail with
// CROSSSLOT. So on a cluster such a name is written with a control character (ESCAPE)
// in front: P{\u0001}x}:meta, whose tag `\u0001` is never empty. No topic name starts
// with a control character, so the escaped form cannot be another topic's own; and a
// name handed to the broker directly (unchecked) that does start with ESCAPE is
// escaped too, so the mapping stays one-to-one for every string (topicOf strips one
// ESCAPE, and knows no channel that channel() would not write). Every other name keeps
// the layout it always had. On one Redis there are no slots and nothing is escaped: the
// keys of a `}…` topic stay where they were, and nodes of two versions in a rolling
// upgrade keep using the same keys. (All `}…` topics share the one slot of `\u0001`, as
// all `a}…` topics share the slot of `a`. This reasoning assumes a prefix without `{`:
// a prefix's own `{` would open the tag instead.)

/** Put before a cluster tag that would be empty (a topic starting with `}`); a control character, so never a topic's first. */
const ESCAPE = '\u0001'

export class RedisKeys {
  readonly prefix: string
  readonly cluster: boolean
  readonly control: string
  readonly nodes: string
  /** The command that announces on a topic's channel. */
  readonly publish: 'PUBLISH' | 'SPUBLISH'

  constructor (prefix: string, cluster: boolean) {
    this.prefix = prefix
    this.cluster = cluster
    this.control = `${prefix}control`
    this.nodes = `${prefix}{nodes}`
    this.publish = cluster ? 'SPUBLISH' : 'PUBLISH'
  }

  meta (topic: string): string {
    return `${this.prefix}{${this.#tag(topic)}}:meta`
  }

  stream (topic: string): string {
    return `${this.prefix}{${this.#tag(topic)}}:stream`
  }

  presence (topic: string): string {
    return `${this.prefix}{${this.#tag(topic)}}:presence`
  }

  /** The set of members a node added. */
  node (id: string): string {
    return `${this.nodes}:${id}`
  }

  channel (topic: string): string {
    return this.cluster ? `${this.prefix}{${this.#tag(topic)}}:ch` : `${this.prefix}ch:${topic}`
  }

  /** The topic of a channel, or null when the channel is not a topic's. */
  topicOf (channel: string): string | null {
    if (this.cluster) {
      const open = this.prefix.length
      if (!channel.startsWith(this.prefix) || channel[open] !== '{' || !channel.endsWith('}:ch')) return null
      const tag = channel.slice(open + 1, -4)
      if (tag[0] !== ESCAPE) return tag[0] === '}' ? null : tag
      // Only what channel() writes: an escaped tag is a `}` or ESCAPE name, escaped once.
      const topic = tag.slice(1)
      return topic[0] === '}' || topic[0] === ESCAPE ? topic : null
    }
    const head = `${this.prefix}ch:`
    return channel.startsWith(head) ? channel.slice(head.length) : null
  }

  /** What goes between the braces: the topic, escaped on a cluster where its tag would be empty (see the top). */
  #tag (topic: string): string {
    return this.cluster && (topic[0] === '}' || topic[0] === ESCAPE) ? ESCAPE + topic : topic
  }
}
