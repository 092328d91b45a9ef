// The Lua scripts of the Redis broker. Each one runs atomically inside Redis, which is
// what makes a topic's offsets safe with many publishing nodes: reading the offset,
// appending to the history and PUBLISHing to every node happen as one step.
//
// Key layout (P is the broker's prefix, T a topic name):
//   P{T}:meta      hash  epoch, offset (last assigned), ttl (history ttl of the last publication)
//   P{T}:stream    stream  history; entry id `<offset>-0`, fields d (data), t (ms), x (except JSON)
//   P{T}:presence  hash  connection id -> "<node id>\n<member data>"
//   Pnodes         zset  node id -> ms at which the node counts as dead unless it beats again
//   Pnode:<id>     set   "<connection id>\n<topic>" for every member the node added
// Channels: Pch:T (publications and presence events of T), Pcontrol (commands).
//
// Time is Redis server time (TIME), so every node judges expiry by one clock; tests may
// pass their own clock as a number, in which case it is used instead (-1: server time).
import { createHash } from 'node:crypto'

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

-- The topic's epoch, offset and history ttl; a topic seen for the first time (or
-- whose meta expired, or after a flush) gets the caller's fresh epoch, and any stream
-- left behind is dropped: its offsets belong to the old epoch.
local function meta_of (meta, stream, candidate, metaTtl)
  local m = redis.call('HMGET', meta, 'epoch', 'offset', 'ttl')
  if m[1] then return m[1], tonumber(m[2]), tonumber(m[3] or '0') end
  redis.call('DEL', stream)
  redis.call('HSET', meta, 'epoch', candidate, 'offset', 0)
  if metaTtl > 0 then redis.call('PEXPIRE', meta, metaTtl) end
  return candidate, 0, 0
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
`

/**
 * KEYS meta, stream. ARGV 1 epoch candidate, 2 now, 3 ephemeral '1'|'0', 4 history
 * size, 5 history ttl, 6 meta ttl, 7 stream expiry (ms, 0 none), 8 channel, 9 origin,
 * 10 except JSON or '', 11 data. Returns { offset, epoch }.
 *
 * Messages on the channel: `m\n<offset>\n<epoch>\n<origin>\n<except>\n<data>`, or
 * `e\n<epoch>\n<origin>\n<except>\n<data>` for an ephemeral publication.
 */
export const PUBLISH = script(2, `
local metaTtl = tonumber(ARGV[6])
local epoch, offset = meta_of(KEYS[1], KEYS[2], ARGV[1], metaTtl)
if ARGV[3] == '1' then
  redis.call('PUBLISH', ARGV[8], 'e\\n' .. epoch .. '\\n' .. ARGV[9] .. '\\n' .. ARGV[10] .. '\\n' .. ARGV[11])
  return { offset, epoch }
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
redis.call('PUBLISH', ARGV[8], 'm\\n' .. int(offset) .. '\\n' .. epoch .. '\\n' .. ARGV[9] .. '\\n' .. ARGV[10] .. '\\n' .. ARGV[11])
return { offset, epoch }
`)

/**
 * KEYS meta, stream. ARGV 1 epoch candidate, 2 now, 3 meta ttl, 4 mode, 5 since
 * offset, 6 since epoch, 7 limit.
 * Mode 'p' (position): { offset, epoch }.
 * Mode 'r' (recover): { offset, epoch, recovered, { data, except, … } } — every entry
 *   after `since`, all or nothing; their offsets are since + 1, since + 2…
 * Mode 'h' (history): { offset, epoch, 1, { offset, data, except, … } } — the latest
 *   `limit` entries still alive, oldest first.
 */
export const READ = script(2, `
local epoch, offset, ttl = meta_of(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[3]))
local mode = ARGV[4]
if mode == 'p' then return { offset, epoch } end
local limit = tonumber(ARGV[7])
local cutoff = -1
if ttl > 0 then cutoff = clock(ARGV[2]) - ttl end
local out = {}
if mode == 'r' then
  local since = tonumber(ARGV[5])
  if ARGV[6] ~= epoch or since > offset then return { offset, epoch, 0 } end
  local missed = offset - since
  if missed == 0 then return { offset, epoch, 1, out } end
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
  return { offset, epoch, 1, out }
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
 * KEYS nodes, node set, presence hash. ARGV 1 node id, 2 now, 3 presence ttl,
 * 4 connection id, 5 member data, 6 channel, 7 only-if-absent '1'|'0', 8 topic.
 * Adds the member and announces `j\n<connection id>\n<data>`. Returns whether the node
 * was alive before (see touch).
 */
