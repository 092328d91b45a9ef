// A minimal typed event emitter that runs in browsers and Node alike. A listener
// that throws does not stop the others; its error is handed to `onListenerError`.

import { ClientUsageError } from './errors.js'

type Listener = (...args: any[]) => void

export class Emitter {
  readonly #listeners = new Map<string, Set<Listener>>()
  readonly #onListenerError: (err: unknown, event: string) => void

  constructor (onListenerError: (err: unknown, event: string) => void) {
    this.#onListenerError = onListenerError
  }

  on (event: string, listener: Listener): () => void {
    if (typeof listener !== 'function') throw new ClientUsageError('a listener must be a function')
    let set = this.#listeners.get(event)
    if (set === undefined) this.#listeners.set(event, set = new Set())
    // Wrapped so that the same function added twice is two listeners, each removable once.
    const entry: Listener = (...args) => listener(...args)
    set.add(entry)
    return () => {
      const current = this.#listeners.get(event)
      if (current === undefined || !current.delete(entry)) return
      if (current.size === 0) this.#listeners.delete(event)
    }
  }

  has (event: string): boolean {
    return this.#listeners.has(event)
  }

  emit (event: string, ...args: unknown[]): void {
    const set = this.#listeners.get(event)
    if (set === undefined) return
    for (const listener of [...set]) {
      try {
        listener(...args)
      } catch (err) {
        this.#onListenerError(err, event)
      }
    }
  }
}
