// The PostgreSQL broker's LISTEN connection: one per node, on the broker's one channel
// (postgres-sql.ts). It hands every notification on in the order PostgreSQL sent it
// (commit order), reading a pointer's frame from the payloads table first and holding
// what came after it meanwhile. When the connection drops it says so at once (the
// feeds stop trusting live delivery), reconnects with a growing delay, LISTENs again
// and says so (the feeds then catch up from the tables: what was notified while no
// connection listened is never delivered by PostgreSQL, so it is read back).
import type { ClientBase, Notification } from 'pg'

/** A connection that LISTENs: the broker's own Client, or one held from the app's pool. */
export interface ListenConnection {
  client: ClientBase
  /** Gives it back: ends our own client, destroys a pool's (it may be broken). */
  release: () => void
}

export interface ListenHost {
  /** The channel, quoted for LISTEN. */
  readonly channel: string
  connect: () => Promise<ListenConnection>
  /** A frame, in order. */
  frame: (payload: string) => void
  /** The frame a pointer names, or null when it is gone. */
  resolve: (id: string) => Promise<string | null>
  lost: () => void
  restored: () => void
  warn: (obj: object, msg: string) => void
}

const RETRY_MIN = 100
const RETRY_MAX = 5000

export class NotificationFeed {
  readonly #host: ListenHost
  #connection: ListenConnection | null = null
  #ready = false
  #closed = false
  #timer: NodeJS.Timeout | null = null
  #attempt = 0
  readonly #queue: string[] = []
  #draining = false

  constructor (host: ListenHost) {
    this.#host = host
  }

  /** True while LISTEN is in force. */
  get ready (): boolean {
    return this.#ready
  }

  /** Connects and LISTENs; rejects when it cannot (the broker's start fails with it). */
  async start (): Promise<void> {
    await this.#open()
  }

  async #open (): Promise<void> {
    const connection = await this.#host.connect()
    if (this.#closed) {
      connection.release()
      return
    }
    const client = connection.client
    const onNotification = (n: Notification) => this.#receive(n.payload ?? '')
    const onDrop = (err?: Error) => this.#drop(connection, err)
    client.on('notification', onNotification)
    client.on('error', onDrop)
    client.on('end', onDrop)
    try {
      await client.query(`LISTEN ${this.#host.channel}`)
    } catch (err) {
      client.off('notification', onNotification)
      connection.release()
      throw err
    }
    this.#connection = connection
    this.#ready = true
    this.#attempt = 0
  }

  #drop (connection: ListenConnection, err?: Error): void {
    if (this.#connection !== connection) return
    this.#connection = null
    this.#ready = false
    try {
      connection.release()
    } catch {}
    if (this.#closed) return
    this.#host.warn({ err }, 'postgres LISTEN connection lost; reconnecting')
    this.#host.lost()
    this.#schedule()
  }

  #schedule (): void {
    if (this.#closed || this.#timer !== null) return
    const delay = Math.min(RETRY_MAX, RETRY_MIN * 2 ** this.#attempt++) + Math.floor(Math.random() * 50)
    this.#timer = setTimeout(() => {
      this.#timer = null
      this.#open().then(() => {
        if (this.#ready) this.#host.restored()
      }, (err: unknown) => {
        this.#host.warn({ err }, 'postgres LISTEN reconnection failed; trying again')
        this.#schedule()
      })
    }, delay)
    this.#timer.unref()
  }

  #receive (payload: string): void {
    this.#queue.push(payload)
    if (!this.#draining) this.#drain().catch((err: unknown) => this.#host.warn({ err }, 'a notification could not be handed on'))
  }

  /** Hands frames on in order; a pointer is read before anything behind it. */
  async #drain (): Promise<void> {
    this.#draining = true
    try {
      while (this.#queue.length > 0) {
        const payload = this.#queue[0]
        if (payload[0] === 'p') {
          let frame: string | null = null
          try {
            frame = await this.#host.resolve(payload.slice(1))
          } catch (err) {
            this.#host.warn({ err }, 'could not read a large notification\'s payload')
          }
          // Gone or unreadable: the topic's next publication shows the gap, which the feeds fill from history.
          if (frame === null) this.#host.warn({ id: payload.slice(1) }, 'a large notification\'s payload is gone')
          this.#queue.shift()
          if (frame !== null && !this.#closed) this.#host.frame(frame)
        } else {
          this.#queue.shift()
          if (!this.#closed) this.#host.frame(payload)
        }
      }
    } finally {
      this.#draining = false
    }
  }

  /** Stops listening; `final` false lets start() be called again (a start that failed). */
  close (final = true): void {
    this.#closed = final
    this.#ready = false
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    this.#queue.length = 0
    const connection = this.#connection
    this.#connection = null
    if (connection !== null) {
      try {
        connection.release()
      } catch {}
    }
  }
}
