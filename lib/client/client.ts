// The typed client of fastify-realtime for browsers and Node: the calls an application
// makes, typed by its contract, over the connection of core.ts.
//
// Nothing here imports a Node module: the same file is bundled for browsers.
import { ClientUsageError } from './errors.js'
import type {
  Contract, EventData, EventName, RouteData, RouteName, RouteReply, TopicMessage, TopicNames
} from '../protocol/contract.js'
import { ConnectionCore } from './core.js'
import { RealtimeClientError } from './errors.js'
import { CLIENT_BUILTINS } from './protocol.js'
import type {
  ClientEvents, ClientOptions, MessageMeta, PresenceMember, RequestError, RequestOptions, SubscribeOptions, Subscription
} from './types.js'
import { clientError } from './util.js'

export class RealtimeClient<C extends Contract = Contract> extends ConnectionCore {
  // The contract is only a type here: the constructor is the core's.
  declare protected readonly contract: C | undefined

  // Declared so that `new RealtimeClient({ contract })` infers C from the contract.
  // eslint-disable-next-line @typescript-eslint/no-useless-constructor
  constructor (options: ClientOptions<C>) {
    super(options)
  }

  // ---------------------------------------------------------------- events

  /** Listens to a client event or to an application event; returns a function that stops listening. */
  on<K extends keyof ClientEvents> (event: K, listener: ClientEvents[K]): () => void
  on<K extends EventName<C>> (event: K, listener: (data: EventData<C, K>) => void): () => void
  on (event: string, listener: (...args: any[]) => void): () => void {
    return this.emitter.on(event, listener)
  }

  /** Whether `err` is an error of this client, typed as what a request of `type` can reject with. */
  isError<K extends RouteName<C>> (err: unknown, _type?: K): err is RequestError<C, K> {
    return err instanceof RealtimeClientError
  }

  // ---------------------------------------------------------------- requests

  /**
   * Sends a message to a route and resolves with its reply, typed by the route's
   * reply schema. Rejects with a `RealtimeClientError`: the route's own codes, the
   * protocol's, TIMEOUT, QUEUE_FULL, QUEUE_TIMEOUT, DISCONNECTED (sent, then the
   * connection was lost: it may have run; idempotent requests are sent again instead)
   * or CLOSED. While disconnected the request waits in the queue.
   */
  request<K extends RouteName<C>> (type: K, ...[data, options = {}]: RequestArgs<C, K>): Promise<RouteReply<C, K>> {
    if (typeof type !== 'string' || CLIENT_BUILTINS.has(type)) {
      return Promise.reject(new ClientUsageError(`request: "${String(type)}" is not a route name; use subscribe(), publish() or presence() for built-ins`))
    }
    const idempotent = this.contract?.routes?.[type]?.idempotent === true
    return this.#request(type, data, options, idempotent) as Promise<RouteReply<C, K>>
  }

  /**
   * Sends a fire-and-forget message (no id, no reply). Returns false, sending nothing,
   * when not connected: such messages are not queued. A failure comes as an `error` event.
   */
  send<K extends RouteName<C>> (type: K, ...[data]: SendArgs<C, K>): boolean {
    if (typeof type !== 'string' || CLIENT_BUILTINS.has(type)) throw new ClientUsageError(`send: "${String(type)}" is not a route name`)
    if (!this.welcomed) return false
    return this.write(data === undefined ? { type } : { type, data })
  }

  /** Publishes on a topic that lets clients publish; resolves with the publication's offset. */
  publish<T extends TopicNames<C>> (topic: T, data: TopicMessage<C, T>, options: RequestOptions = {}): Promise<{ offset: number }> {
    return this.#request('publish', { topic, data }, options, false) as Promise<{ offset: number }>
  }

  /** The members present on a topic with presence on. */
  presence<T extends TopicNames<C>> (topic: T, options: RequestOptions = {}): Promise<{ members: PresenceMember[] }> {
    return this.#request('presence', { topic }, options, false) as Promise<{ members: PresenceMember[] }>
  }

  #request (type: string, data: unknown, options: RequestOptions, idempotent: boolean): Promise<unknown> {
    if (this.state === 'closed') return Promise.reject(clientError('CLOSED', 'The client is closed', { maybeRan: false }))
    return this.requests.request(type, data, options, idempotent)
  }

  // ---------------------------------------------------------------- topics

  /**
   * Subscribes to a topic; the listener gets every publication, typed by the topic's
   * message schema, once and in offset order, across reconnections. Returns a function
   * that unsubscribes this listener (the topic is left when its last listener goes).
   */
  subscribe<T extends TopicNames<C>> (topic: T, listener: (message: TopicMessage<C, T>, meta: MessageMeta) => void, options: SubscribeOptions = {}): Subscription {
    return this.topics.subscribe(topic, listener, options)
  }
}

/**
 * Creates a client. Give it the contract's type, by passing the contract
 * (`createClient({ url, contract })`) or as a type argument (`createClient<typeof contract>({ url })`).
 */
export function createClient<C extends Contract = Contract> (options: ClientOptions<C>): RealtimeClient<C> {
  return new RealtimeClient<C>(options)
}

/** A route that takes no data is called without it: `request('get_status')`. */
type RequestArgs<C, K extends RouteName<C>> = [RouteData<C, K>] extends [undefined]
  ? [data?: undefined, options?: RequestOptions]
  : [data: RouteData<C, K>, options?: RequestOptions]

type SendArgs<C, K extends RouteName<C>> = [RouteData<C, K>] extends [undefined] ? [data?: undefined] : [data: RouteData<C, K>]
