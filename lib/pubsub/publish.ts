// The one publish path, shared by the plugin (`publish`, topic handles, `ctx.publish`,
// client publications) and by `createPublisher` in processes that serve no clients:
// the topic's schema serialises the data once, then the broker assigns the offset,
// keeps history and fans it out to every node.
import type { Broker, PublishOptions as BrokerPublishOptions, StreamPosition } from '../broker/types.js'
import { errorCodes } from '../protocol/errors.js'
import { channels } from '../protocol/diagnostics.js'
import type { CompiledTopic, Topics } from './topics.js'
import { tagData, type Tags } from './tags.js'

export interface PublishOptions {
  /** Connection ids that must not receive this publication (the sender, typically). */
  except?: string | string[]
  /** Not part of the topic's stream: no offset, no history, never recovered (typing indicators). */
  ephemeral?: boolean
  /** The publication's tags, on a topic that declares tags without `from` (or to override it). */
  tags?: Tags
  /**
   * The application's transaction (a `pg` client after BEGIN) when the broker is the
   * PostgreSQL one: the publication is written in it and delivered only once it
   * commits; on rollback nobody ever sees it and no offset is used.
   */
  transaction?: unknown
}

export interface PublishResult extends StreamPosition {
  topic: string
}

/** The declared pattern a topic name belongs to; an undeclared name is a programming error. */
export function resolveTopic (topics: Topics, topic: string): CompiledTopic {
  const match = typeof topic === 'string' ? topics.match(topic) : null
  if (match === null) throw new errorCodes.FST_REALTIME_UNKNOWN_TOPIC(String(topic))
  return match.topic
}

/** Resolves with the publication's position; rejects with FST_REALTIME_INVALID_DATA when the data fails the topic's schema. */
export async function publishTo (broker: Broker, compiled: CompiledTopic, topic: string, data: unknown, options: PublishOptions = {}): Promise<PublishResult> {
  // Checked once per publication, before anything is sent: the schema's serializer
  // would coerce (1.5 to 1, 5 to "5") instead of refusing.
  if (options.transaction !== undefined && broker.transactions !== true) {
    throw new errorCodes.FST_REALTIME_NO_TRANSACTIONS(broker.kind ?? broker.constructor.name)
  }
  const problem = compiled.checkMessage(data)
  if (problem !== null) throw new errorCodes.FST_REALTIME_INVALID_DATA(`topic "${topic}"`, problem)
  const payload = tagData(compiled.tags, options.tags, data, compiled.serialize(data), `topic "${topic}"`)
  const brokerOptions: BrokerPublishOptions = { history: compiled.history }
  if (options.except !== undefined) brokerOptions.except = ([] as string[]).concat(options.except)
  if (options.ephemeral === true) brokerOptions.ephemeral = true
  if (options.transaction !== undefined) brokerOptions.transaction = options.transaction
  const started = channels.publish.hasSubscribers ? performance.now() : 0
  const position = await broker.publish(topic, payload, brokerOptions)
  if (started !== 0) channels.publish.publish({ broker, topic, pattern: compiled.pattern, offset: position.offset, duration: performance.now() - started })
  return { topic, offset: options.ephemeral === true ? 0 : position.offset, epoch: position.epoch }
}
