// Who is on a connection: the user from the upgrade request (when Fastify hooks
// authenticate), a stable id for finding a user's connections, and the user as
// clients see it (auth reply, presence), serialised by the `userSchema` option.
import { Type } from '../wire/json-schema.js'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { ResolvedOptions } from './options.js'
import { onFirstUse, type SchemaCompiler } from '../wire/schema-compiler.js'

const DefaultUser = Type.Object({ id: Type.Optional(Type.Union([Type.String(), Type.Number()])) })

export interface Users {
  fromRequest: (request: FastifyRequest) => unknown
  idOf: (user: unknown) => string | undefined
  /** The user as JSON for clients; `{}` (logged) when it does not match userSchema. */
  serialize: (user: unknown) => string
}

export function users (options: Readonly<ResolvedOptions>, compiler: SchemaCompiler, log: FastifyBaseLogger): Users {
  // The app's schema is compiled now, so that a wrong one fails register; the default one, known good, on first use.
  const userSchema = options.userSchema
  const serializer = userSchema === undefined
    ? onFirstUse(() => compiler.serializer(DefaultUser, 'user', 'option "userSchema"'))
    : compiler.serializer(userSchema, 'user', 'option "userSchema"')
  return {
    fromRequest: options.getUser ?? defaultGetUser,
    idOf: options.userId ?? defaultUserId,
    serialize (user) {
      try {
        return serializer(typeof user === 'object' && user !== null ? user : { id: user })
      } catch (err) {
        log.error({ err }, 'user does not match option userSchema')
        return '{}'
      }
    }
  }
}

function defaultGetUser (request: FastifyRequest): unknown {
  return (request as FastifyRequest & { user?: unknown }).user
}

function defaultUserId (user: unknown): string | undefined {
  if (typeof user === 'string') return user
  if (typeof user === 'number') return String(user)
  if (user !== null && typeof user === 'object') {
    const id = (user as { id?: unknown }).id
    if (typeof id === 'string' || typeof id === 'number') return String(id)
  }
  return undefined
}
