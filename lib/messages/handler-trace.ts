// Route handlers inside the tracing channel `fastify-realtime:handler` (README,
// "Diagnostics channels"): APMs and our own metrics time and attribute each handler
// without the route runner knowing about any of them.
import dc from 'node:diagnostics_channel'
import type { Connection } from '../connection/public.js'
import { CHANNEL_PREFIX } from '../protocol/diagnostics.js'

/** start / end / asyncStart / asyncEnd / error around each route handler, with `{ route, connectionId, connection }`. */
export const handlerChannel = dc.tracingChannel<HandlerTrace>(`${CHANNEL_PREFIX}:handler`)

export interface HandlerTrace {
  route: string
  connectionId: string
  connection: Connection<any>
  /** Set by the tracing channel: the handler's return value, or what it threw or rejected with. */
  result?: unknown
  error?: unknown
}

/**
 * When each traced handler started (`performance.now()`), set by the first observer that
 * times handlers (metrics, dashboard) so that both time it from the same moment. Kept
 * beside the trace, not in it: the trace is the documented payload APMs are given.
 */
const started = new WeakMap<HandlerTrace, number>()

/** Marks the handler's start, unless another observer already has. */
export function markStart (trace: HandlerTrace): void {
  if (!started.has(trace)) started.set(trace, performance.now())
}

/** Milliseconds since the handler started, or undefined when no observer marked its start. */
export function sinceStart (trace: HandlerTrace): number | undefined {
  const start = started.get(trace)
  return start === undefined ? undefined : performance.now() - start
}

export function handlerTraced (): boolean {
  const c = handlerChannel
  return c.start.hasSubscribers || c.end.hasSubscribers || c.asyncStart.hasSubscribers || c.asyncEnd.hasSubscribers || c.error.hasSubscribers
}

/**
 * Runs a route handler inside the tracing channel: start and end around the call,
 * error when it throws; asyncStart, asyncEnd (and error) when a promise it returned
 * settles. Returns what the handler returned (a promise is followed, not replaced
 * by one that would reject unobserved).
 */
export function traceHandler<C> (handler: (data: unknown, context: C) => unknown, data: unknown, context: C, trace: HandlerTrace): unknown {
  const result = handlerChannel.traceSync(handler, trace, undefined, data, context)
  if (result !== null && typeof result === 'object' && typeof (result as Promise<unknown>).then === 'function') {
    return (result as Promise<unknown>).then((value) => {
      trace.result = value
      handlerChannel.asyncStart.publish(trace)
      handlerChannel.asyncEnd.publish(trace)
      return value
    }, (err: unknown) => {
      trace.error = err
      handlerChannel.error.publish(trace)
      handlerChannel.asyncStart.publish(trace)
      handlerChannel.asyncEnd.publish(trace)
      throw err
    })
  }
  return result
}
