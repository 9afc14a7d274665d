-- Count a chunk's failure to reach its destination in the job's retries.
-- KEYS: meta ; ARGV: (none)
-- Returns the job's retries, 0 for an unknown job.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HINCRBY', KEYS[1], 'retries', 1)
