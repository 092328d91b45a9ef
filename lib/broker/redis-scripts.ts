// The Lua scripts of the Redis broker. Each one runs atomically inside Redis, which is
// what makes a topic's offsets safe with many publishing nodes: reading the offset,
// appending to the history and PUBLISHing to every node happen as one step.
//
// Every key a script touches is one of its KEYS, and the KEYS of one call share a hash
// slot, so the scripts run unchanged on Redis Cluster (the key layout is redis-keys.ts).
// Scripts that announce something take the channel and the publish command as
// arguments: PUBLISH on a standalone Redis, SPUBLISH (sharded, kept on the shard that
// owns the topic) on a cluster.
//
// Time is Redis server time (TIME), so every node judges expiry by one clock; tests may
// pass their own clock as a number, in which case it is used instead (-1: server time).
import { createHash } from 'node:crypto'
import { IDEMPOTENCY_CLAIM, IDEMPOTENCY_SETTLE } from './redis-idempotency.js'

export interface LuaScript {
  readonly lua: string
  readonly sha: string
  readonly keys: number
}

function script (keys: number, body: string): LuaScript {
  const lua = COMMON + body
  return { lua, keys, sha: createHash('sha1').update(lua).digest('hex') }
}

const COMMON = `
local function clock (arg)
  local now = tonumber(arg)
  if now >= 0 then return now end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function int (n)
  return string.format('%.0f', n)
end

-- The topic's epoch, offset and history ttl, then the lineage fields: the replication
-- id of the Redis that last published to it, and (after a fork) the epoch it forked
-- from and the offset of the fork. A topic seen for the first time (or whose meta
-- expired, or after a flush) gets the caller's fresh epoch, and any stream left behind
-- is dropped: its offsets belong to the old epoch.
local function meta_of (meta, stream, candidate, metaTtl)
  local m = redis.call('HMGET', meta, 'epoch', 'offset', 'ttl', 'rid', 'parent', 'fork')
  if m[1] then return m[1], tonumber(m[2]), tonumber(m[3] or '0'), m[4], m[5], tonumber(m[6] or '0') end
  redis.call('DEL', stream)
  redis.call('HSET', meta, 'epoch', candidate, 'offset', 0)
  if metaTtl > 0 then redis.call('PEXPIRE', meta, metaTtl) end
  return candidate, 0, 0, false, false, 0
end

-- The replication id of the Redis running the script. A promoted replica gets a new one,
-- and so does a Redis that restarted: either may lack publications that were
-- acknowledged (replication is asynchronous), so their offsets must not be handed out
-- again under the epoch subscribers saw them in.
local function replid ()
  -- pcall: an ACL user without INFO (it is in @dangerous) publishes on, undetected.
  local info = redis.pcall('INFO', 'replication')
  if type(info) ~= 'string' then return '' end
  return string.match(info, 'master_replid:(%w+)') or ''
end

-- Starts a new epoch that continues the current one up to offset: a position at or
-- before the fork is common to both (READ recovers across it), anything after it in
-- the old epoch may be lost and is not. The stream keeps what the two share; entries
-- past the fork (a stream ahead of its meta) go, and its last id comes back to the
-- fork so that the next publication's id is free.
local function fork (meta, stream, epoch, offset, candidate, rid)
  local later = redis.call('XRANGE', stream, int(offset + 1), '+')
  for _, e in ipairs(later) do redis.call('XDEL', stream, e[1]) end
  if redis.call('EXISTS', stream) == 1 then redis.call('XSETID', stream, int(offset) .. '-0') end
  redis.call('HSET', meta, 'epoch', candidate, 'parent', epoch, 'fork', int(offset), 'rid', rid)
  return candidate
end

local function fields (f)
  local d, t, x = '', 0, ''
  for j = 1, #f, 2 do
    local k = f[j]
    if k == 'd' then d = f[j + 1] elseif k == 't' then t = tonumber(f[j + 1]) elseif k == 'x' then x = f[j + 1] end
  end
  return d, t, x
end

-- Marks a node alive until now + ttl; 1 when it was alive already, 0 when it was
-- unknown or expired (so its members may have been swept and must be added again).
local function touch (nodes, node, now, ttl)
  local s = redis.call('ZSCORE', nodes, node)
  redis.call('ZADD', nodes, int(now + ttl), node)
  if s and tonumber(s) > now then return 1 end
  return 0
end

-- Removes a presence member and announces its leave, when it is there and (with an
-- owner given) belongs to that node. Returns the owner's node id, or false.
local function remove_member (hash, conn, owner, cmd, channel)
  local v = redis.call('HGET', hash, conn)
  if not v then return false end
  local nl = string.find(v, '\\n', 1, true)
  local node = string.sub(v, 1, nl - 1)
  if owner ~= '' and node ~= owner then return false end
  redis.call('HDEL', hash, conn)
  redis.call(cmd, channel, 'l\\n' .. conn .. '\\n' .. string.sub(v, nl + 1))
  return node
end
`

