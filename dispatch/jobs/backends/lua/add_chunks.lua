-- Adds chunks to an open job, with their totals.
-- KEYS: meta chunks (+ the other job keys, to touch)
-- ARGV: ttl ms, now s, files, bytes, count, then per chunk: id, json
-- Returns -1 for an unknown job, else 1.
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local order = cjson.decode(redis.call('HGET', KEYS[1], 'order') or '[]')
for i = 6, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  order[#order + 1] = ARGV[i]
end
if #order > 0 then redis.call('HSET', KEYS[1], 'order', cjson.encode(order)) end
redis.call('HINCRBY', KEYS[1], 'chunks', ARGV[5])
redis.call('HINCRBY', KEYS[1], 'total_files', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'total_bytes', ARGV[4])
redis.call('HSET', KEYS[1], 'updated', ARGV[2])
touch(tonumber(ARGV[1]))
return 1
