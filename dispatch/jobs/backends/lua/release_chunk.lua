-- Drops the holder's lock on a chunk (nothing for anyone else).
-- KEYS: lock ; ARGV: holder
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
