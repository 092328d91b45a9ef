// Small helpers shared by the client's modules. Nothing here is Node-only.
import { ClientUsageError, RealtimeClientError, type AnyRealtimeClientError, type ClientErrorCode } from './errors.js'
import type { WebSocketLike } from './types.js'

/** The socket as the connection drives it: its handlers set as properties, as browsers allow. */
export interface InternalSocket extends WebSocketLike {
  onopen: ((event: unknown) => void) | null
  onmessage: ((event: { data: unknown }) => void) | null
  onclose: ((event: { code: number, reason: string }) => void) | null
  onerror: ((event: unknown) => void) | null
  /** 'arraybuffer': binary messages (MessagePack) as ArrayBuffers, not browsers' default Blobs. */
  binaryType?: string
  terminate?: () => void
}

export type Timer = ReturnType<typeof setTimeout>

/** Node's timers keep the process alive unless unref'd; browsers' timers are numbers. */
export function unref (timer: unknown): void {
  const t = timer as { unref?: () => void } | null
  if (t !== null && typeof t === 'object' && typeof t.unref === 'function') t.unref()
}

export function ref (timer: unknown): void {
  const t = timer as { ref?: () => void } | null
  if (t !== null && typeof t === 'object' && typeof t.ref === 'function') t.ref()
}

export function positiveNumber (label: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
    throw new ClientUsageError(`${label} must be a positive number`)
  }
  return value
}

export function resolveUrl (url: unknown): string {
  if (typeof url !== 'string' || url.length === 0) throw new ClientUsageError('createClient: url is required')
  const location = (globalThis as { location?: { protocol: string, host: string } }).location
  if (url.startsWith('/') && location !== undefined) {
    return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}${url}`
  }
  return url
}

export function clientError (code: ClientErrorCode, message: string, extra: { details?: unknown, closeCode?: number, maybeRan?: boolean } = {}): AnyRealtimeClientError {
  // A request that timed out was written: it may have run. One that waited in the queue was not.
  const maybeRan = extra.maybeRan ?? (code === 'TIMEOUT' ? true : code === 'QUEUE_FULL' || code === 'QUEUE_TIMEOUT' ? false : undefined)
  return new RealtimeClientError(code, message, { ...extra, maybeRan, temporary: code !== 'CLOSED' })
}

interface ClosableSocket {
  onclose: ((event: any) => void) | null
  onerror: ((event: unknown) => void) | null
  onmessage: ((event: any) => void) | null
  onopen: ((event: unknown) => void) | null
  close: (code?: number, reason?: string) => void
  terminate?: () => void
}

/** Closes a socket and resolves when it is closed; a peer that does not answer the close handshake is not waited for long. */
export function closeSocket (socket: ClosableSocket, code: number, reason: string, later: (fn: () => void, ms: number) => Timer): Promise<void> {
  return new Promise((resolve) => {
    const timer = later(() => {
      socket.terminate?.()
      resolve()
    }, 1000)
    const done = (): void => {
      clearTimeout(timer)
      resolve()
    }
    socket.onclose = done
    socket.onerror = () => {}
    socket.onmessage = null
    socket.onopen = null
    try {
      socket.close(code, reason)
    } catch {
      socket.terminate?.()
      done()
    }
  })
}
