-- Takes a finished job back to queued: the chunks holding unstored files are no longer
-- done, and those files' outcomes are forgotten (uncounted).
-- KEYS: meta chunks outcomes stored failures done attempts end codes details
-- ARGV: now s, ttl ms
-- Returns {'unknown'}, {'running'} or {'ok', chunk ids reopened...}.
if redis.call('EXISTS', KEYS[1]) == 0 then return {'unknown'} end
if tonumber(redis.call('HGET', KEYS[1], 'finished') or '0') == 0 then return {'running'} end
local out = {'ok'}
for _, cid in ipairs(cjson.decode(redis.call('HGET', KEYS[1], 'order') or '[]')) do
  if redis.call('HEXISTS', KEYS[2], cid) == 1 then
    local vec = redis.call('HGET', KEYS[9], cid)
    -- No outcome at all yet: every file of the chunk is to send.
    local reopened = not vec
    if vec then
      local cells = {}
      for idx = 0, #vec / 5 - 1 do
        local pos = idx * 5 + 1
        local prev = string.byte(vec, pos)
        if prev == 1 or prev == 2 then
          cells[#cells + 1] = string.sub(vec, pos, pos + 4)
        else
          reopened = true
          if prev ~= 0 then forget_at(cid, idx, prev, nil) end
          cells[#cells + 1] = '\0\0\0\0\0'
        end
      end
      if reopened then redis.call('HSET', KEYS[9], cid, table.concat(cells)) end
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
