// Browser network awareness. A browser knows when it goes offline long before a
// heartbeat would tell (35 s by default), and a tab coming back from the background may
// hold a connection that died meanwhile. In Node the global object is no EventTarget,
// so nothing is listened to and nothing changes.
import type { EventTargetLike, NetworkTargets } from './types.js'

export interface NetworkHandlers {
  offline: () => void
  online: () => void
  /** The page became visible again. */
  visible: () => void
}

function isTarget (value: unknown): value is EventTargetLike {
  return value !== null && typeof value === 'object' &&
    typeof (value as EventTargetLike).addEventListener === 'function' &&
    typeof (value as EventTargetLike).removeEventListener === 'function'
}

/** The browser's `window` and `document`, where they exist. */
export function defaultTargets (): NetworkTargets | false {
  const g = globalThis as unknown as { document?: unknown }
  if (!isTarget(globalThis)) return false
  return { window: globalThis, document: isTarget(g.document) ? g.document as NetworkTargets['document'] : undefined }
}

/** Whether the browser believes it is online (true where it cannot tell). */
export function browserOnline (): boolean {
  const navigator = (globalThis as { navigator?: { onLine?: unknown } }).navigator
  return navigator?.onLine !== false
}

/** Listens to the targets; returns a function that stops listening. */
export function watchNetwork (targets: NetworkTargets, handlers: NetworkHandlers): () => void {
  const { window, document } = targets
  const onOffline = (): void => handlers.offline()
  const onOnline = (): void => handlers.online()
  const onVisibility = (): void => {
    if (document?.visibilityState === undefined || document.visibilityState === 'visible') handlers.visible()
  }
  if (isTarget(window)) {
    window.addEventListener('offline', onOffline)
    window.addEventListener('online', onOnline)
  }
  if (isTarget(document)) document.addEventListener('visibilitychange', onVisibility)
  return () => {
    if (isTarget(window)) {
      window.removeEventListener('offline', onOffline)
      window.removeEventListener('online', onOnline)
    }
    if (isTarget(document)) document.removeEventListener('visibilitychange', onVisibility)
  }
}

/** Listens while the client is active (not closed), so a closed client holds no listener on `window`. */
export class NetworkWatch {
  readonly #targets: NetworkTargets | false
  readonly #handlers: NetworkHandlers
  #unwatch: (() => void) | null = null
  /** False after `offline`, until `online`. */
  online: boolean

  constructor (targets: NetworkTargets | false, online: boolean, handlers: NetworkHandlers) {
    this.#targets = targets
    this.online = online
    this.#handlers = {
      offline: () => { this.online = false; handlers.offline() },
      online: () => { this.online = true; handlers.online() },
      visible: handlers.visible
    }
  }

  active (on: boolean): void {
    if (!on) {
      this.#unwatch?.()
      this.#unwatch = null
    } else if (this.#unwatch === null && this.#targets !== false) {
      this.#unwatch = watchNetwork(this.#targets, this.#handlers)
    }
  }
}
