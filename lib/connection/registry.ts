// The registry of accepted connections, by id and by user. The application reads it
// as the `Registry` of public.ts (iterable, size, get, byUser); the lifecycle adds and
// deletes, and stats() reads the total.
import type { Connection } from './connection.js'
import type { Registry as PublicRegistry } from './public.js'

export class Registry<U = unknown> implements PublicRegistry<U> {
  readonly #byId = new Map<string, Connection<U>>()
  readonly #byUser = new Map<string, Set<Connection<U>>>()
  /** Connections accepted since start, closed ones included. */
  total = 0

  add (connection: Connection<U>): void {
    this.#byId.set(connection.id, connection)
    this.total++
    const userId = connection.userId
    if (userId === undefined) return
    let set = this.#byUser.get(userId)
    if (set === undefined) this.#byUser.set(userId, set = new Set())
    set.add(connection)
  }

  delete (connection: Connection<U>): boolean {
    if (!this.#byId.delete(connection.id)) return false
    const userId = connection.userId
    if (userId !== undefined) {
      const set = this.#byUser.get(userId)
      if (set !== undefined) {
        set.delete(connection)
        if (set.size === 0) this.#byUser.delete(userId)
      }
    }
    return true
  }

  get size (): number {
    return this.#byId.size
  }

  get (id: string): Connection<U> | undefined {
    return this.#byId.get(id)
  }

  /** Every open connection of a user (one per tab or device). */
  byUser (userId: string): Connection<U>[] {
    const set = this.#byUser.get(userId)
    return set === undefined ? [] : [...set]
  }

  [Symbol.iterator] (): Iterator<Connection<U>> {
    return this.#byId.values()
  }
}
