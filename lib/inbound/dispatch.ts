// Every inbound frame after the socket: parse (envelope.ts), rate limit, the barriers
// that keep a connection's frames in order behind a pending auth or subscribe, then
// the built-in command (auth.ts, topic-commands.ts) or the message route
// (route-runner.ts), and the one answer (answer.ts).
import type { RawData } from 'ws'
import type { Answers } from '../connection/answer.js'
import type { MessageAuth } from './auth.js'
import type { Broker } from '../broker/types.js'
import type { Connection } from '../connection/connection.js'
import { isEnvelopeError, parseEnvelope, type Envelope } from '../wire/envelope.js'
import { RealtimeError, wireErrors } from '../protocol/errors.js'
import { pongFrame } from '../wire/frames.js'
import type { Hooks } from '../messages/hooks.js'
import type { ResolvedOptions } from '../config/options.js'
import { CloseCode, ErrorCode } from '../protocol/constants.js'
import { InFlight, RouteRunner, type PublishFn } from '../messages/route-runner.js'
import type { Router } from '../messages/router.js'
import { SENT, type TopicCommands } from './topic-commands.js'
import { channels, inboundType } from '../protocol/diagnostics.js'

/**
 * Frames a connection may send while one of its `auth`, `subscribe` or `unsubscribe`
 * (or its onConnect hooks) is in flight; they wait and run in order after it. Past
 * this many they are refused: a client cannot make the server hold unbounded work.
 */
const MAX_BACKLOG = 256

export class Dispatcher<U> {
  readonly #options: Readonly<ResolvedOptions>
  readonly #router: Router
  readonly #commands: TopicCommands<U>
  readonly #answers: Answers
  /** When the server authenticates by message (the `authenticate` option). */
  readonly auth: MessageAuth<U> | null
  /** Frames received on every connection. */
  messagesIn = 0
  /** Set while the server shuts down: handlers in flight finish, new messages are refused as UNAVAILABLE. */
  draining = false
  /** Built-ins and handlers started and not yet answered: what a shutdown waits for. */
  readonly #inFlight = new InFlight()
  readonly #routes: RouteRunner<U>

  constructor (options: Readonly<ResolvedOptions>, router: Router, commands: TopicCommands<U>, hooks: Hooks<U>, answers: Answers, broker: Broker, auth: MessageAuth<U> | null, publish: PublishFn) {
    this.#options = options
    this.auth = auth
    this.#router = router
    this.#commands = commands
    this.#answers = answers
    this.#routes = new RouteRunner<U>(options, hooks, answers, broker, publish, this.#inFlight, () => this.draining)
  }

