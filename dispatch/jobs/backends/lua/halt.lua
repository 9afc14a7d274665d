-- Halts the job for its first permanent failure.
-- KEYS: meta ; ARGV: path, reason
-- Returns -1 (unknown job), 0 (already halted) or 1.
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HGET', KEYS[1], 'halted') == '1' then return 0 end
redis.call('HSET', KEYS[1], 'halted', '1', 'halted_path', ARGV[1], 'halt_reason', ARGV[2])
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'queued' or state == 'running' then redis.call('HSET', KEYS[1], 'state', 'halted') end
return 1
