// Presence on Redis: each member is stored in its topic's hash with the node that added
// it, and listed in that node's set; each node beats every presenceTtl / 3, and live
// nodes sweep the members of a node that stopped beating, announcing each leave once.
//
// A join, a leave and a sweep each touch two hash slots (the topic's and {nodes}), so
// on a cluster they are two scripts, ordered so that a crash between them leaves only
// harmless residue: a join records the member with its node before adding it to the
// topic (a sweep then finds nothing to remove), and a leave removes it from the topic
// before forgetting it (a sweep then skips it). The removal from the topic checks the
// owner atomically, so two sweepers never announce one leave twice.
import { errorCodes } from '../protocol/errors.js'
import type { PresenceMember } from './types.js'
import type { RedisClient } from './redis-connection.js'
import { wrapError } from './redis-connection.js'
import type { RedisKeys } from './redis-keys.js'
import { ALIVE, BEAT, CLAIM, DEAD, FORGET, JOIN, LEAVE, type LuaScript } from './redis-scripts.js'

/** What presence needs from the broker. */
export interface PresenceHost {
  readonly id: string
  readonly keys: RedisKeys
  /** Runs a script; `closing` lets close() still use the connection for its last cleanup. */
  eval: (script: LuaScript, keys: string[], args: Array<string | number>, closing?: boolean) => Promise<unknown>
  /** The command connection, ready (or the error the caller should see). */
  client: (closing?: boolean) => Promise<RedisClient>
  clock: () => number
  warn: (err: unknown, msg: string) => void
}

interface LocalMember {
  topic: string
  member: PresenceMember
}

/** Set entries swept per round. */
const REAP_BATCH = 500
/** Dead nodes swept per heartbeat. */
const REAP_NODES = 100

export class RedisPresence {
  readonly #host: PresenceHost
  readonly #ttl: number
  /** Members this node added, to add again if Redis forgot them (flush, restart, long outage). */
  readonly #members = new Map<string, LocalMember>()
  /** Leaves that could not reach Redis, retried on the next heartbeat. */
  readonly #leaves = new Map<string, { topic: string, connectionId: string }>()

  constructor (host: PresenceHost, ttl: number) {
    this.#host = host
    this.#ttl = ttl
  }

  async join (topic: string, member: PresenceMember): Promise<void> {
    if (member.connectionId.includes('\n')) throw new errorCodes.FST_REALTIME_INVALID_DATA('a presence member', 'its connection id cannot contain a line break')
    const key = `${member.connectionId}\n${topic}`
    this.#members.set(key, { topic, member })
    this.#leaves.delete(key)
    let alive: unknown
    try {
      alive = await this.#join(topic, member, false)
    } catch (err) {
      this.#members.delete(key)
      throw err
    }
    if (alive === 0) await this.#rejoin()
  }

  async #join (topic: string, member: PresenceMember, onlyIfAbsent: boolean): Promise<unknown> {
    const { id, keys } = this.#host
    const key = `${member.connectionId}\n${topic}`
    const alive = await this.#host.eval(CLAIM, [keys.nodes, keys.node(id)], [id, this.#host.clock(), this.#ttl, key])
    // Adding a member back (onlyIfAbsent): it may have left while the claim ran, and its
    // LEAVE gone out already; a JOIN now would leave a member behind its connection, to be
    // announced leaving a second time. (The set entry the claim made is harmless residue.)
    if (onlyIfAbsent && this.#members.get(key)?.member !== member) return alive
    await this.#host.eval(JOIN, [keys.presence(topic)], [id, member.connectionId, member.data, onlyIfAbsent ? '1' : '0', keys.publish, keys.channel(topic)])
    return alive
  }

  async leave (topic: string, connectionId: string): Promise<void> {
    const key = `${connectionId}\n${topic}`
    this.#members.delete(key)
    try {
      await this.#leave(topic, connectionId)
    } catch (err) {
      // Retried with the next heartbeat: a member must not outlive its connection.
      this.#leaves.set(key, { topic, connectionId })
      throw err
    }
  }

