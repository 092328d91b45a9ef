// Load-generator clients: one interface over the three wire protocols measured.
//
//  - 'realtime': the plugin's protocol (subprotocol realtime.v1, waits for `welcome`)
//  - 'raw':      the hand-written servers' protocol (same frames, no welcome)
//  - 'socketio': socket.io-client, WebSocket transport only
//
// The two ws-based kinds share one implementation on the `ws` package. Publications
// are recognised and their timestamp read without a full JSON.parse, so the client
// side spends as little as possible per delivery; replies are parsed normally.

import { WebSocket } from 'ws'
import { io, type Socket } from 'socket.io-client'

export type ClientKind = 'realtime' | 'raw' | 'socketio'

export interface EchoData { t: number, text: string }

export interface BenchClient {
  /** Resolves once the connection is usable (open, welcomed or connected). */
  readonly ready: Promise<void>
  /** Resolves when the connection is gone, whoever closed it. */
  readonly closed: Promise<void>
  /** Called for every publication with its embedded send time and sequence number. */
  onPublication: ((t: number, seq: number) => void) | null
  subscribe: (topic: string) => Promise<void>
  /** Sends an `echo` request; `done` gets true for a reply, false for an error. */
  echo: (data: EchoData, done: (ok: boolean) => void) => void
  close: () => void
  terminate: () => void
}

/**
 * `deflate` offers permessage-deflate (no context takeover either way, as the
 * servers configured for it ask), as a browser offers it; Socket.IO is never offered it.
 */
export function createClient (kind: ClientKind, url: string, deflate = false, localAddress?: string): BenchClient {
  return kind === 'socketio' ? new SocketIoClient(url, localAddress) : new WsClient(url, kind === 'realtime', deflate, localAddress)
}

/**
 * A loopback source address of its own for client `index` (127.1.0.1 onwards, never a
 * .0 or .255), so that tens of thousands of connections to one port do not share the
 * ephemeral ports of a single source address, as clients on many machines would not.
 */
export function loopbackSource (index: number): string {
  return `127.${1 + Math.floor(index / 62_500)}.${Math.floor(index / 250) % 250}.${1 + index % 250}`
}

const OFFER_DEFLATE = { serverNoContextTakeover: true, clientNoContextTakeover: true } as const

const TYPE_AT = 9 // {"type":" is 9 bytes: the next byte is the first letter of the type
const M = 0x6d // m(essage)
const W = 0x77 // w(elcome)
const COMMA = 0x2c
const DATA_T = Buffer.from('{"t":')
const SEQ_KEY_LENGTH = ',"seq":'.length

class WsClient implements BenchClient {
  readonly ready: Promise<void>
  readonly closed: Promise<void>
  onPublication: ((t: number, seq: number) => void) | null = null
  readonly #ws: WebSocket
  readonly #pending = new Map<number, (ok: boolean) => void>()
  #nextId = 1

  constructor (url: string, welcome: boolean, deflate: boolean, localAddress?: string) {
    this.#ws = new WebSocket(url, welcome ? ['realtime.v1'] : [], { perMessageDeflate: deflate ? OFFER_DEFLATE : false, handshakeTimeout: 15_000, ...(localAddress === undefined ? {} : { localAddress }) })
    let welcomed: () => void = () => {}
    this.ready = new Promise<void>((resolve, reject) => {
      welcomed = resolve
      this.#ws.once('error', reject)
      this.#ws.once('close', () => reject(new Error('closed before ready')))
      if (!welcome) this.#ws.once('open', () => resolve())
    })
    this.ready.catch(() => {})
    this.closed = new Promise<void>((resolve) => this.#ws.once('close', () => resolve()))
    this.#ws.on('error', () => {})
    this.#ws.on('message', (raw: Buffer) => {
      const kind = raw[TYPE_AT]
      if (kind === M) {
        const onPublication = this.onPublication
        if (onPublication !== null) this.#publication(raw, onPublication)
        return
      }
      if (kind === W) {
        welcomed()
        return
      }
      this.#answer(raw)
    })
  }

  #publication (raw: Buffer, onPublication: (t: number, seq: number) => void): void {
    const at = raw.indexOf(DATA_T)
    if (at >= 0) {
      const tStart = at + DATA_T.length
      const tEnd = raw.indexOf(COMMA, tStart)
      const seqStart = tEnd + SEQ_KEY_LENGTH
      const seqEnd = raw.indexOf(COMMA, seqStart)
      const t = Number(raw.toString('latin1', tStart, tEnd))
      const seq = Number(raw.toString('latin1', seqStart, seqEnd))
      if (tEnd > 0 && seqEnd > 0 && Number.isFinite(t) && Number.isInteger(seq)) {
        onPublication(t, seq)
        return
      }
    }
    // Not in the expected shape: fall back to parsing it properly.
    const frame = JSON.parse(raw.toString())
    onPublication(frame.data.t, frame.data.seq)
  }

  #answer (raw: Buffer): void {
    const frame = JSON.parse(raw.toString())
    if (typeof frame.id !== 'number') return
    const done = this.#pending.get(frame.id)
    if (done === undefined) return
    this.#pending.delete(frame.id)
    done(frame.type === 'reply')
  }

  #request (type: string, data: unknown, done: (ok: boolean) => void): void {
    if (this.#ws.readyState !== WebSocket.OPEN) {
      done(false)
      return
    }
    const id = this.#nextId++
    this.#pending.set(id, done)
    this.#ws.send(JSON.stringify({ type, id, data }))
  }

  subscribe (topic: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#request('subscribe', { topic }, (ok) => ok ? resolve() : reject(new Error(`subscribe to ${topic} refused`)))
    })
  }

  echo (data: EchoData, done: (ok: boolean) => void): void {
    this.#request('echo', data, done)
  }

  close (): void {
    this.#ws.close(1000)
  }

  terminate (): void {
    this.#ws.terminate()
  }
}

class SocketIoClient implements BenchClient {
  readonly ready: Promise<void>
  readonly closed: Promise<void>
  onPublication: ((t: number, seq: number) => void) | null = null
  readonly #socket: Socket

  constructor (url: string, localAddress?: string) {
    this.#socket = io(url, {
      transports: ['websocket'],
      forceNew: true,
      reconnection: false,
      timeout: 15_000,
      // engine.io-client hands it to ws in Node.
      ...(localAddress === undefined ? {} : { localAddress } as Record<string, string>)
    })
    this.ready = new Promise<void>((resolve, reject) => {
      this.#socket.once('connect', () => resolve())
      this.#socket.once('connect_error', reject)
    })
    this.ready.catch(() => {})
    this.closed = new Promise<void>((resolve) => {
      this.#socket.once('disconnect', () => resolve())
      this.#socket.once('connect_error', () => resolve())
    })
    this.#socket.on('message', (message: { t: number, seq: number }) => {
      this.onPublication?.(message.t, message.seq)
    })
  }

  subscribe (topic: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#socket.emit('subscribe', topic, (reply: { error?: unknown }) => {
        if (reply?.error === undefined) resolve()
        else reject(new Error(`subscribe to ${topic} refused`))
      })
    })
  }

  echo (data: EchoData, done: (ok: boolean) => void): void {
    if (!this.#socket.connected) {
      done(false)
      return
    }
    this.#socket.emit('echo', data, (reply: { error?: unknown }) => done(reply?.error === undefined))
  }

  close (): void {
    this.#socket.disconnect()
  }

  terminate (): void {
    this.#socket.disconnect()
    this.#socket.io.engine?.close()
  }
}
