-- touch(ttl): renew the TTL (ms) of every job key among KEYS (a chunk's lock keeps its
-- lease instead).
local function touch(ttl)
  for i = 1, #KEYS do
    local k = KEYS[i]
    if string.find(k, ':job:', 1, true) and not string.find(k, ':lock:', 1, true) then
      redis.call('PEXPIRE', k, ttl)
    end
  end
end
