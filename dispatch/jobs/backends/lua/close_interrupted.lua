-- Closes, each once, the open jobs whose submitter's lease ran out (it died while
-- scanning): the job is marked "submission interrupted after N files" (N: the files it
-- has), takes no more chunks and ends once the chunks it has are done.
-- KEYS: submissions ; ARGV: prefix, now ms ('' = server clock), limit, ttl ms, now s
-- Touches the keys of the jobs it derives from the prefix, which a single Redis (not a
-- cluster) allows. Returns the ids of the jobs closed.
local now = now_ms(ARGV[2])
local ttl = tonumber(ARGV[4])
local out = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
for _, job in ipairs(due) do
  redis.call('ZREM', KEYS[1], job)
  local base = ARGV[1] .. ':job:' .. job .. ':'
  local meta = base .. 'meta'
  if redis.call('HGET', meta, 'open') == '1' then
    local files = redis.call('HGET', meta, 'total_files') or '0'
    redis.call('HSET', meta, 'open', '0', 'updated', ARGV[5],
               'interrupted', 'submission interrupted after ' .. files .. ' files')
    finish_job(meta, base .. 'done', base .. 'end', ARGV[5], ttl)
    table.insert(out, job)
  end
end
return out
