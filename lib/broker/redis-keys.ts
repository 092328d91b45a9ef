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
    return `${this.prefix}{${topic}}:meta`
  }

  stream (topic: string): string {
    return `${this.prefix}{${topic}}:stream`
  }

  presence (topic: string): string {
    return `${this.prefix}{${topic}}:presence`
  }

  /** The set of members a node added. */
  node (id: string): string {
    return `${this.nodes}:${id}`
  }

  channel (topic: string): string {
    return this.cluster ? `${this.prefix}{${topic}}:ch` : `${this.prefix}ch:${topic}`
  }

  /** The topic of a channel, or null when the channel is not a topic's. */
  topicOf (channel: string): string | null {
    if (this.cluster) {
      const open = this.prefix.length
      if (!channel.startsWith(this.prefix) || channel[open] !== '{' || !channel.endsWith('}:ch')) return null
      return channel.slice(open + 1, -4)
    }
    const head = `${this.prefix}ch:`
    return channel.startsWith(head) ? channel.slice(head.length) : null
  }
}
