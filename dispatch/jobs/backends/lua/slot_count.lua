-- How many live holders a destination has.
-- KEYS: slots ; ARGV: now ms ('' = server clock)
return redis.call('ZCOUNT', KEYS[1], '(' .. now_ms(ARGV[1]), '+inf')
