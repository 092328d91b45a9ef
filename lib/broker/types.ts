// The broker keeps what must be shared between server processes: each topic's
// offsets and epoch, and the fan-out of publications to every node. The memory
// broker serves one process; a network broker (Redis) implements the same contract.

/** A publication as it travels between nodes: data is already serialised JSON. */
export interface Publication {
  topic: string
  offset: number
  epoch: string
  /** The message, serialised once by the topic's schema. */
  data: string
  /** Connection ids that must not receive it. */
  except?: string[]
}

export interface StreamPosition {
  offset: number
  epoch: string
}

export interface PublishOptions {
  except?: string[]
}

export type PublicationListener = (publication: Publication) => void

export interface Broker {
  /** Called once by the plugin with the function that delivers to this node's subscribers. */
  start (listener: PublicationListener): Promise<void> | void
  /** Assigns the next offset, records the publication and fans it out to every node. */
  publish (topic: string, data: string, options?: PublishOptions): Promise<StreamPosition>
  /** The topic's current position (offset of its last publication, 0 when none). */
  position (topic: string): Promise<StreamPosition>
  /** This node has its first local subscriber for the topic. */
  subscribe (topic: string): Promise<void> | void
  /** This node has no local subscriber left for the topic. */
  unsubscribe (topic: string): Promise<void> | void
  close (): Promise<void> | void
}
