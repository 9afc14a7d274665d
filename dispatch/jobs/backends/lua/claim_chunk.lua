-- Takes a chunk's lock under a lease and watches it; marks the job running. A claimed
-- chunk is no longer watched as unclaimed.
-- KEYS: lock leases unclaimed meta (+ the other job keys, to touch)
-- ARGV: holder, lease ms, member ("<job> <chunk>"), ttl ms, now s
-- Returns -1 (unknown job), 0 (held by another) or 1.
if redis.call('EXISTS', KEYS[4]) == 0 then return -1 end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[2], now_ms('') + tonumber(ARGV[2]), ARGV[3])
redis.call('ZREM', KEYS[3], ARGV[3])
if redis.call('HGET', KEYS[4], 'state') == 'queued' then
  redis.call('HSET', KEYS[4], 'state', 'running')
end
if tonumber(redis.call('HGET', KEYS[4], 'started') or '0') == 0 then
  redis.call('HSET', KEYS[4], 'started', ARGV[5])
end
touch(tonumber(ARGV[4]))
return 1
