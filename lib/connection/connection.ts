// One accepted WebSocket and everything the server knows about it. Kept small: at
// ten thousand idle connections every field here is paid for ten thousand times.
import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { Socket } from 'node:net'
import type { IncomingMessage } from 'node:http'
import type { WebSocket } from 'ws'
import { CloseCode, ReadyState, SUBPROTOCOL_MSGPACK, closeReason } from '../protocol/constants.js'
import { TokenBucket, type ErrorBudget, type RateLimitOptions } from './limits.js'
import type { MessageId } from '../wire/frames.js'
import { channels, dropTally, frameType } from '../protocol/diagnostics.js'
import { FrameRoute, frameRoute, sendShared, type SharedFrame } from '../wire/compress-once.js'
import { binaryFrame, textFrame, writeFrame } from '../wire/ws-frame.js'
import { packFrame } from '../wire/msgpack.js'
import { Subscriptions } from './subscriptions.js'
import type { WriteBatch } from './write-batch.js'
import type { Connection as PublicConnection, ConnectionInfo, ConnectionState, DisconnectInfo, RealtimeConnectionData } from './public.js'

export type { Subscription } from './subscriptions.js'

export type { ConnectionInfo, ConnectionState, DisconnectInfo, RealtimeConnectionData } from './public.js'

const TEXT = { binary: false } as const

/** A request the server accepted and has not answered yet: a close the server decides waits for its answer. */
export interface PendingRequest {
  readonly id: MessageId
  /**
   * Sent with an idempotency key to an idempotent route: when it outlives a close's wait
   * it is left unanswered, for the client to send again with its key (which runs it once).
   */
  readonly keyed?: boolean
}

/** Limits shared by every connection of one plugin instance. */
export interface ConnectionLimits {
  maxQueue: number
  /**
   * Ms a connection the server closed has to answer the close before it is terminated;
   * also the longest a close the server decides waits for the answers in flight.
   */
  closeGrace: number
  /** Answers the requests still in flight when that wait ends (answer.ts): they may have run. */
  unanswered: (connection: Connection<any>, requests: Iterable<PendingRequest>) => void
  rateLimit: RateLimitOptions
  /** Publications dropped for slow subscribers on volatile topics. */
  dropped: number
  /** Frames sent on every connection: replies, events and fan-out alike. */
  sent: number
  /** Coalesces each socket's writes (the end of the iteration, or `writeDelay` ms). */
  batch: WriteBatch
}

/**
 * Corks an upgrading socket until the end of this tick (ws's 'headers' event, just
 * before it writes the 101 response): the `welcome` sent when the connection is
 * accepted, in the same tick, leaves with the 101 in one write instead of two.
 */
export function corkHandshake (_headers: string[], request: IncomingMessage): void {
  // An injected upgrade (@fastify/websocket's injectWS) has no net.Socket to cork.
  const socket = request.socket as Socket | undefined
  if (socket === undefined || typeof socket.cork !== 'function') return
  socket.cork()
  process.nextTick(uncorkSocket, socket)
}

function uncorkSocket (socket: Socket): void {
  socket.uncork()
}

/**
 * The connection as the plugin's own modules hold it. The application is given the
 * `Connection` of public.ts, which this implements: the rest here is internal.
 */
export class Connection<U = unknown> implements PublicConnection<U> {
  readonly id: string
  readonly socket: WebSocket
  readonly request: FastifyRequest
  readonly connectedAt: number
  user: U | undefined
  userId: string | undefined
  /** The client's address (`request.ip`), kept to count connections per address. */
  ip = ''
  state: ConnectionState
  lastSeen: number
  /** When the server last pinged; 0 while the connection has shown life since. */
  pingedAt = 0
  /** The heartbeat's slot of its next look at this connection; -1 when it does not watch it (heartbeat.ts). */
  heartbeatSlot = -1
  messagesIn = 0
  messagesOut = 0
  /** The write window (write-batch.ts) this socket was last corked in. */
  #heldIn = 0
  /** Keyed by topic, read like a Map (subscriptions.ts). */
  readonly subscriptions = new Subscriptions()
  /**
   * Frames waiting while an auth, subscribe or unsubscribe of this connection is in
   * flight (null when none is): they run in order once it completes.
   */
  backlog: unknown[] | null = null
  authTimer: NodeJS.Timeout | undefined
  /** Closes the connection with 4005 when its credentials expire, unless `auth` refreshes them. */
  expiryTimer: NodeJS.Timeout | undefined
  /**
   * Ends the wait of a server-decided close for the answers in flight; then, once the close
   * frame is out, terminates the socket if the peer does not answer it in closeGrace.
   */
  closeTimer: NodeJS.Timeout | undefined
  readonly bucket: TokenBucket
  /** Made on the first protocol error: most connections never make one. */
  budget: ErrorBudget | undefined
  /**
   * How the connection ends: the code the server closed it with, or else what the
   * socket reported (what onDisconnect is told). Set on the first close.
   */
  closeInfo: DisconnectInfo | undefined
  /** Requests accepted and not yet answered; made on the first. */
  #pending: Set<PendingRequest> | undefined
  /** The close the server decided while requests were in flight: sent once they are answered. */
  #closing: DisconnectInfo | undefined
  /** True while the requests left at the end of that wait are being answered. */
  #flushing = false
  /** How shared frames reach this socket (compress-once.ts `frameRoute`), fixed at open. */
  readonly #route: number
  /** The connection negotiated `realtime.v1.msgpack`: its frames are binary MessagePack both ways. */
  readonly msgpack: boolean
  #log: FastifyBaseLogger | undefined
  #data: RealtimeConnectionData | undefined