/**
 * KEYS meta, stream. ARGV 1 epoch candidate, 2 now, 3 ephemeral '1'|'0', 4 history
 * size, 5 history ttl, 6 meta ttl, 7 stream expiry (ms, 0 none), 8 channel, 9 origin,
 * 10 except JSON or '', 11 data, 12 publish command. Returns { offset, epoch }.
 *
 * Messages on the channel: `m\n<offset>\n<epoch>\n<origin>\n<except>\n<data>`, or
 * `e\n<epoch>\n<origin>\n<except>\n<data>` for an ephemeral publication.
 */
export const PUBLISH = script(2, `
local metaTtl = tonumber(ARGV[6])
local epoch, offset, _, known = meta_of(KEYS[1], KEYS[2], ARGV[1], metaTtl)
if ARGV[3] == '1' then
  redis.call(ARGV[12], ARGV[8], 'e\\n' .. epoch .. '\\n' .. ARGV[9] .. '\\n' .. ARGV[10] .. '\\n' .. ARGV[11])
  return { offset, epoch }
end
local rid = replid()
if known ~= rid then
  -- Not the Redis that published last: fork before handing out the next offset. A
  -- topic without a recorded id (new, or older than this field) has nothing to lose.
  if known then epoch = fork(KEYS[1], KEYS[2], epoch, offset, ARGV[1], rid) else redis.call('HSET', KEYS[1], 'rid', rid) end
end
offset = offset + 1
local size = tonumber(ARGV[4])
if size > 0 then
  local id = int(offset) .. '-0'
  local now = int(clock(ARGV[2]))
  if ARGV[10] == '' then
    redis.call('XADD', KEYS[2], 'MAXLEN', size, id, 'd', ARGV[11], 't', now)
  else
    redis.call('XADD', KEYS[2], 'MAXLEN', size, id, 'd', ARGV[11], 't', now, 'x', ARGV[10])
  end
  redis.call('HSET', KEYS[1], 'offset', int(offset), 'ttl', ARGV[5])
  local expire = tonumber(ARGV[7])
  if expire > 0 then redis.call('PEXPIRE', KEYS[2], expire) end
else
  redis.call('HSET', KEYS[1], 'offset', int(offset))
end
if metaTtl > 0 then redis.call('PEXPIRE', KEYS[1], metaTtl) end
redis.call(ARGV[12], ARGV[8], 'm\\n' .. int(offset) .. '\\n' .. epoch .. '\\n' .. ARGV[9] .. '\\n' .. ARGV[10] .. '\\n' .. ARGV[11])
return { offset, epoch }
`)

/**
 * KEYS meta, stream. ARGV 1 epoch candidate, 2 now, 3 meta ttl, 4 mode, 5 since
 * offset, 6 since epoch, 7 limit.
 * Mode 'p' (position): { offset, epoch }.
 * Mode 'r' (recover): { offset, epoch, recovered, { data, except, … }, from } — every
 *   entry after `from`, all or nothing; their offsets are from + 1, from + 2… Recovered,
 *   `from` is since. A `since` in another epoch is not recovered, and the current epoch
 *   is replayed from what its holder cannot have seen: after the fork when `since` is
 *   past it in the parent, else from offset 1 (a stream that started again).
 * Mode 'h' (history): { offset, epoch, 1, { offset, data, except, … } } — the latest
 *   `limit` entries still alive, oldest first.
 */
export const READ = script(2, `
local epoch, offset, ttl, _, parent, forkedAt = meta_of(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[3]))
local mode = ARGV[4]
if mode == 'p' then return { offset, epoch } end
local limit = tonumber(ARGV[7])
local cutoff = -1
if ttl > 0 then cutoff = clock(ARGV[2]) - ttl end
local out = {}
if mode == 'r' then
  local since = tonumber(ARGV[5])
  local recovered = 1
  if ARGV[6] ~= epoch then
    -- A position in the epoch this one forked from is good up to the fork: the entries
    -- after it in the stream are the current epoch's, and the client gets them in it.
    if not (parent and ARGV[6] == parent and since <= forkedAt) then
      -- Not recovered; what the current epoch has that the client cannot have seen is
      -- replayed: past the fork it saw the shared part, else it saw none of this stream.
      recovered = 0
      if parent and ARGV[6] == parent then since = forkedAt else since = 0 end
    end
  elseif since > offset then
    return { offset, epoch, 0 }
  end
  local missed = offset - since
  if missed == 0 then return { offset, epoch, recovered, out, since } end
  if missed > limit then return { offset, epoch, 0 } end
  local first = int(since + 1)
  local entries = redis.call('XRANGE', KEYS[2], first, '+', 'COUNT', missed)
  -- Ids are distinct offsets no greater than the current one: when there are exactly
  -- "missed" of them from since + 1 on, none is missing.
  if #entries ~= missed or entries[1][1] ~= first .. '-0' then return { offset, epoch, 0 } end
  for i, e in ipairs(entries) do
    local d, t, x = fields(e[2])
    -- Entries are appended in time order, so when the oldest needed one is alive, all are.
    if i == 1 and t <= cutoff then return { offset, epoch, 0 } end
    out[#out + 1] = d
    out[#out + 1] = x
  end
  return { offset, epoch, recovered, out, since }
end
if limit > 0 then
  local entries = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', limit)
  for i = #entries, 1, -1 do
    local e = entries[i]
    local d, t, x = fields(e[2])
    if t > cutoff then
      out[#out + 1] = string.match(e[1], '^%d+')
      out[#out + 1] = d
      out[#out + 1] = x
    end
  end
end
return { offset, epoch, 1, out }
`)

