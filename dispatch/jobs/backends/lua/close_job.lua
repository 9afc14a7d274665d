-- Records the scan's problems and closes the job.
-- KEYS: meta chunks outcomes stored failures done attempts end codes details
-- ARGV: ttl ms, now s, the problems as record_items takes them
-- Returns -1 (unknown job), 0, or 1 when closing finished the job.
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local n = #record_items(ARGV[3])
redis.call('HINCRBY', KEYS[1], 'total_files', n)
redis.call('HSET', KEYS[1], 'open', '0', 'updated', ARGV[2])
touch(tonumber(ARGV[1]))
return finish_job(KEYS[1], KEYS[6], KEYS[8], ARGV[2], tonumber(ARGV[1]))
