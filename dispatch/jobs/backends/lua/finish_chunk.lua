-- Marks a chunk done (none: only checks whether the job is finished).
-- KEYS: meta done leases end (+ the other job keys, to touch)
-- ARGV: chunk id ('' = none), member, now s, ttl ms
-- Returns -1 (unknown job), or 1 when this finished the job, else 0.
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if ARGV[1] ~= '' then
  redis.call('SADD', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[2])
end
touch(tonumber(ARGV[4]))
return finish_job(KEYS[1], KEYS[2], KEYS[4], ARGV[3], tonumber(ARGV[4]))