  readonly #limits: ConnectionLimits

  constructor (socket: WebSocket, request: FastifyRequest, state: ConnectionState, limits: ConnectionLimits) {
    this.#limits = limits
    this.id = randomUUID()
    this.socket = socket
    this.request = request
    this.state = state
    this.connectedAt = this.lastSeen = Date.now()
    this.bucket = new TokenBucket(limits.rateLimit, this.connectedAt)
    this.#route = frameRoute(socket)
    this.msgpack = socket.protocol === SUBPROTOCOL_MSGPACK
  }

  /** A child of the request's logger carrying the connection id, made on first use. */
  get log (): FastifyBaseLogger {
    this.#log ??= this.request.log.child({ connectionId: this.id })
    return this.#log
  }

  /**
   * The application's state for this connection: set it in onConnect or a handler,
   * read it anywhere the connection is. Made on first use, so connections that never
   * use it cost nothing.
   */
  get data (): RealtimeConnectionData {
    // Empty until the app fills it: the app's own declaration says what it will hold.
    this.#data ??= {} as RealtimeConnectionData
    return this.#data
  }

  set data (value: RealtimeConnectionData) {
    this.#data = value
  }

  /** Bytes queued in the socket and not yet written to the network. */
  get bufferedAmount (): number {
    return this.socket.bufferedAmount
  }

  get isOpen (): boolean {
    return this.state === 'open' || this.state === 'authenticating'
  }

