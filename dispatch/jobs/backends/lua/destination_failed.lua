-- A worker could not reach a destination: waiting since now unless it was already, one
-- failure more, next try after the wait of dispatch.jobs.backoff.wait_s.
-- KEYS: destination ; ARGV: now s, error, base s, cap s, fraction, ttl ms
-- Returns the new state (HGETALL).
local now = tonumber(ARGV[1])
local since = tonumber(redis.call('HGET', KEYS[1], 'since') or '0') or 0
local failures = 0
if since > 0 then
  failures = tonumber(redis.call('HGET', KEYS[1], 'failures') or '0') or 0
else
  redis.call('HSET', KEYS[1], 'since', ARGV[1])
end
local ceiling = math.min(tonumber(ARGV[4]), tonumber(ARGV[3]) * 2 ^ math.min(failures, 64))
local fraction = math.min(math.max(tonumber(ARGV[5]), 0), 1)
local wait = ceiling / 2 * (1 + fraction)
redis.call('HSET', KEYS[1], 'failures', tostring(failures + 1), 'error', ARGV[2],
  'next_try', string.format('%.3f', now + wait))
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return redis.call('HGETALL', KEYS[1])
