-- Watches newly recorded chunks until they are first claimed: their task may never
-- have been published (the submitter died right after recording them).
-- KEYS: unclaimed ; ARGV: members ("<job> <chunk>")
local now = now_ms('')
for i = 1, #ARGV do
  redis.call('ZADD', KEYS[1], now, ARGV[i])
end
return #ARGV
