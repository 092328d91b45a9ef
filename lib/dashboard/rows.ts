// The dashboard's connections table: this node's connections, filtered by a search
// over id, user, address and topics, newest first, at most `limit` of them.
import type { Realtime } from '../plugin/public.js'

export interface ConnectionRow {
  id: string
  userId: string | null
  address: string
  connectedAt: number
  subscriptions: string[]
  queuedBytes: number
  messagesIn: number
  messagesOut: number
}

export interface ConnectionRows {
  /** Connections on this node. */
  total: number
  /** How many match the search (`rows` holds at most `limit` of them). */
  matched: number
  rows: ConnectionRow[]
}

export function connectionRows (realtime: Realtime<any>, query: string, limit: number): ConnectionRows {
  const q = query.trim().toLowerCase()
  const rows: ConnectionRow[] = []
  let matched = 0
  for (const connection of realtime.connections) {
    const topics = [...connection.subscriptions.keys()]
    // The address Fastify read at the upgrade (trustProxy applies); kept by the request after it.
    const address = connection.request.ip ?? ''
    if (q !== '' && ![connection.id, connection.userId ?? '', address, ...topics].some((field) => field.toLowerCase().includes(q))) continue
    matched++
    rows.push({
      id: connection.id,
      userId: connection.userId ?? null,
      address,
      connectedAt: connection.connectedAt,
      subscriptions: topics,
      queuedBytes: connection.bufferedAmount,
      messagesIn: connection.messagesIn,
      messagesOut: connection.messagesOut
    })
  }
  rows.sort((a, b) => b.connectedAt - a.connectedAt)
  return { total: realtime.connections.size, matched, rows: rows.slice(0, limit) }
}
