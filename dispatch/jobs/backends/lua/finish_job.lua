-- finish_job: sets the job's final state once every chunk is done and the job is closed
-- (an open job is still being scanned: more chunks may come); pushes it on the end list.
-- Returns 1 when this call finished the job.
local function finish_job(meta, done, endkey, now, ttl)
  if tonumber(redis.call('HGET', meta, 'finished') or '0') > 0 then return 0 end
  if redis.call('HGET', meta, 'open') == '1' then return 0 end
  local total = tonumber(redis.call('HGET', meta, 'chunks') or '0')
  if redis.call('SCARD', done) < total then return 0 end
  local m = redis.call('HMGET', meta, 'cancelled', 'halted', 'stored', 'failed', 'not_sent',
                      'interrupted')
  local stored = tonumber(m[3] or '0')
  local bad = tonumber(m[4] or '0') + tonumber(m[5] or '0')
  local state
  if m[1] == '1' then state = 'cancelled'
  elseif m[2] == '1' then state = 'halted'
  elseif m[6] and m[6] ~= '' then state = 'interrupted'
  elseif bad == 0 then state = 'completed'
  elseif stored == 0 then state = 'failed'
  else state = 'completed with failures' end
  redis.call('HSET', meta, 'state', state, 'finished', now)
  redis.call('RPUSH', endkey, state)
  redis.call('PEXPIRE', endkey, ttl)
  return 1
end
