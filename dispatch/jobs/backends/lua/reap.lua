-- Hands out the chunks whose watch ran out unclaimed and unfinished, each once.
-- KEYS: leases ; ARGV: prefix, now ms ('' = server clock), limit
-- Touches the job keys it derives from the prefix, which a single Redis (not a
-- cluster) allows. Returns the members ("<job> <chunk>") handed out.
local limit = tonumber(ARGV[3])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms(ARGV[2]), 'LIMIT', 0, limit)
local out = {}
for _, member in ipairs(due) do
  local sep = string.find(member, ' ', 1, true)
  local job = string.sub(member, 1, sep - 1)
  local chunk = string.sub(member, sep + 1)
  local base = ARGV[1] .. ':job:' .. job .. ':'
  if redis.call('EXISTS', base .. 'lock:' .. chunk) == 0 then
    redis.call('ZREM', KEYS[1], member)
    if redis.call('EXISTS', base .. 'meta') == 1
       and redis.call('SISMEMBER', base .. 'done', chunk) == 0 then
      table.insert(out, member)
    end
  end
end
return out