  async #leave (topic: string, connectionId: string, closing = false): Promise<void> {
    const { keys } = this.#host
    const owner = await this.#host.eval(LEAVE, [keys.presence(topic)], [connectionId, '', keys.publish, keys.channel(topic)], closing)
    if (typeof owner !== 'string') return
    const client = await this.#host.client(closing)
    await client.srem(keys.node(owner), `${connectionId}\n${topic}`).catch((err: unknown) => { throw wrapError(err) })
  }

  async members (topic: string): Promise<PresenceMember[]> {
    const { keys } = this.#host
    const client = await this.#host.client()
    let flat: string[]
    try {
      flat = await client.call('HGETALL', keys.presence(topic)) as string[]
    } catch (err) {
      throw wrapError(err)
    }
    const entries: Array<{ node: string, member: PresenceMember }> = []
    for (let i = 0; i < flat.length; i += 2) {
      const v = flat[i + 1]
      const nl = v.indexOf('\n')
      entries.push({ node: v.slice(0, nl), member: { connectionId: flat[i], data: v.slice(nl + 1) } })
    }
    if (entries.length === 0) return []
    // Members of a dead node not swept yet are left out.
    const nodes = [...new Set(entries.map((e) => e.node))]
    const flags = await this.#host.eval(ALIVE, [keys.nodes], [this.#host.clock(), ...nodes]) as number[]
    const alive = new Set(nodes.filter((_, i) => flags[i] === 1))
    return entries.filter((e) => alive.has(e.node)).map((e) => e.member)
  }

  /** The heartbeat; when Redis had forgotten this node, its members are added back. */
  async beat (): Promise<void> {
    const { id, keys } = this.#host
    const alive = await this.#host.eval(BEAT, [keys.nodes], [id, this.#host.clock(), this.#ttl])
    if (alive === 0 && this.#members.size > 0) await this.#rejoin()
  }

  /** Heartbeat, pending leaves, then the sweep of members whose node stopped beating. */
  async upkeep (): Promise<void> {
    await this.beat()
    await this.#flushLeaves()
    const { keys } = this.#host
    for (let i = 0; i < REAP_NODES; i++) {
      const dead = await this.#host.eval(DEAD, [keys.nodes], [this.#host.clock()])
      if (typeof dead !== 'string') break
      await this.#reap(dead, false)
    }
  }

  /** This node is closing: its pending leaves, then every member it still has, each announced once. */
  async close (): Promise<void> {
    try {
      await this.#flushLeaves(true)
      await this.#reap(this.#host.id, true)
    } finally {
      this.#members.clear()
      this.#leaves.clear()
    }
  }

  /** Removes a node's members, a batch at a time, then forgets the node. */
  async #reap (node: string, closing: boolean): Promise<void> {
    const { keys } = this.#host
    const set = keys.node(node)
    for (let round = 0; round < 10_000; round++) {
      const client = await this.#host.client(closing)
      let entries: string[]
      try {
        entries = await client.srandmember(set, REAP_BATCH)
      } catch (err) {
        throw wrapError(err)
      }
      await Promise.all(entries.map(async (entry) => {
        const nl = entry.indexOf('\n')
        const topic = entry.slice(nl + 1)
        await this.#host.eval(LEAVE, [keys.presence(topic)], [entry.slice(0, nl), node, keys.publish, keys.channel(topic)], closing)
      }))
      const state = await this.#host.eval(FORGET, [keys.nodes, set], [node, this.#host.clock(), closing ? '1' : '0', ...entries], closing)
      if (state !== 2) return
    }
  }

  /** Redis forgot some of this node's members: add back those still missing (each heard as a join). */
  async #rejoin (): Promise<void> {
    const members = [...this.#members.values()]
    const results = await Promise.allSettled(members.map(({ topic, member }) => this.#join(topic, member, true)))
    for (const r of results) if (r.status === 'rejected') this.#host.warn(r.reason, 'could not add a presence member back')
  }

  async #flushLeaves (closing = false): Promise<void> {
    for (const [key, { topic, connectionId }] of this.#leaves) {
      await this.#leave(topic, connectionId, closing)
      this.#leaves.delete(key)
    }
  }
}
