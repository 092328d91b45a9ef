// Authentication by first message (`auth`, when the `authenticate` option is set) and
// the expiry of credentials: a connection whose credentials expire is closed with
// 4005 unless an `auth` sent meanwhile refreshed them.
import { Type } from '../wire/json-schema.js'
import type { Answers } from '../connection/answer.js'
import type { Connection } from '../connection/connection.js'
import type { Envelope } from '../wire/envelope.js'
import { wireErrors } from '../protocol/errors.js'
import { authReplyData } from '../wire/frames.js'
import type { ResolvedOptions } from '../config/options.js'
import { CloseCode } from '../protocol/constants.js'
import { onFirstUse, type SchemaCompiler, type Validator } from '../wire/schema-compiler.js'
import type { Users } from '../config/users.js'

const AuthData = Type.Object({ token: Type.String() })

export interface AuthSteps<U> {
  /** Admits a connection whose first `auth` succeeded (onConnect, the auth reply, welcome). */
  admit: (connection: Connection<U>, user: U, authId: Envelope['id']) => void
  /** Runs the frames that waited behind the `auth`. */
  drain: (connection: Connection<U>) => void
}

export class MessageAuth<U> {
  readonly #authenticate: NonNullable<ResolvedOptions['authenticate']>
  readonly #validate: Validator
  readonly #answers: Answers
  readonly #users: Users
  readonly #steps: AuthSteps<U>

  constructor (authenticate: NonNullable<ResolvedOptions['authenticate']>, compiler: SchemaCompiler, answers: Answers, users: Users, steps: AuthSteps<U>) {
    this.#authenticate = authenticate
    this.#validate = onFirstUse(() => compiler.validator(AuthData, 'data', 'built-in "auth"'))
    this.#answers = answers
    this.#users = users
    this.#steps = steps
  }

  /** The first `auth` of a connection (refresh false), or a later one renewing its credentials. */
  authenticate (connection: Connection<U>, envelope: Envelope, refresh: boolean): void {
    const details = this.#validate(envelope.data)
    if (details !== null) {
      this.#answers.error(connection, envelope.id, wireErrors.validation(details))
      return
    }
    // A barrier: frames sent while authenticate() runs are handled after it, as that user.
    connection.backlog = []
    const token = (envelope.data as { token: string }).token
    Promise.resolve()
      .then(() => this.#authenticate(token, connection.request))
      .catch((err) => {
        // Never log the token: only that it failed, and why.
        connection.log.warn({ err: { message: (err as Error)?.message } }, 'authenticate threw; treating as bad credentials')
        return null
      })
      .then((result) => {
        if (!connection.isOpen) return
        if (!result || typeof result !== 'object') {
          // The auth message still gets its one answer before the close.
          this.#refuse(connection, envelope, 'Bad credentials', 'bad credentials')
          return
        }
        const user = (result as { user: U }).user
        const expiresAt = (result as { expiresAt?: number }).expiresAt
        if (!refresh) {
          clearTimeout(connection.authTimer)
          this.expireAt(connection, expiresAt)
          this.#steps.admit(connection, user, envelope.id)
          return
        }
        if (this.#users.idOf(user) !== connection.userId) {
          // A refresh may renew credentials, not swap the user of a live connection.
          this.#refuse(connection, envelope, 'Credentials of another user', 'credentials of another user')
          return
        }
        this.#answers.reply(connection, envelope.id, authReplyData(this.#users.serialize(user)))
        this.expireAt(connection, expiresAt)
        connection.user = user
        this.#steps.drain(connection)
      })
      .catch((err) => connection.log.error({ err }, 'failed completing authentication'))
  }

  #refuse (connection: Connection<U>, envelope: Envelope, message: string, reason: string): void {
    this.#answers.error(connection, envelope.id, wireErrors.unauthorized(message))
    connection.close(CloseCode.UNAUTHORIZED, reason)
  }

  /** Arms (or re-arms, on refresh) the close with 4005 when the credentials expire. */
  expireAt (connection: Connection<U>, expiresAt: number | undefined): void {
    clearTimeout(connection.expiryTimer)
    connection.expiryTimer = undefined
    if (typeof expiresAt !== 'number') return
    // setTimeout holds at most ~24.8 days; a later expiry re-arms when that passes.
    const delay = Math.min(Math.max(0, expiresAt - Date.now()), 2_147_483_647)
    connection.expiryTimer = setTimeout(() => {
      if (Date.now() < expiresAt) this.expireAt(connection, expiresAt)
      else connection.close(CloseCode.CREDENTIALS_EXPIRED, 'credentials expired')
    }, delay).unref()
  }
}
