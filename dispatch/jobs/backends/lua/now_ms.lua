-- now_ms(arg): the time in ms given by the caller (tests), else the Redis server's own
-- clock, so that hosts need not agree on the time.
local function now_ms(arg)
  if arg and arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
