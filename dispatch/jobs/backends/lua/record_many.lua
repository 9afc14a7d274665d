-- Records outcomes (one or many: one round trip, one renewal of the TTLs).
-- KEYS: meta chunks outcomes stored failures done attempts end codes details
-- ARGV: ttl ms, now s, the outcomes as record_items takes them
-- Returns a string of one "0" or "1" per outcome (a reply redis-py reads in one piece,
-- unlike an array), or -1 for an unknown job.
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local out = record_items(ARGV[3])
redis.call('HSET', KEYS[1], 'updated', ARGV[2])
touch(tonumber(ARGV[1]))
return table.concat(out)
