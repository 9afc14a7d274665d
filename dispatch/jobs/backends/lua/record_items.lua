-- record_one: one file's outcome, unless the file is already STORED (returns 0). Its
-- counters in the job's meta hash (KEYS[1]) go up at once, or with ``acc`` (a table) are
-- summed there for the caller to add in one HINCRBY per counter.
-- Expects KEYS: meta chunks outcomes stored failures.
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
-- A JSON array holding per outcome [path, json, kind, failure key, bytes]: one script
-- argument for any number of outcomes (redis-py would encode five per outcome one by
-- one). The meta counters are summed and added once. Returns one 0/1 per outcome.
local function record_items(items_json)
  local out, acc = {}, {}
  local items = cjson.decode(items_json)
  for i = 1, #items do
    local it = items[i]
    out[#out + 1] = record_one(it[1], it[2], it[3], it[4], it[5], acc)
  end
  for field, by in pairs(acc) do
    if by ~= 0 then redis.call('HINCRBY', KEYS[1], field, by) end
  end
  return out
end
