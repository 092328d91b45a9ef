// Lifecycle hooks (`app.realtime.addHook`), in the manner of Fastify's: functions run
// in the order added, each awaited before the next. Hooks that may refuse (onConnect,
// onSubscribe, preHandler) stop at the first that throws and the caller answers with
// that error; hooks that only observe (onDisconnect, onUnsubscribe, onHandlerError)
// all run, and one that throws is logged without keeping the others from running.
import type { FastifyBaseLogger } from 'fastify'
import type { Connection, DisconnectInfo } from '../connection/public.js'
import { errorCodes } from '../protocol/errors.js'
import type { MessageContext } from './router.js'

export type { DisconnectInfo }

export interface SubscribeInfo {
  topic: string
  params: Record<string, unknown>
  /** Present when the client asked to recover (`since`): whether every missed publication follows. */
  recovered?: boolean
  /** Present when the server made the subscription (`app.realtime.subscribe`): `authorize` was not asked. */
  server?: true
}

/**
 * Why a confirmed subscription ended: the client unsubscribed, the server took it away
 * (`app.realtime.unsubscribe`), the connection closed, or a gap (2500) ended it.
 */
export type UnsubscribeReason = 'client' | 'server' | 'disconnect' | 'gap'

export interface UnsubscribeInfo {
  topic: string
  params: Record<string, unknown>
  reason: UnsubscribeReason
}

type Awaitable = void | Promise<void>

export interface RealtimeHooks<U = unknown> {
  /** After authentication, before `welcome`. Throw to refuse: the connection closes with 4503 (or the error's closeCode). */
  onConnect: (connection: Connection<U>) => Awaitable
  /** Once per connection that passed onConnect, after it left all its topics, whatever closed it. */
  onDisconnect: (connection: Connection<U>, info: DisconnectInfo) => Awaitable
  /** After `authorize` allowed a subscription, before its reply. Throw to refuse (FORBIDDEN unless a RealtimeError). */
  onSubscribe: (connection: Connection<U>, info: SubscribeInfo) => Awaitable
  /** Once per confirmed subscription that ends. */
  onUnsubscribe: (connection: Connection<U>, info: UnsubscribeInfo) => Awaitable
  /** Before a message route's handler, after validation. Throw to answer with that error instead. */
  preHandler: (data: unknown, context: MessageContext<any, any, U>) => Awaitable
  /** A handler (or preHandler) failed with something other than a declared error; the client got INTERNAL. */
  onHandlerError: (error: unknown, context: MessageContext<any, any, U>) => Awaitable
}

export type HookName = keyof RealtimeHooks

const NAMES: ReadonlySet<string> = new Set<HookName>(['onConnect', 'onDisconnect', 'onSubscribe', 'onUnsubscribe', 'preHandler', 'onHandlerError'])

export class Hooks<U = unknown> {
  readonly onConnect: Array<RealtimeHooks<U>['onConnect']> = []
  readonly onDisconnect: Array<RealtimeHooks<U>['onDisconnect']> = []
  readonly onSubscribe: Array<RealtimeHooks<U>['onSubscribe']> = []
  readonly onUnsubscribe: Array<RealtimeHooks<U>['onUnsubscribe']> = []
  readonly preHandler: Array<RealtimeHooks<U>['preHandler']> = []
  readonly onHandlerError: Array<RealtimeHooks<U>['onHandlerError']> = []

  add<K extends HookName>(name: K, fn: RealtimeHooks<U>[K]): void {
    if (typeof name !== 'string' || !NAMES.has(name)) throw new errorCodes.FST_REALTIME_HOOK_INVALID_TYPE(String(name))
    if (typeof fn !== 'function') throw new errorCodes.FST_REALTIME_HOOK_INVALID_HANDLER(name, Object.prototype.toString.call(fn))
    ;(this[name] as Array<RealtimeHooks<U>[K]>).push(fn)
  }
}

/** Runs hooks that may refuse, in order; rejects with the first error (the rest do not run). */
export async function runHooks<A extends unknown[]> (hooks: ReadonlyArray<(...args: A) => Awaitable>, ...args: A): Promise<void> {
  for (const hook of hooks) await hook(...args)
}

/** Runs hooks that only observe, in order; each failure is logged and the next still runs. */
export async function runObservers<A extends unknown[]> (hooks: ReadonlyArray<(...args: A) => Awaitable>, log: FastifyBaseLogger, name: HookName, ...args: A): Promise<void> {
  for (const hook of hooks) {
    try {
      await hook(...args)
    } catch (err) {
      log.error({ err, hook: name }, `${name} hook failed`)
    }
  }
}
