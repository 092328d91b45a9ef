// The publisher's core, for processes that are not servers (workers, cron jobs,
// scripts), over any broker: topics declared as on the server, by pattern and message
// schema, every publication checked and serialised by its schema through the one
// publish path (publish.ts), so what subscribers receive is exactly what a server-side
// publish would have sent. publisher.ts makes it on Redis, publisher-postgres.ts on
// PostgreSQL, each behind its own entry.
import type { Static, TSchema } from '../protocol/schema.js'
import { SchemaCompiler, type AjvConfig } from '../wire/schema-compiler.js'
import { errorCodes } from '../protocol/errors.js'
import { publishTo, resolveTopic, type PublishOptions, type PublishResult } from './publish.js'
import { defaults } from '../config/options.js'
import { Topics, formatTopic, type CompiledTopic } from './topics.js'
import type { Broker, HistoryOptions } from '../broker/types.js'

export interface PublisherTopic<M extends TSchema = TSchema> {
  /** Schema of a publication; it serialises them (properties it does not name are dropped). */
  message: M
  /** Schema of the pattern's params, as on the server. */
  params?: TSchema
  /** History kept for this topic; give the same as the server's declaration. */
  history?: Partial<HistoryOptions>
}

/** What every publisher takes, whatever its broker. */
export interface PublisherTopicsOptions<T extends Record<string, PublisherTopic>> {
  /** Topic patterns (`room/:name`) and their schemas, as the server declares them. */
  topics: T
  /** History defaults for every topic, as the server's `history` option (default 100 publications, 5 minutes). */
  history?: Partial<HistoryOptions>
  /** Ajv options for params validation and the serialisers, as the server's `ajv` option. */
  ajv?: AjvConfig
  /** Longest topic name in characters, as the server's `maxTopicLength` (default 256): a longer name is refused before the broker sees it. */
  maxTopicLength?: number
}

export type PublisherPublishOptions = PublishOptions
export type PublisherResult = PublishResult

export interface PublisherTopicHandle<M> {
  readonly pattern: string
  name: (params: Record<string, string | number>) => string
  publish: (params: Record<string, string | number>, data: M, options?: PublisherPublishOptions) => Promise<PublisherResult>
}

export interface Publisher<T extends Record<string, PublisherTopic>, B extends Broker = Broker> {
  /** Publishes to a topic by name (`room/general`); an undeclared one is FST_REALTIME_UNKNOWN_TOPIC. */
  publish: (topic: string, data: unknown, options?: PublisherPublishOptions) => Promise<PublisherResult>
  /** A typed handle on one declared pattern. */
  topic: <K extends keyof T & string>(pattern: K) => PublisherTopicHandle<Static<T[K]['message']>>
  /** The broker underneath (for `history` or `position`). */
  readonly broker: B
  /** Closes the broker if the publisher made it (not one you passed). */
  close: () => Promise<void>
}

/** A publisher on `broker`; `owned` when close() should close it. */
export function publisherOn<T extends Record<string, PublisherTopic>, B extends Broker> (broker: B, owned: boolean, options: PublisherTopicsOptions<T>): Publisher<T, B> {
  const maxTopicLength = options.maxTopicLength ?? defaults.maxTopicLength
  if (!Number.isInteger(maxTopicLength) || maxTopicLength < 1) {
    throw new errorCodes.FST_REALTIME_INVALID_OPTION('maxTopicLength', `must be a whole number >= 1 (got ${String(maxTopicLength)})`)
  }
  const topics = new Topics(new SchemaCompiler(options.ajv), {
    size: options.history?.size ?? defaults.historySize,
    ttl: options.history?.ttl ?? defaults.historyTtl
  }, maxTopicLength)
  const compiled = new Map<string, CompiledTopic>()
  for (const [pattern, definition] of Object.entries(options.topics)) {
    compiled.set(pattern, topics.add(pattern, { message: definition.message, params: definition.params, history: definition.history }))
  }

  async function publish (topic: string, data: unknown, opts?: PublisherPublishOptions): Promise<PublisherResult> {
    // The same resolution and publish path as the server's: the first pattern the name
    // matches, with its params valid for that pattern's schema.
    return publishTo(broker, resolveTopic(topics, topic), topic, data, opts)
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
    close: async () => { if (owned) await broker.close() }
  }
}
