-- Watches a chunk until a deadline relative to the server's clock.
-- KEYS: leases ; ARGV: member, delay ms
redis.call('ZADD', KEYS[1], now_ms('') + tonumber(ARGV[2]), ARGV[1])
return 1
