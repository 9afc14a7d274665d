-- Extends the holder's lease on a chunk.
-- KEYS: lock leases ; ARGV: holder, lease ms, member
-- Returns 0 when the holder lost the lock, else 1.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], now_ms('') + tonumber(ARGV[2]), ARGV[3])
return 1