export const JOIN = script(3, `
local alive = touch(KEYS[1], ARGV[1], clock(ARGV[2]), tonumber(ARGV[3]))
if ARGV[7] == '1' and redis.call('HEXISTS', KEYS[3], ARGV[4]) == 1 then return alive end
redis.call('HSET', KEYS[3], ARGV[4], ARGV[1] .. '\\n' .. ARGV[5])
redis.call('SADD', KEYS[2], ARGV[4] .. '\\n' .. ARGV[8])
redis.call('PUBLISH', ARGV[6], 'j\\n' .. ARGV[4] .. '\\n' .. ARGV[5])
return alive
`)

/**
 * KEYS presence hash. ARGV 1 prefix, 2 connection id, 3 topic, 4 channel.
 * Removes the member and announces `l\n<connection id>\n<data>`, once: 0 when it was
 * not there (already left, or swept).
 */
export const LEAVE = script(1, `
local v = redis.call('HGET', KEYS[1], ARGV[2])
if not v then return 0 end
local nl = string.find(v, '\\n', 1, true)
redis.call('HDEL', KEYS[1], ARGV[2])
redis.call('SREM', ARGV[1] .. 'node:' .. string.sub(v, 1, nl - 1), ARGV[2] .. '\\n' .. ARGV[3])
redis.call('PUBLISH', ARGV[4], 'l\\n' .. ARGV[2] .. '\\n' .. string.sub(v, nl + 1))
return 1
`)

/**
 * KEYS nodes. ARGV 1 node id, 2 now, 3 presence ttl. The node's heartbeat: returns
 * whether it was alive before.
 */
export const BEAT = script(1, `
return touch(KEYS[1], ARGV[1], clock(ARGV[2]), tonumber(ARGV[3]))
`)

/**
 * KEYS nodes. ARGV 1 prefix, 2 now, 3 batch size, 4 node id ('' for the first dead one).
 * Removes up to `batch` members of that node, announcing a leave for each; SPOP hands
 * each member to exactly one caller, so concurrent sweepers never announce one twice.
 * Returns 0 when there was no dead node, 1 when the node is done (and forgotten), 2 when
 * it has members left.
 */
export const REAP = script(1, `
local node = ARGV[4]
if node == '' then
  local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', int(clock(ARGV[2])), 'LIMIT', 0, 1)
  if #dead == 0 then return 0 end
  node = dead[1]
end
local set = ARGV[1] .. 'node:' .. node
local owned = node .. '\\n'
for _, e in ipairs(redis.call('SPOP', set, tonumber(ARGV[3]))) do
  local nl = string.find(e, '\\n', 1, true)
  local conn = string.sub(e, 1, nl - 1)
  local topic = string.sub(e, nl + 1)
  local hash = ARGV[1] .. '{' .. topic .. '}:presence'
  local v = redis.call('HGET', hash, conn)
  if v and string.sub(v, 1, #owned) == owned then
    redis.call('HDEL', hash, conn)
    redis.call('PUBLISH', ARGV[1] .. 'ch:' .. topic, 'l\\n' .. conn .. '\\n' .. string.sub(v, #owned + 1))
  end
end
if redis.call('SCARD', set) == 0 then
  redis.call('ZREM', KEYS[1], node)
  return 1
end
return 2
`)

/**
 * KEYS presence hash, nodes. ARGV 1 now. The members whose node is alive, as a flat
 * list { connection id, data, … }; members of a dead node not swept yet are left out.
 */
export const MEMBERS = script(2, `
local now = clock(ARGV[1])
local all = redis.call('HGETALL', KEYS[1])
local alive = {}
local out = {}
for i = 1, #all, 2 do
  local v = all[i + 1]
  local nl = string.find(v, '\\n', 1, true)
  local node = string.sub(v, 1, nl - 1)
  if alive[node] == nil then
    local s = redis.call('ZSCORE', KEYS[2], node)
    alive[node] = (s and tonumber(s) > now) or false
  end
  if alive[node] then
    out[#out + 1] = all[i]
    out[#out + 1] = string.sub(v, nl + 1)
  end
end
return out
`)
