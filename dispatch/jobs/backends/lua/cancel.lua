-- Cancels the job unless it has finished.
-- KEYS: meta ; ARGV: -
-- Returns 1 when cancelled, else 0.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'finished') or '0') > 0 then return 0 end
redis.call('HSET', KEYS[1], 'cancelled', '1', 'state', 'cancelled')
return 1
