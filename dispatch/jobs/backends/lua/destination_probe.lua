-- May a chunk try a destination now? Yes when it is not waiting; when it is and its
-- next try is due, yes for this caller only: the next try moves a hold ahead.
-- KEYS: destination ; ARGV: now s, hold s
-- Returns {1 or 0, the state as read (HGETALL)}.
local state = redis.call('HGETALL', KEYS[1])
local since = tonumber(redis.call('HGET', KEYS[1], 'since') or '0') or 0
if since <= 0 then return {1, state} end
local now = tonumber(ARGV[1])
local next_try = tonumber(redis.call('HGET', KEYS[1], 'next_try') or '0') or 0
if next_try > now then return {0, state} end
redis.call('HSET', KEYS[1], 'next_try', tostring(now + tonumber(ARGV[2])))
return {1, state}