/**
 * KEYS meta, stream. ARGV 1 the epoch a node saw, 2 the offset it saw, 3 a new epoch.
 * After a failover the promoted replica may lack the last publications its master
 * acknowledged: the stream is behind what subscribers saw. Its offsets would be handed
 * out again for other publications, so the topic forks into a new epoch at what the
 * stream holds (clients at or before it recover across the fork, later ones are told
 * to start afresh). Returns the epoch now in force.
 */
export const REWIND = script(2, `
local m = redis.call('HMGET', KEYS[1], 'epoch', 'offset')
if m[1] == ARGV[1] and tonumber(m[2]) < tonumber(ARGV[2]) then
  return fork(KEYS[1], KEYS[2], m[1], tonumber(m[2]), ARGV[3], replid())
end
return m[1] or ''
`)

/**
 * KEYS nodes, node set. ARGV 1 node id, 2 now, 3 presence ttl, 4 "<connection id>\n<topic>".
 * The first half of a join: the member is recorded with its node (so a sweep finds it)
 * before it is added to the topic. Returns whether the node was alive before (see touch).
 */
export const CLAIM = script(2, `
local alive = touch(KEYS[1], ARGV[1], clock(ARGV[2]), tonumber(ARGV[3]))
redis.call('SADD', KEYS[2], ARGV[4])
return alive
`)

/**
 * KEYS presence hash. ARGV 1 node id, 2 connection id, 3 member data, 4 only-if-absent
 * '1'|'0', 5 publish command, 6 channel. Adds the member and announces
 * `j\n<connection id>\n<data>`; 0 when only-if-absent found it there already.
 */
export const JOIN = script(1, `
if ARGV[4] == '1' and redis.call('HEXISTS', KEYS[1], ARGV[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[1] .. '\\n' .. ARGV[3])
redis.call(ARGV[5], ARGV[6], 'j\\n' .. ARGV[2] .. '\\n' .. ARGV[3])
return 1
`)

/**
 * KEYS presence hash. ARGV 1 connection id, 2 owner node id ('' any), 3 publish command,
 * 4 channel. Removes the member and announces `l\n<connection id>\n<data>`, once: the
 * id of the node that held it, or nil when it was not there (already left, or swept).
 */
export const LEAVE = script(1, `
return remove_member(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
`)

/**
 * KEYS nodes. ARGV 1 node id, 2 now, 3 presence ttl. The node's heartbeat: returns
 * whether it was alive before.
 */
export const BEAT = script(1, `
return touch(KEYS[1], ARGV[1], clock(ARGV[2]), tonumber(ARGV[3]))
`)

/** KEYS nodes. ARGV 1 now. The id of a node that stopped beating, or nil. */
export const DEAD = script(1, `
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', int(clock(ARGV[1])), 'LIMIT', 0, 1)
return dead[1]
`)

/**
 * KEYS nodes, node set. ARGV 1 node id, 2 now, 3 '1' when the node itself is closing,
 * then the set entries just swept. Drops them from the set, unless the node beat again
 * meanwhile (it is adding its members back: the entries are its own again). Returns
 * 1 when the node is done with (and forgotten), 2 when it has entries left, 3 when it
 * is alive again.
 */
export const FORGET = script(2, `
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if ARGV[3] ~= '1' and s and tonumber(s) > clock(ARGV[2]) then return 3 end
if #ARGV > 3 then redis.call('SREM', KEYS[2], unpack(ARGV, 4)) end
if redis.call('SCARD', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 2
`)

/**
 * KEYS nodes. ARGV 1 now, then node ids. For each, 1 when it is alive, 0 when not (so
 * its members, not swept yet, are left out of a presence list).
 */
export const ALIVE = script(1, `
local now = clock(ARGV[1])
local out = {}
for i = 2, #ARGV do
  local s = redis.call('ZSCORE', KEYS[1], ARGV[i])
  out[#out + 1] = (s and tonumber(s) > now) and 1 or 0
end
return out
`)

export const SCRIPTS = [ALIVE, BEAT, CLAIM, DEAD, FORGET, JOIN, LEAVE, PUBLISH, READ, REWIND, IDEMPOTENCY_CLAIM, IDEMPOTENCY_SETTLE]
