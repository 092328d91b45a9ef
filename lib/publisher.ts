// A publisher for processes that are not servers (workers, cron jobs, scripts): it
// publishes into the same topics as the plugin's nodes, through the same Redis, with
// the same offsets and history. Topics are declared as on the server, by pattern and
// message schema, and every publication is serialised by its schema
// (fast-json-stringify), so what subscribers receive is exactly what a server-side
// publish would have sent.
import type { Static, TSchema } from '@sinclair/typebox'
import { Contracts, type AjvConfig } from './contracts.js'
import { errorCodes } from './errors.js'
import { defaults } from './options.js'
import { Topics, formatTopic, type CompiledTopic } from './topics.js'
import { RedisBroker, type RedisBrokerOptions } from './broker/redis.js'
import type { HistoryOptions, PublishOptions as BrokerPublishOptions } from './broker/types.js'

export interface PublisherTopic<M extends TSchema = TSchema> {
  /** Schema of a publication; it serialises them (properties it does not name are dropped). */
  message: M
  /** Schema of the pattern's params, as on the server. */
  params?: TSchema
  /** History kept for this topic; give the same as the server's declaration. */
  history?: Partial<HistoryOptions>
}

export interface PublisherOptions<T extends Record<string, PublisherTopic>> extends Pick<RedisBrokerOptions, 'redis' | 'cluster' | 'clusterOptions' | 'prefix' | 'metaTtl' | 'log'> {
  /** Topic patterns (`room/:name`) and their schemas, as the server declares them. */
  topics: T
  /** History defaults for every topic, as the server's `history` option (default 100 publications, 5 minutes). */
  history?: Partial<HistoryOptions>
  /** Ajv options for params validation and the serialisers, as the server's `ajv` option. */
  ajv?: AjvConfig
}

export interface PublisherPublishOptions {
  /** Connection ids that must not receive it. */
  except?: string | string[]
  /** Outside the stream: no offset, no history, never recovered. */
  ephemeral?: boolean
}

export interface PublisherResult {
  topic: string
  offset: number
  epoch: string
}

export interface PublisherTopicHandle<M> {
  readonly pattern: string
  name: (params: Record<string, string | number>) => string
  publish: (params: Record<string, string | number>, data: M, options?: PublisherPublishOptions) => Promise<PublisherResult>
}

export interface Publisher<T extends Record<string, PublisherTopic>> {
  /** Publishes to a topic by name (`room/general`); an undeclared one is FST_REALTIME_UNKNOWN_TOPIC. */
  publish: (topic: string, data: unknown, options?: PublisherPublishOptions) => Promise<PublisherResult>
  /** A typed handle on one declared pattern. */
  topic: <K extends keyof T & string>(pattern: K) => PublisherTopicHandle<Static<T[K]['message']>>
  /** The broker underneath (for `history` or `position`). */
  readonly broker: RedisBroker
  /** Closes the Redis connection it made (not one you passed). */
  close: () => Promise<void>
}

/**
 * Creates a publisher. It connects on the first publish; while Redis is unreachable
 * publishes reject with FST_REALTIME_BROKER_UNAVAILABLE.
 */
export function createPublisher<T extends Record<string, PublisherTopic>> (options: PublisherOptions<T>): Publisher<T> {
  const topics = new Topics(new Contracts(options.ajv), {
    size: options.history?.size ?? defaults.historySize,
    ttl: options.history?.ttl ?? defaults.historyTtl
  })
  const compiled = new Map<string, CompiledTopic>()
  for (const [pattern, definition] of Object.entries(options.topics)) {
    compiled.set(pattern, topics.add(pattern, { message: definition.message, params: definition.params, history: definition.history }))
  }
  const broker = new RedisBroker({ redis: options.redis, cluster: options.cluster, clusterOptions: options.clusterOptions, prefix: options.prefix, metaTtl: options.metaTtl, log: options.log })

  async function send (topic: string, compiledTopic: CompiledTopic, data: unknown, opts: PublisherPublishOptions = {}): Promise<PublisherResult> {
    let payload: string
    try {
      payload = compiledTopic.serialize(data)
    } catch (err) {
      throw new errorCodes.FST_REALTIME_INVALID_DATA(`topic "${topic}"`, (err as Error).message)
    }
    const brokerOptions: BrokerPublishOptions = { history: compiledTopic.history }
    if (opts.except !== undefined) brokerOptions.except = ([] as string[]).concat(opts.except)
    if (opts.ephemeral === true) brokerOptions.ephemeral = true
    const position = await broker.publish(topic, payload, brokerOptions)
    return { topic, offset: opts.ephemeral === true ? 0 : position.offset, epoch: position.epoch }
  }

  async function publish (topic: string, data: unknown, opts?: PublisherPublishOptions): Promise<PublisherResult> {
    // The same resolution as the server's publish: the first pattern the name matches,
    // with its params valid for that pattern's schema.
    const match = typeof topic === 'string' ? topics.match(topic) : null
    if (match === null) throw new errorCodes.FST_REALTIME_UNKNOWN_TOPIC(String(topic))
    return send(topic, match.topic, data, opts)
  }

  return {
    broker,
    publish,
    topic (pattern) {
      const compiledTopic = compiled.get(pattern)
      if (compiledTopic === undefined) throw new errorCodes.FST_REALTIME_UNKNOWN_TOPIC(String(pattern))
      const name = (params: Record<string, string | number>) => formatTopic(compiledTopic, params)
      return {
        pattern,
        name,
        publish: async (params, data, opts) => publish(name(params), data, opts)
      }
    },
    close: () => broker.close()
  }
}
