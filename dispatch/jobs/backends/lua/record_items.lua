-- record_one / record_at: one file's outcome, unless the file is already STORED
-- (returns 0). Its counters in the job's meta hash (KEYS[1]) go up at once, or with
-- ``acc`` (a table) are summed there for the caller to add in one HINCRBY per counter.
-- Expects KEYS: meta chunks outcomes stored failures done attempts end codes details.
--
-- A chunk's files have their outcomes in one string (KEYS[9], field: chunk id), five
-- bytes per file in the chunk's order: a code (CODES), then for a plain stored file the
-- C-STORE time in microseconds (32 bits, big-endian). Every outcome but a plain stored
-- one is kept whole, as JSON, in KEYS[10] under "<chunk id> <index>". Files that belong
-- to no chunk (found unusable by the scan) have their JSON in KEYS[3] by path, and
-- KEYS[4] holds those of them STORED.
local CODES = {'stored', 'stored', 'failed', 'not_sent'}  -- 0: none; 1: plain stored
local function bump(acc, field, by)
  if acc then
    acc[field] = (acc[field] or 0) + by
  else
    redis.call('HINCRBY', KEYS[1], field, by)
  end
end
local function record_one(path, data, kind, fkey, nbytes, acc)
  if redis.call('SISMEMBER', KEYS[4], path) == 1 then return 0 end
  local prev = redis.call('HGET', KEYS[3], path)
  if prev then
    local p = cjson.decode(prev)
    bump(acc, p['outcome'], -1)
    if p['failure_key'] and p['failure_key'] ~= '' then
      redis.call('HINCRBY', KEYS[5], p['failure_key'], -1)
    end
  end
  redis.call('HSET', KEYS[3], path, data)
  bump(acc, kind, 1)
  if kind == 'stored' then
    redis.call('SADD', KEYS[4], path)
    bump(acc, 'bytes_stored', tonumber(nbytes))
  end
  if fkey ~= '' then redis.call('HINCRBY', KEYS[5], fkey, 1) end
  return 1
end
-- forget_at: uncounts the outcome (code ``prev``, not 0) of file ``idx`` of chunk
-- ``cid`` and drops its details; ``acc`` as above.
local function forget_at(cid, idx, prev, acc)
  bump(acc, CODES[prev], -1)
  if prev == 1 then return end
  local field = cid .. ' ' .. idx
  local d = redis.call('HGET', KEYS[10], field)
  if d then
    local fk = cjson.decode(d)['failure_key']
    if type(fk) == 'string' and fk ~= '' then redis.call('HINCRBY', KEYS[5], fk, -1) end
    redis.call('HDEL', KEYS[10], field)
  end
end
-- record_at: the outcome of file ``idx`` (0-based) of a chunk whose string is ``vec``;
-- returns the flag and the string changed.
local function record_at(vec, cid, idx, code, micros, data, fkey, nbytes, acc)
  local pos = idx * 5 + 1
  local prev = string.byte(vec, pos)
  if prev == 1 or prev == 2 then return 0, vec end
  if prev ~= 0 then forget_at(cid, idx, prev, acc) end
  local us = tonumber(micros)
  local cell = string.char(code, math.floor(us / 16777216) % 256, math.floor(us / 65536) % 256,
                           math.floor(us / 256) % 256, us % 256)
  vec = string.sub(vec, 1, pos - 1) .. cell .. string.sub(vec, pos + 5)
  if data ~= '' then redis.call('HSET', KEYS[10], cid .. ' ' .. idx, data) end
  local kind = CODES[code]
  bump(acc, kind, 1)
  if kind == 'stored' then bump(acc, 'bytes_stored', tonumber(nbytes)) end
  if fkey ~= '' then redis.call('HINCRBY', KEYS[5], fkey, 1) end
  return 1, vec
end
-- A JSON object: "l", outcomes of files in no chunk, each [path, json, kind, failure
-- key, bytes]; "g", per chunk [chunk id, its file count, outcomes each [index, code,
-- microseconds, json ('' for a plain stored file), failure key, bytes]]. One script
-- argument for any number of outcomes (redis-py would encode them one by one). The meta
-- counters are summed and added once. Returns one 0/1 per outcome, those of "l" first,
-- then those of "g" in order.
local function record_items(items_json)
  local out, acc = {}, {}
  local items = cjson.decode(items_json)
  for _, it in ipairs(items['l']) do
    out[#out + 1] = record_one(it[1], it[2], it[3], it[4], it[5], acc)
  end
  for _, group in ipairs(items['g']) do
    local cid = group[1]
    local vec = redis.call('HGET', KEYS[9], cid) or string.rep('\0', 5 * tonumber(group[2]))
    local flag
    for _, it in ipairs(group[3]) do
      flag, vec = record_at(vec, cid, it[1], it[2], it[3], it[4], it[5], it[6], acc)
      out[#out + 1] = flag
    end
    redis.call('HSET', KEYS[9], cid, vec)
  end
  for field, by in pairs(acc) do
    if by ~= 0 then redis.call('HINCRBY', KEYS[1], field, by) end
  end
  return out
end
