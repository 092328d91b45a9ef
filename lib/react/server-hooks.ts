// Hooks for what the server decides: the subscriptions it made for this connection
// (`app.realtime.subscribe`) and the member counts of topics with count presence.
import { useEffect, useState } from 'react'
import { useRealtimeClient } from './provider.js'

/**
 * The topics the server subscribed this connection to, in the order it did (re-rendering
 * on each new one and each that ends). Listen to one with `useSubscription(topic)`, which
 * sends nothing for a topic the server holds.
 */
export function useServerSubscriptions (): string[] {
  const client = useRealtimeClient()
  const [topics, setTopics] = useState<string[]>([])
  useEffect(() => {
    const offs = [
      client.on('subscribed', (e) => setTopics((list) => list.includes(e.topic) ? list : [...list, e.topic])),
      client.on('unsubscribed', (e) => setTopics((list) => list.includes(e.topic) ? list.filter((t) => t !== e.topic) : list))
    ]
    return () => { for (const off of offs) off() }
  }, [client])
  return topics
}

/**
 * The member count of a topic with count presence, as the server last told it (undefined
 * before the first count). The topic must be subscribed (by the client or the server).
 */
export function usePresenceCount (topic: string): number | undefined {
  const client = useRealtimeClient()
  const [count, setCount] = useState<number | undefined>(undefined)
  useEffect(() => {
    setCount(undefined)
    return client.on('presence', (e) => { if (e.topic === topic) setCount(e.count) })
  }, [client, topic])
  return count
}