  /**
   * Sends one frame, already serialised. A Buffer is framed as text without copying.
   * A peer that does not read is closed with 4008 once its queue would pass maxQueue:
   * nothing more is queued for it, so one slow phone holds at most maxQueue until it
   * reads its close frame or ws's close timeout cuts it off. On a volatile topic its
   * message is dropped and counted instead.
   */
  send (frame: string | Buffer, volatile = false): boolean {
    if (!this.#admit(frame.length, volatile)) return false
    // Replies, errors and events (strings) are observed one by one; fan-out once per publication (hub.ts).
    if (typeof frame === 'string' && channels.messageOut.hasSubscribers) channels.messageOut.publish({ connection: this, type: frameType(frame) })
    // The frame was built as JSON text (frames.ts): packed from it, so both encodings say the same.
    if (this.msgpack) writeFrame(this.socket, binaryFrame(packFrame(frame.toString())), this.#route === FrameRoute.Plain)
    else if (typeof frame !== 'string') this.socket.send(frame, TEXT)
    // Without compression, a frame of this connection alone goes the way shared frames
    // do: header and payload built as one Buffer and written at once when ws holds
    // nothing ahead of it (ws-frame.ts), instead of ws framing it into two.
    else if (this.#route === FrameRoute.Plain) writeFrame(this.socket, textFrame(frame), true)
    else this.socket.send(frame)
    return true
  }

  /**
   * Sends a frame built once for many connections (a publication, a presence change,
   * a broadcast): the same Buffer is written to this socket when ws holds nothing
   * ahead of it, else ws.send() queues it in order (compress-once.ts). Same limits as send().
   */
  sendShared (frame: SharedFrame, volatile = false): boolean {
    if (!this.#admit(frame.frame(this.msgpack).length, volatile)) return false
    sendShared(this.socket, frame, this.#route, this.msgpack)
    return true
  }

  /**
   * The checks and bookkeeping of every send: open, under maxQueue (else 4008, or
   * dropped when volatile), counted, and later frames of this iteration corked.
   */
  #admit (length: number, volatile: boolean): boolean {
    if (this.socket.readyState !== ReadyState.OPEN) return false
    if (this.socket.bufferedAmount + length > this.#limits.maxQueue) {
      if (volatile) {
        this.#limits.dropped++
        dropTally.count++
        return false
      }
      this.log.warn({ bufferedAmount: this.socket.bufferedAmount }, 'slow consumer: send queue over its limit')
      this.close(CloseCode.SLOW_CONSUMER, 'slow consumer')
      return false
    }
    this.messagesOut++
    this.#limits.sent++
    // Frames to this socket in one window (the rest of this event-loop iteration, or
    // writeDelay ms) leave in one write: the first corks it, the window's end uncorks it.
    const batch = this.#limits.batch
    if (this.#heldIn !== batch.window) {
      const raw = (this.socket as unknown as { _socket?: Socket })._socket
      if (raw !== undefined) {
        this.#heldIn = batch.window
        batch.hold(raw)
      }
    }
    return true
  }

  /** A request is accepted: a close the server decides from now on waits for its answer. */
  accepted (request: PendingRequest): void {
    (this.#pending ??= new Set()).add(request)
  }

  /** Its answer is out (or it needs none): a close that waited for it goes on when it was the last. */
  settled (request: PendingRequest): void {
    const pending = this.#pending
    if (pending === undefined || !pending.delete(request)) return
    if (pending.size === 0 && this.#closing !== undefined && !this.#flushing) this.#closeNow()
  }

  /**
   * Closes the connection from the server's side. From now on no frame of the peer is
   * run; the requests it has in flight are answered first (waiting `wait` ms at most,
   * closeGrace by default; those still running then are answered INTERNAL, they may have
   * run), and only then the close frame goes out, so a request the client sees unanswered
   * after such a close was not run. Not on 4008 (its queue is full: nothing more can reach
   * it) or when the socket is already going.
   */
  close (code: number, reason = '', wait = this.#limits.closeGrace): void {
    if (this.state === 'closed') return
    if (this.state === 'closing') {
      // An answer sent while the close waits overflowed the send queue: what is left
      // unanswered may have run, and 4008 is the code that says so.
      if (code === CloseCode.SLOW_CONSUMER && this.#closing !== undefined) {
        this.closeInfo = this.#closing = { code, reason: closeReason(reason) }
        if (!this.#flushing) this.#closeNow()
      }
      return
    }
    this.state = 'closing'
    const info = { code, reason: closeReason(reason) }
    // The server's reason to close, not the 1006 a peer that never answers leaves.
    this.closeInfo ??= info
    this.#closing = info
    if ((this.#pending?.size ?? 0) > 0 && wait > 0 && code !== CloseCode.SLOW_CONSUMER && this.socket.readyState === ReadyState.OPEN) {
      this.closeTimer = setTimeout(() => this.#closeNow(), wait).unref()
      return
    }
    this.#closeNow()
  }

  /** Answers what is still in flight (as INTERNAL, unless the queue is full), then sends the close frame. */
  #closeNow (): void {
    clearTimeout(this.closeTimer)
    const pending = this.#pending
    if (pending !== undefined && pending.size > 0 && this.#closing?.code !== CloseCode.SLOW_CONSUMER && this.state === 'closing') {
      this.#flushing = true
      this.#limits.unanswered(this, pending)
      this.#flushing = false
    }
    this.#pending = undefined
    const closing = this.#closing
    this.#closing = undefined
    if (closing === undefined || this.state !== 'closing') return
    this.socket.close(closing.code, closing.reason)
    // ws waits 30 s for the peer's close frame; a slow consumer closed with 4008 never
    // reads it, and would stay in the registry and in presence all that time.
    this.closeTimer = setTimeout(() => this.socket.terminate(), this.#limits.closeGrace).unref()
  }

  terminate (): void {
    this.state = 'closing'
    this.#closing = undefined
    clearTimeout(this.closeTimer)
    this.socket.terminate()
  }

  /** True once a subscription is confirmed (authorized and replied to), not while it is pending. */
  isSubscribed (topic: string): boolean {
    const subscription = this.subscriptions.get(topic)
    return subscription !== undefined && subscription.held === null
  }

  /** A plain summary for logs, the registry API and debugging. */
  toJSON (): ConnectionInfo {
    return {
      id: this.id,
      userId: this.userId,
      state: this.state,
      connectedAt: this.connectedAt,
      lastSeen: this.lastSeen,
      subscriptions: [...this.subscriptions.keys()],
      messagesIn: this.messagesIn,
      messagesOut: this.messagesOut,
      bufferedAmount: this.bufferedAmount
    }
  }
}
