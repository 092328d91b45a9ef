// The provider: one client for a React tree, kept in a context, as an app keeps its
// socket. Either the app hands it a client it owns (and closes), or the provider makes
// one from options and owns it: it connects when mounted and closes when unmounted, so
// an unmounted tree leaves no socket, timer or window listener behind.
import { createContext, createElement, useContext, useEffect, useState, type ReactNode } from 'react'
import { createClient, type ClientOptions, type Contract, type RealtimeClient } from '../client/index.js'

export const RealtimeContext = createContext<RealtimeClient<any> | null>(null)

export type RealtimeProviderProps<C extends Contract = Contract> =
  | { client: RealtimeClient<C>, options?: never, children?: ReactNode }
  | { options: ClientOptions<C>, client?: never, children?: ReactNode }

export function RealtimeProvider<C extends Contract = Contract> (props: RealtimeProviderProps<C>): ReactNode {
  const given = props.client
  // Created once, not connected during render: a render may be thrown away (StrictMode,
  // Suspense), and only a mounted provider may open a socket.
  const [own] = useState<RealtimeClient<C> | null>(() => given === undefined ? createClient<C>({ ...props.options as ClientOptions<C>, autoConnect: false }) : null)
  const client = given ?? own as RealtimeClient<C>
  useEffect(() => {
    if (own === null) return
    own.connect()
    return () => { own.close().catch(() => {}) }
  }, [own])
  return createElement(RealtimeContext.Provider, { value: client }, props.children)
}

/** The client of the nearest provider; throws when there is none. */
export function useRealtimeClient<C extends Contract = Contract> (): RealtimeClient<C> {
  const client = useContext(RealtimeContext)
  if (client === null) throw new Error('fastify-realtime/react: no <RealtimeProvider> above this component')
  return client as RealtimeClient<C>
}
