// Hooks over the provider's client. Each one subscribes in an effect and undoes it in
// the effect's cleanup, so a component that unmounts leaves no listener and no topic
// behind; listeners passed in are read through a ref, so they need not be stable.
import { useCallback, useEffect, useMemo, useRef, useState, useSyncExternalStore } from 'react'
import type { ClientState, MessageMeta, PresenceMember, RequestOptions, SubscribeOptions } from '../client/index.js'
import { useRealtimeClient } from './provider.js'

export interface ConnectionInfo {
  /** The client's state: connecting, open, reconnecting or closed. */
  state: ClientState
  /** False while the browser says it is offline. */
  online: boolean
}

export interface SubscriptionStatus {
  /** pending until the server confirmed it; error when it refused it (`error` says why). */
  status: 'pending' | 'ready' | 'error'
  error?: unknown
}

export interface ReceivedMessage<M = unknown> {
  data: M
  meta: MessageMeta
}

export interface PresenceInfo {
  members: PresenceMember[]
  /** True while not connected: the list is as it was when the connection went. */
  stale: boolean
}

export interface RequestStatus<D = unknown, R = unknown, E = unknown> {
  /** Sends the request; resolves or rejects like `client.request()`. */
  request: (data: D, options?: RequestOptions) => Promise<R>
  /** Requests of this hook still waiting for their answer. */
  pending: boolean
  /** The last reply. */
  data: R | undefined
  /** The last failure. */
  error: E | undefined
}

/** The connection's state, re-rendering on every change. */
export function useConnectionState (): ConnectionInfo {
  const client = useRealtimeClient()
  const onState = useCallback((notify: () => void) => client.on('state', notify), [client])
  const onNetwork = useCallback((notify: () => void) => client.on('network', notify), [client])
  const state = useSyncExternalStore(onState, () => client.state, () => client.state)
  const online = useSyncExternalStore(onNetwork, () => client.online, () => client.online)
  return useMemo(() => ({ state, online }), [state, online])
}

/** Keeps the latest value in a ref, for callbacks that must not re-subscribe when it changes. */
function useLatest<T> (value: T): { readonly current: T } {
  const ref = useRef(value)
  useEffect(() => { ref.current = value })
  return ref
}

/** Subscribes to a topic while the component is mounted; `listener` gets each publication once, in order. */
export function useSubscription (topic: string, listener?: (message: any, meta: MessageMeta) => void, options: SubscribeOptions = {}): SubscriptionStatus {
  const client = useRealtimeClient()
  const latest = useLatest(listener)
  const [status, setStatus] = useState<SubscriptionStatus>({ status: 'pending' })
  const { meta, filter } = options
  const metaKey = JSON.stringify([meta, filter]) ?? ''
  const delta = options.delta === true
  useEffect(() => {
    let live = true
    setStatus({ status: 'pending' })
    const given: SubscribeOptions = { delta }
    if (meta !== undefined) given.meta = meta
    if (filter !== undefined) given.filter = filter
    const off = client.subscribe(topic as never, (message, m) => latest.current?.(message, m), given)
    off.ready.then(
      () => { if (live) setStatus({ status: 'ready' }) },
      (error: unknown) => { if (live) setStatus({ status: 'error', error }) }
    )
    return () => {
      live = false
      off()
    }
    // metaKey stands for meta and filter: new objects with the same content do not resubscribe.
  }, [client, topic, metaKey, delta])
  return status
}

/** The last `limit` publications of a topic (default 100), oldest first. */
export function useMessages (topic: string, options: { limit?: number, delta?: boolean } = {}): ReceivedMessage[] {
  const limit = options.limit ?? 100
  const [messages, setMessages] = useState<ReceivedMessage[]>([])
  useEffect(() => { setMessages([]) }, [topic])
  useSubscription(topic, (data, meta) => {
    setMessages((list) => [...list, { data, meta }].slice(-limit))
  }, { delta: options.delta })
  return messages
}

/** Who is present on a topic with presence on; kept up to date by join/leave and after each reconnection. */
export function usePresence (topic: string): PresenceInfo {
  const client = useRealtimeClient()
  const { state } = useConnectionState()
  const [members, setMembers] = useState<PresenceMember[]>([])
  // Presence events reach subscribers only: the hook holds a subscription of its own.
  const { status } = useSubscription(topic)
  useEffect(() => {
    if (status !== 'ready') return
    let live = true
    const byId = new Map<string, PresenceMember>()
    const show = (): void => { if (live) setMembers([...byId.values()]) }
    const load = (): void => {
      client.presence(topic as never).then(({ members }) => {
        byId.clear()
        for (const member of members) byId.set(member.connectionId, member)
        show()
      }, () => {}) // a failed look is retried with the next reconnection
    }
    const offs = [
      client.on('join', (e) => { if (e.topic === topic) { byId.set(e.member.connectionId, e.member); show() } }),
      client.on('leave', (e) => { if (e.topic === topic && byId.delete(e.member.connectionId)) show() }),
      // Resubscribed after a reconnection: who came and went meanwhile is unknown.
      client.on('recovered', (e) => { if (e.topic === topic) load() })
    ]
    load()
    return () => {
      live = false
      for (const off of offs) off()
    }
  }, [client, topic, status])
  return { members, stale: state !== 'open' }
}

/** A request function for one route, with the state of its last answer. */
export function useRequest (type: string): RequestStatus {
  const client = useRealtimeClient()
  const mounted = useRef(false)
  const [state, setState] = useState<{ inflight: number, data: unknown, error: unknown }>({ inflight: 0, data: undefined, error: undefined })
  useEffect(() => {
    mounted.current = true
    return () => { mounted.current = false }
  }, [])
  const request = useCallback((data: unknown, options?: RequestOptions): Promise<unknown> => {
    setState((s) => ({ ...s, inflight: s.inflight + 1 }))
    const settle = (next: { data: unknown, error: unknown }): void => {
      if (mounted.current) setState((s) => ({ inflight: s.inflight - 1, ...next }))
    }
    return client.request(type as never, data as never, options).then((reply) => {
      settle({ data: reply, error: undefined })
      return reply
    }, (error: unknown) => {
      settle({ data: undefined, error })
      throw error
    })
  }, [client, type])
  return { request, pending: state.inflight > 0, data: state.data, error: state.error }
}

/** Listens to an application event while mounted. */
export function useEvent (name: string, listener: (data: any) => void): void {
  const client = useRealtimeClient()
  const latest = useLatest(listener)
  useEffect(() => client.on(name as never, (data: unknown) => latest.current(data)), [client, name, latest])
}
