-- Takes a slot of a destination unless its limit of live holders is reached (a holder
-- that has one renews it).
-- KEYS: slots ; ARGV: holder, limit, lease ms, now ms ('' = server clock)
-- Returns 1 when the holder has the slot, else 0.
local now = now_ms(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local lease = tonumber(ARGV[3])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease * 10)
return 1
