// Coalesces a socket's writes: the frames sent to one socket within a window leave in one
// write (one system call, and as few TCP segments as their bytes need) instead of one
// each. The window is the rest of the event-loop iteration (the default: a burst of
// replies, events and publications to one socket, as a flat-out publisher makes), or
// `writeDelay` ms when that option is set (frames are then coalesced across iterations,
// at the cost of up to that much latency, as Centrifugo's write batching does).
//
// The first frame of a window corks the socket; the window's end uncorks every socket
// corked in it, at once, in one callback. Corking changes no order: every write, ours and
// ws's own, goes to the same corked net.Socket, and bufferedAmount counts what waits there,
// so the send-queue limit (maxQueue) sees it.
import type { Socket } from 'node:net'

export class WriteBatch {
  /** Ms a window lasts; 0: until the end of the event-loop iteration. */
  readonly delay: number
  /** The current window; a connection corks its socket once per window. */
  window = 1
  readonly #held: Socket[] = []
  #scheduled = false
  readonly #flush = (): void => {
    this.#scheduled = false
    this.window++
    // Swapped out first: an uncork that writes may run code that sends again (a new window).
    const held = this.#held.splice(0, this.#held.length)
    for (const socket of held) socket.uncork()
  }

  constructor (delay = 0) {
    this.delay = delay
  }

  /** Corks a socket until the window ends. Once per window per socket: the caller keeps the window it held in. */
  hold (socket: Socket): void {
    socket.cork()
    this.#held.push(socket)
    if (this.#scheduled) return
    this.#scheduled = true
    if (this.delay === 0) setImmediate(this.#flush)
    else setTimeout(this.#flush, this.delay).unref()
  }

  /** Writes what every held socket holds now (a shutdown does not wait for the window). */
  flush (): void {
    if (this.#held.length > 0) this.#flush()
  }
}
