// The broker keeps what must be shared between server processes: each topic's
// offsets, epoch and history, and the fan-out of publications to every node. The
// memory broker serves one process; a network broker (Redis) implements the same
// contract and must pass the same suite (test/fixtures/broker-contract.ts).

/** A publication as it travels between nodes: data is already serialised JSON. */
export interface Publication {
  topic: string
  /** 0 for an ephemeral publication, which is not part of the stream. */
  offset: number
  epoch: string
  /** The message, serialised once by the topic's schema. */
  data: string
  /** Connection ids that must not receive it. */
  except?: string[]
  /**
   * Delivered on this node only, because the broker could not take it (Redis away, with
   * the Redis broker's `localWhileDown`): offset 0, in no stream and no history. Its
   * frame says so (`"local": true`), so no subscriber takes it as a position.
   */
  local?: true
}

export interface StreamPosition {
  offset: number
  epoch: string
}

export interface HistoryOptions {
  /** Publications kept per topic (0: none). */
  size: number
  /** Milliseconds a publication is kept (0: no age limit). */
  ttl: number
}

export interface PublishOptions {
  except?: string[]
  /** Not part of the stream: no offset, no history, never recovered (typing indicators). */
  ephemeral?: boolean
  /** How much history this topic keeps; without it none is kept. */
  history?: HistoryOptions
  /**
   * A connection of the broker's own database inside the application's open transaction
   * (a `pg` client after BEGIN): the publication is written in it and delivered only if
   * it commits. Only brokers with `transactions: true` take it.
   */
  transaction?: unknown
}

export interface RecoveryResult {
  /** The stream's position now. */
  position: StreamPosition
  /** True when `publications` is every publication after `since`, in order. */
  recovered: boolean
  /**
   * Recovered: every publication after `since`. Not recovered: none, except when `since`
   * is in another epoch (the stream started again, or forked after `since`) and history
   * still holds, within `limit`, every publication of the current epoch its holder cannot
   * have seen: then those, from offset 1 of a new stream or from just after the fork.
   * The subscriber is told it lost something and loses only what the restart lost.
   */
  publications: Publication[]
}

export type PublicationListener = (publication: Publication) => void

/** A member of a topic's presence: one connection, its user and meta already serialised. */
export interface PresenceMember {
  connectionId: string
  /** The member as clients see it: `{"connectionId":…,"user":…,"meta":…}`. */
  data: string
}

export interface PresenceEvent {
  topic: string
  kind: 'join' | 'leave'
  member: PresenceMember
}

export type PresenceListener = (event: PresenceEvent) => void

/**
 * An order for every node: closing all connections of a user wherever they are, or
 * subscribing a connection, on the node that holds it, to a topic (`app.realtime.subscribe`).
 */
export type BrokerCommand =
  | { kind: 'disconnect-user', userId: string, code: number, reason: string }
  | { kind: 'subscribe', connectionId: string, topic: string, meta?: unknown, filter?: unknown }

export type CommandListener = (command: BrokerCommand) => void

/**
 * Called when a node can no longer vouch that live delivery on a topic was contiguous
 * (its store came back empty, or history could not cover a reconnection gap): every
 * local subscriber of that topic must be told to resubscribe with `since`.
 */
export type ResyncListener = (topic: string) => void

/** Brokers that can hold idempotency records (both brokers of this package) implement `IdempotencyStore` too. */
export interface Broker extends Partial<IdempotencyStore> {
  /** A short name for messages (`memory`, `Redis`, `PostgreSQL`). */
  readonly kind?: string
  /** True when publish() takes `transaction` (the PostgreSQL broker). */
  readonly transactions?: boolean
  /** Called once by the plugin with the functions that deliver to this node's subscribers and carry out commands. */
  start (listener: PublicationListener, presence?: PresenceListener, command?: CommandListener, resync?: ResyncListener): Promise<void> | void
  /** Sends a command to every node, this one included. */
  command (command: BrokerCommand): Promise<void>
  /** Assigns the next offset, records the publication and fans it out to every node. */
  publish (topic: string, data: string, options?: PublishOptions): Promise<StreamPosition>
  /** The topic's current position (offset of its last publication, 0 when none). */
  position (topic: string): Promise<StreamPosition>
  /**
   * Every publication after `since`, all or nothing: when they are not all still held,
   * or there are more than `limit`, or the epoch differs, `recovered` is false. With
   * another epoch, the current one is replayed from its start when history holds it
   * (see RecoveryResult); a broker that never does so is still correct, only lossier.
   */
  recover (topic: string, since: StreamPosition, limit: number): Promise<RecoveryResult>
  /** The latest publications still held (at most `limit`, oldest first), for "history on join". */
  history (topic: string, limit: number): Promise<{ position: StreamPosition, publications: Publication[] }>
  /** Adds a member to a topic's presence and tells every node (`join`). */
  join (topic: string, member: PresenceMember): Promise<void>
  /** Removes a member and tells every node (`leave`); nothing when it was not there. */
  leave (topic: string, connectionId: string): Promise<void>
  /** The topic's members, across every node. */
  members (topic: string): Promise<PresenceMember[]>
  /** This node has its first local subscriber for the topic. */
  subscribe (topic: string): Promise<void> | void
  /** This node has no local subscriber left for the topic. */
  unsubscribe (topic: string): Promise<void> | void
  close (): Promise<void> | void
}

/** Whose request an idempotency record belongs to: one user, one route, one client key. */
export interface IdempotencyScope {
  /** The user's id; '' for connections without a user (their keys share one scope). */
  userId: string
  route: string
  key: string
}

/**
 * What a claim found: `claimed` (run the handler, then settle), `pending` (a run with
 * another token is under way: ask again later) or `done` with the remembered answer.
 */
export type IdempotencyClaim =
  | { status: 'claimed' }
  | { status: 'pending' }
  | { status: 'done', answer: string }

/**
 * The first answer per scope, shared by every node. A run claims the scope with a
 * token and a pending marker that lives `pendingMs` (so a node that dies mid-run does
 * not block the key for long; claiming again with the same token renews it), then
 * settles it with the answer, kept `ttlMs`, or with null to let a later run claim it.
 */
export interface IdempotencyStore {
  claimIdempotent (scope: IdempotencyScope, token: string, pendingMs: number): Promise<IdempotencyClaim>
  /** Only the holder of the pending marker settles it: a stale token changes nothing. */
  settleIdempotent (scope: IdempotencyScope, token: string, answer: string | null, ttlMs: number): Promise<void>
}
