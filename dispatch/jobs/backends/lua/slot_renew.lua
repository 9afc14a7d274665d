-- Extends a holder's slot lease.
-- KEYS: slots ; ARGV: holder, lease ms, now ms ('' = server clock)
-- Returns 0 when it has no live slot any more, else 1.
local now = now_ms(ARGV[3])
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) <= now then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 10)
return 1
