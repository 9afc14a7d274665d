-- Hands out, each once, the chunks whose watch ran out unclaimed and unfinished; and,
-- with a grace, the chunks recorded longer ago than it, never claimed, whose task is
-- neither queued nor reserved by a worker: their task was never published (handed out
-- again after each further grace while that stays so).
-- KEYS: leases unclaimed
-- ARGV: prefix, now ms ('' = server clock), limit, grace ms ('' = unclaimed chunks are
-- not looked at: the broker's queues are not in this Redis), broker key prefix (kombu's
-- global_keyprefix, '' = none)
-- Touches the job keys and the broker's lists it derives from the prefix and the jobs'
-- specs, which a single Redis (not a cluster) allows. Returns the members
-- ("<job> <chunk>") handed out.
local now = now_ms(ARGV[2])
local limit = tonumber(ARGV[3])
local out = {}

local function split(member)
  local sep = string.find(member, ' ', 1, true)
  local job = string.sub(member, 1, sep - 1)
  return job, string.sub(member, sep + 1), ARGV[1] .. ':job:' .. job .. ':'
end

local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)
for _, member in ipairs(due) do
  local _, chunk, base = split(member)
  if redis.call('EXISTS', base .. 'lock:' .. chunk) == 0 then
    redis.call('ZREM', KEYS[1], member)
    if redis.call('EXISTS', base .. 'meta') == 1
       and redis.call('SISMEMBER', base .. 'done', chunk) == 0 then
      table.insert(out, member)
    end
  end
end

if ARGV[4] == '' then return out end

-- "<job> <chunk>" of a task message (kombu's envelope, as Celery and the publisher
-- write it), from the repr of its arguments; nil for anything else.
local function task_member(message)
  local headers = type(message) == 'table' and message['headers']
  local args = type(headers) == 'table' and headers['argsrepr']
  if type(args) ~= 'string' then return nil end
  local job, chunk = string.match(args, "^[%[%(]'([^']*)', '([^']*)'[%]%)]$")
  if job then return job .. ' ' .. chunk end
  return nil
end

local function decoded(raw)
  local ok, value = pcall(cjson.decode, raw)
  if ok then return value end
  return nil
end

-- Tasks waiting in a queue's list, and tasks a worker has taken but not acknowledged
-- (kombu's 'unacked' hash: prefetched, or running): read once, when first needed.
-- Their keys carry kombu's global_keyprefix (ARGV[5], "" without one).
local broker_prefix = ARGV[5] or ''
local queued = {}
local reserved = nil
local function is_pending(queue, member)
  if queued[queue] == nil then
    local found = {}
    for _, raw in ipairs(redis.call('LRANGE', broker_prefix .. queue, 0, -1)) do
      local m = task_member(decoded(raw))
      if m then found[m] = true end
    end
    queued[queue] = found
  end
  if queued[queue][member] then return true end
  if reserved == nil then
    reserved = {}
    for _, raw in ipairs(redis.call('HVALS', broker_prefix .. 'unacked')) do
      local entry = decoded(raw)
      local m = type(entry) == 'table' and task_member(entry[1])
      if m then reserved[m] = true end
    end
  end
  return reserved[member] == true
end

local handed = {}
for _, member in ipairs(out) do handed[member] = true end
local old = now - tonumber(ARGV[4])
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', old, 'LIMIT', 0, limit)
for _, member in ipairs(stale) do
  local _, chunk, base = split(member)
  local raw_spec = redis.call('HGET', base .. 'meta', 'spec')
  if not raw_spec
     or redis.call('SISMEMBER', base .. 'done', chunk) == 1
     or redis.call('EXISTS', base .. 'lock:' .. chunk) == 1
     or redis.call('ZSCORE', KEYS[1], member) then
    -- Gone, or claimed at some point: the leases look after it from there.
    redis.call('ZREM', KEYS[2], member)
  elseif not handed[member] then
    local spec = decoded(raw_spec)
    local queue = type(spec) == 'table' and spec['queue'] or 'dispatch'
    if not is_pending(queue, member) then
      redis.call('ZADD', KEYS[2], now, member)
      table.insert(out, member)
    end
  end
end
return out