  onFrame (connection: Connection<U>, raw: RawData, isBinary: boolean): void {
    connection.lastSeen = Date.now()
    // The server decided to close it (it may still be waiting for answers in flight): what
    // the peer sends now is not run, and the close code tells the peer so.
    if (connection.state === 'closing') return
    connection.messagesIn++
    this.messagesIn++
    if ((raw as Buffer).length > this.#options.maxPayload) {
      // Reached only when the app's own ws server allows larger frames than we do.
      connection.close(CloseCode.TOO_BIG, 'frame too big')
      return
    }
    const envelope = parseEnvelope(raw, isBinary, this.#options.maxDepth, connection.msgpack)
    if (channels.messageIn.hasSubscribers) channels.messageIn.publish({ connection, type: isEnvelopeError(envelope) ? 'invalid' : inboundType(envelope.type, this.#router) })
    if (isEnvelopeError(envelope)) {
      this.#answers.error(connection, envelope.id, envelope.error)
      return
    }
    const wait = connection.bucket.take(this.#options.rateLimit, connection.lastSeen)
    if (wait > 0) {
      if (connection.bucket.refused > this.#options.rateLimit.closeAfter) {
        connection.close(CloseCode.TOO_MANY_REQUESTS, 'too many requests')
      } else {
        this.#answers.error(connection, envelope.id, new RealtimeError(ErrorCode.RATE_LIMITED, 'Too many messages; slow down', { temporary: true, retryAfterMs: wait }))
      }
      return
    }
    if (this.draining) {
      // The client reconnects after the shutdown's close and may send it again there. A
      // `ping` too: a pong would tell the client that this connection is good to use.
      // (Any answer shows it is alive, this one as well as a pong.)
      this.#answers.error(connection, envelope.id, wireErrors.unavailable('The server is shutting down; send it again after reconnecting', 1000))
      return
    }
    const backlog = connection.backlog as Envelope[] | null
    if (backlog !== null) {
      // An auth, subscribe or unsubscribe is in flight: what follows it waits for it,
      // so `subscribe` then `chat.send` behaves as sent, not as raced.
      if (backlog.length < MAX_BACKLOG) backlog.push(envelope)
      else this.#answers.error(connection, envelope.id, wireErrors.limit(`At most ${MAX_BACKLOG} frames may wait behind a pending subscribe or auth`))
      return
    }
    this.#process(connection, envelope)
  }

  /** Resolves when no built-in or handler is in flight. */
  idle (): Promise<void> {
    return this.#inFlight.idle()
  }

  /** Runs the frames that waited behind a barrier, until the next barrier among them. */
  drain (connection: Connection<U>): void {
    const backlog = connection.backlog as Envelope[] | null
    connection.backlog = null
    if (backlog === null) return
    for (let i = 0; i < backlog.length; i++) {
      if (!connection.isOpen) return
      this.#process(connection, backlog[i])
      if (connection.backlog !== null) {
        // That frame was itself a barrier: the rest wait for it, ahead of newer frames.
        (connection.backlog as Envelope[]).push(...backlog.slice(i + 1))
        return
      }
    }
  }

  #process (connection: Connection<U>, envelope: Envelope): void {
    if (connection.state === 'authenticating') {
      if (envelope.type === 'auth' && this.auth !== null) this.auth.authenticate(connection, envelope, false)
      else this.#answers.error(connection, envelope.id, wireErrors.unauthorized('Send `auth` first'))
      return
    }
    switch (envelope.type) {
      case 'ping':
        connection.send(pongFrame(envelope.id))
        return
      case 'subscribe':
        connection.backlog = []
        this.#run(connection, envelope, this.#commands.subscribe(connection, envelope.id, envelope.data), true)
        return
      case 'unsubscribe':
        connection.backlog = []
        this.#run(connection, envelope, this.#commands.unsubscribe(connection, envelope.data), true)
        return
      case 'publish':
        this.#run(connection, envelope, this.#commands.publish(connection, envelope.data))
        return
      case 'presence':
        this.#run(connection, envelope, this.#commands.presence(connection, envelope.data))
        return
      case 'auth':
        if (this.auth === null) this.#answers.error(connection, envelope.id, wireErrors.badRequest('This server does not authenticate by message'))
        else this.auth.authenticate(connection, envelope, true)
        return
    }
    const route = this.#router.get(envelope.type)
    if (route === undefined) {
      this.#answers.error(connection, envelope.id, wireErrors.unknownType(envelope.type))
      return
    }
    this.#routes.handle(connection, route, envelope)
  }

  /** Runs a built-in whose promise resolves to the reply frame's data (or rejects with a wire error). */
  #run (connection: Connection<U>, envelope: Envelope, work: Promise<string | typeof SENT>, barrier = false): void {
    this.#inFlight.start()
    const request = { id: envelope.id }
    connection.accepted(request)
    work.then(
      (data) => { if (data !== SENT) this.#answers.reply(connection, envelope.id, data) },
      (err) => { this.#answers.failure(connection, envelope.id, envelope.type, err) }
    ).finally(() => {
      connection.settled(request)
      this.#inFlight.settled()
      if (barrier) this.drain(connection)
    })
  }
}
