// Idempotency records in Redis: one string key per (user, route, key), holding either
// a pending marker `p<token>` of the run under way or the remembered answer `a<answer>`.
// Each script touches that one declared key, and the key carries a `{…}` hash tag, so
// it works the same on a single Redis and on a cluster. Expiry is Redis's own (PX),
// one clock for every node.
import { createHash } from 'node:crypto'
import type { IdempotencyScope } from './types.js'

export interface IdempotencyScript {
  readonly lua: string
  readonly sha: string
  readonly keys: number
}

function script (lua: string): IdempotencyScript {
  return { lua, keys: 1, sha: createHash('sha1').update(lua).digest('hex') }
}

/**
 * KEYS[1] the record; ARGV[1] token, ARGV[2] pending ms.
 * Claims a free key (or renews one's own claim); otherwise tells what holds it.
 */
export const CLAIM = script(`
local v = redis.call('GET', KEYS[1])
if not v or v == 'p' .. ARGV[1] then
  redis.call('SET', KEYS[1], 'p' .. ARGV[1], 'PX', ARGV[2])
  return {'claimed'}
end
if string.sub(v, 1, 1) == 'p' then return {'pending'} end
return {'done', string.sub(v, 2)}
`)

/**
 * KEYS[1] the record; ARGV[1] token, ARGV[2] '1' to store an answer or '0' to drop the
 * claim, ARGV[3] the answer, ARGV[4] ttl ms. Only the claim's holder may settle it.
 */
export const SETTLE = script(`
if redis.call('GET', KEYS[1]) ~= 'p' .. ARGV[1] then return 0 end
if ARGV[2] == '1' then
  redis.call('SET', KEYS[1], 'a' .. ARGV[3], 'PX', ARGV[4])
else
  redis.call('DEL', KEYS[1])
end
return 1
`)

/**
 * The record's key: a digest of the scope, so a user id or key holding braces or
 * colons can neither move the hash tag nor collide with another scope.
 */
export function idempotencyKey (prefix: string, scope: IdempotencyScope): string {
  const digest = createHash('sha256').update(JSON.stringify([scope.userId, scope.route, scope.key])).digest('base64url')
  return `${prefix}{idem:${digest}}`
}
