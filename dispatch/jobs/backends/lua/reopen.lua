-- Takes a finished job back to queued: the chunks holding unstored files are no longer
-- done, and those files' outcomes are forgotten (uncounted).
-- KEYS: meta chunks outcomes stored failures done attempts end ; ARGV: now s, ttl ms
-- Returns {'unknown'}, {'running'} or {'ok', chunk ids reopened...}.
if redis.call('EXISTS', KEYS[1]) == 0 then return {'unknown'} end
if tonumber(redis.call('HGET', KEYS[1], 'finished') or '0') == 0 then return {'running'} end
local out = {'ok'}
for _, cid in ipairs(cjson.decode(redis.call('HGET', KEYS[1], 'order') or '[]')) do
  local raw = redis.call('HGET', KEYS[2], cid)
  if raw then
    local reopened = false
    for _, f in ipairs(cjson.decode(raw)['files']) do
      local path = f['path']
      if redis.call('SISMEMBER', KEYS[4], path) == 0 then
        reopened = true
        local prev = redis.call('HGET', KEYS[3], path)
        if prev then
          local p = cjson.decode(prev)
          redis.call('HINCRBY', KEYS[1], p['outcome'], -1)
          if type(p['failure_key']) == 'string' and p['failure_key'] ~= '' then
            redis.call('HINCRBY', KEYS[5], p['failure_key'], -1)
          end
          redis.call('HDEL', KEYS[3], path)
        end
      end
    end
    if reopened then
      redis.call('SREM', KEYS[6], cid)
      redis.call('HDEL', KEYS[7], cid)
      table.insert(out, cid)
    end
  end
end
if #out > 1 then
  redis.call('DEL', KEYS[8])
  redis.call('HSET', KEYS[1], 'state', 'queued', 'finished', 0, 'halted', '0',
             'halted_path', '', 'halt_reason', '', 'cancelled', '0', 'updated', ARGV[1])
  touch(tonumber(ARGV[2]))
end
return out
