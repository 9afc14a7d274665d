-- The submitter's lease on an open job (its inputs are still being scanned): the job
-- is due to close_interrupted unless renewed by then.
-- KEYS: submissions meta ; ARGV: job id, lease ms, now ms ('' = server clock)
-- Returns -1 (unknown job), 0 (the job is no longer open: closed by its submitter, or as
-- interrupted), 1.
if redis.call('EXISTS', KEYS[2]) == 0 then return -1 end
if redis.call('HGET', KEYS[2], 'open') ~= '1' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
redis.call('ZADD', KEYS[1], now_ms(ARGV[3]) + tonumber(ARGV[2]), ARGV[1])
return 1
