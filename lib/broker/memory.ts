// The in-memory broker: one process, offsets per topic, delivery in the same tick.
import { randomBytes } from 'node:crypto'
import type { Broker, PublicationListener, PublishOptions, StreamPosition } from './types.js'

interface Stream {
  offset: number
  epoch: string
}

export class MemoryBroker implements Broker {
  readonly #streams = new Map<string, Stream>()
  #listener: PublicationListener | null = null

  start (listener: PublicationListener): void {
    this.#listener = listener
  }

  #stream (topic: string): Stream {
    let stream = this.#streams.get(topic)
    if (stream === undefined) {
      // A fresh epoch per stream: a process restart loses the history, and a client
      // holding an old epoch must be told it cannot recover.
      stream = { offset: 0, epoch: randomBytes(6).toString('base64url') }
      this.#streams.set(topic, stream)
    }
    return stream
  }

  async publish (topic: string, data: string, options: PublishOptions = {}): Promise<StreamPosition> {
    const stream = this.#stream(topic)
    const offset = ++stream.offset
    const publication = options.except === undefined
      ? { topic, offset, epoch: stream.epoch, data }
      : { topic, offset, epoch: stream.epoch, data, except: options.except }
    this.#listener?.(publication)
    return { offset, epoch: stream.epoch }
  }

  async position (topic: string): Promise<StreamPosition> {
    const stream = this.#stream(topic)
    return { offset: stream.offset, epoch: stream.epoch }
  }

  subscribe (): void {}
  unsubscribe (): void {}

  close (): void {
    this.#listener = null
    this.#streams.clear()
  }
}
