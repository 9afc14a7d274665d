-- Record files' storage commitment states, counted in the job's meta hash.
-- KEYS[1] meta, KEYS[2] commitment (path -> "state<TAB>reason<TAB>transaction")
-- ARGV[1] TTL (ms), ARGV[2] transaction UID, then path, state, reason per file.
-- "committed" is final; "commit_pending" never replaces what the same transaction's
-- report said; otherwise the newest state wins. Returns how many states changed.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local tx = ARGV[2]
local changed = 0
for i = 3, #ARGV, 3 do
  local path, state, reason = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local old = redis.call('HGET', KEYS[2], path)
  local write = true
  if old then
    local ostate, otx = string.match(old, '^([^\t]*)\t.*\t([^\t]*)$')
    if ostate == 'committed' or (state == 'commit_pending' and otx == tx) then
      write = false
    else
      redis.call('HINCRBY', KEYS[1], ostate, -1)
    end
  end
  if write then
    redis.call('HSET', KEYS[2], path, state .. '\t' .. reason .. '\t' .. tx)
    redis.call('HINCRBY', KEYS[1], state, 1)
    changed = changed + 1
  end
end
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return changed
