"""The :class:`~dispatch.jobs.store.JobStore` of a cluster: every record in Redis.

Keys (``P`` is the prefix, ``dispatch`` by default; one job's keys share
``P:job:<id>:``)::

    P:job:<id>:meta        hash: spec JSON, state, totals, counters, halt/cancel, times
    P:job:<id>:chunks      hash: chunk id -> chunk JSON
    P:job:<id>:outcomes    hash: path -> outcome JSON (the per-file report)
    P:job:<id>:stored      set: paths confirmed STORED
    P:job:<id>:failures    hash: failure key -> count
    P:job:<id>:done        set: chunk ids finished
    P:job:<id>:attempts    hash: chunk id -> transient failures so far
    P:job:<id>:end         list: the final state, pushed when the job finishes (a
                           waiting submit blocks on it instead of polling)
    P:job:<id>:lock:<chunk>  string: the holder of the chunk, with a PX lease
    P:jobs                 sorted set: job id by creation time (the recent-jobs list)
    P:leases               sorted set: "<job> <chunk>" by the time (ms) by which someone
                           must have renewed or finished it, else it is handed out again

Every job key gets the job TTL, renewed on activity. Updates that must not interleave
run as Lua scripts. Leases use the Redis server's clock, so hosts need not agree. The
reaper script touches keys it derives from the prefix, which a single Redis (not a
cluster) allows.

redis-py is imported when a store is built, so importing this module costs nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

from dispatch.jobs.lua import NOW_MS
from dispatch.jobs.model import (
    Chunk,
    JobSpec,
    JobState,
    outcome_from_dict,
    outcome_to_dict,
)
from dispatch.jobs.store import JobNotFinished, JobProgress, UnknownJob
from dispatch.outcome import FileOutcome, Outcome

_PARTS = ("meta", "chunks", "outcomes", "stored", "failures", "done", "attempts", "end")

_NOW = (
    NOW_MS
    + """
local function touch(ttl)
  for i = 1, #KEYS do
    local k = KEYS[i]
    if string.find(k, ':job:', 1, true) and not string.find(k, ':lock:', 1, true) then
      redis.call('PEXPIRE', k, ttl)
    end
  end
end
"""
)

# record_one's counters in the job's meta hash go up at once, or with ``acc`` (a table)
# are summed there for the caller to add in one HINCRBY per counter.
_RECORD_ONE = """
local function bump(acc, field, by)
  if acc then
    acc[field] = (acc[field] or 0) + by
  else
    redis.call('HINCRBY', KEYS[1], field, by)
  end
end
local function record_one(path, data, kind, fkey, nbytes, acc)
  if redis.call('SISMEMBER', KEYS[4], path) == 1 then return 0 end
  local prev = redis.call('HGET', KEYS[3], path)
  if prev then
    local p = cjson.decode(prev)
    bump(acc, p['outcome'], -1)
    if p['failure_key'] and p['failure_key'] ~= '' then
      redis.call('HINCRBY', KEYS[5], p['failure_key'], -1)
    end
  end
  redis.call('HSET', KEYS[3], path, data)
  bump(acc, kind, 1)
  if kind == 'stored' then
    redis.call('SADD', KEYS[4], path)
    bump(acc, 'bytes_stored', tonumber(nbytes))
  end
  if fkey ~= '' then redis.call('HINCRBY', KEYS[5], fkey, 1) end
  return 1
end
-- A JSON array holding per outcome [path, json, kind, failure key, bytes]: one script
-- argument for any number of outcomes (redis-py would encode five per outcome one by
-- one). The meta counters are summed and added once. Returns one 0/1 per outcome.
local function record_items(items_json)
  local out, acc = {}, {}
  local items = cjson.decode(items_json)
  for i = 1, #items do
    local it = items[i]
    out[#out + 1] = record_one(it[1], it[2], it[3], it[4], it[5], acc)
  end
  for field, by in pairs(acc) do
    if by ~= 0 then redis.call('HINCRBY', KEYS[1], field, by) end
  end
  return out
end
"""

# Records outcomes (one or many: one round trip, one renewal of the TTLs).
# KEYS: meta chunks outcomes stored failures done attempts ; ARGV: ttl ms, now s, the
# outcomes as record_items takes them. Returns a string of one "0" or "1" per outcome
# (a reply redis-py reads in one piece, unlike an array), or -1 for an unknown job.
_RECORD_MANY = (
    _NOW
    + _RECORD_ONE
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local out = record_items(ARGV[3])
redis.call('HSET', KEYS[1], 'updated', ARGV[2])
touch(tonumber(ARGV[1]))
return table.concat(out)
"""
)

# Sets the job's final state once every chunk is done and the job is closed (an open
# job is still being scanned: more chunks may come); pushes it on the end list.
_FINAL = """
local function finish_job(meta, done, endkey, now, ttl)
  if tonumber(redis.call('HGET', meta, 'finished') or '0') > 0 then return 0 end
  if redis.call('HGET', meta, 'open') == '1' then return 0 end
  local total = tonumber(redis.call('HGET', meta, 'chunks') or '0')
  if redis.call('SCARD', done) < total then return 0 end
  local m = redis.call('HMGET', meta, 'cancelled', 'halted', 'stored', 'failed', 'not_sent')
  local stored = tonumber(m[3] or '0')
  local bad = tonumber(m[4] or '0') + tonumber(m[5] or '0')
  local state
  if m[1] == '1' then state = 'cancelled'
  elseif m[2] == '1' then state = 'halted'
  elseif bad == 0 then state = 'completed'
  elseif stored == 0 then state = 'failed'
  else state = 'completed with failures' end
  redis.call('HSET', meta, 'state', state, 'finished', now)
  redis.call('RPUSH', endkey, state)
  redis.call('PEXPIRE', endkey, ttl)
  return 1
end
"""

# KEYS: meta chunks (+ job keys) ; ARGV: ttl ms, now s, files, bytes, count, then per
# chunk: id, json
_ADD = (
    _NOW
    + """
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
"""
)

# KEYS: meta chunks outcomes stored failures done attempts end ; ARGV: ttl ms, now s,
# the problems as record_items takes them. Returns -1 (unknown job), 0, or 1 when
# closing finished the job.
_CLOSE = (
    _NOW
    + _RECORD_ONE
    + _FINAL
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local n = #record_items(ARGV[3])
redis.call('HINCRBY', KEYS[1], 'total_files', n)
redis.call('HSET', KEYS[1], 'open', '0', 'updated', ARGV[2])
touch(tonumber(ARGV[1]))
return finish_job(KEYS[1], KEYS[6], KEYS[8], ARGV[2], tonumber(ARGV[1]))
"""
)

# KEYS: meta ; ARGV: path, reason
_HALT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HGET', KEYS[1], 'halted') == '1' then return 0 end
redis.call('HSET', KEYS[1], 'halted', '1', 'halted_path', ARGV[1], 'halt_reason', ARGV[2])
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'queued' or state == 'running' then redis.call('HSET', KEYS[1], 'state', 'halted') end
return 1
"""

# KEYS: meta ; ARGV: -
_CANCEL = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'finished') or '0') > 0 then return 0 end
redis.call('HSET', KEYS[1], 'cancelled', '1', 'state', 'cancelled')
return 1
"""

# KEYS: lock leases meta (+ job keys to touch) ; ARGV: holder, lease ms, member, ttl ms, now s
_CLAIM = (
    _NOW
    + """
if redis.call('EXISTS', KEYS[3]) == 0 then return -1 end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[2], now_ms('') + tonumber(ARGV[2]), ARGV[3])
if redis.call('HGET', KEYS[3], 'state') == 'queued' then
  redis.call('HSET', KEYS[3], 'state', 'running')
end
if tonumber(redis.call('HGET', KEYS[3], 'started') or '0') == 0 then
  redis.call('HSET', KEYS[3], 'started', ARGV[5])
end
touch(tonumber(ARGV[4]))
return 1
"""
)

# KEYS: lock leases ; ARGV: holder, lease ms, member
_RENEW = (
    _NOW
    + """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], now_ms('') + tonumber(ARGV[2]), ARGV[3])
return 1
"""
)

# KEYS: lock ; ARGV: holder
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: leases ; ARGV: member, until ms (relative to the server clock: delay ms)
_DEFER = (
    _NOW
    + """
redis.call('ZADD', KEYS[1], now_ms('') + tonumber(ARGV[2]), ARGV[1])
return 1
"""
)

# KEYS: meta done leases end (+ job keys) ; ARGV: chunk ('' = none), member, now s, ttl ms
_FINISH = (
    _NOW
    + _FINAL
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if ARGV[1] ~= '' then
  redis.call('SADD', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[2])
end
touch(tonumber(ARGV[4]))
return finish_job(KEYS[1], KEYS[2], KEYS[4], ARGV[3], tonumber(ARGV[4]))
"""
)

# KEYS: meta chunks outcomes stored failures done attempts ; ARGV: now s, ttl ms
# Returns {'unknown'}, {'running'} or {'ok', chunk ids reopened...}.
_REOPEN = (
    _NOW
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'unknown'} end
if tonumber(redis.call('HGET', KEYS[1], 'finished') or '0') == 0 then return {'running'} end
local out = {'ok'}
for _, cid in ipairs(cjson.decode(redis.call('HGET', KEYS[1], 'order') or '[]')) do
  local raw = redis.call('HGET', KEYS[2], cid)
  if raw then
    local reopened = false
    for _, f in ipairs(cjson.decode(raw)['files']) do
      local path = f['path']
      if redis.call('SISMEMBER', KEYS[4], path) == 0 then
        reopened = true
        local prev = redis.call('HGET', KEYS[3], path)
        if prev then
          local p = cjson.decode(prev)
          redis.call('HINCRBY', KEYS[1], p['outcome'], -1)
          if type(p['failure_key']) == 'string' and p['failure_key'] ~= '' then
            redis.call('HINCRBY', KEYS[5], p['failure_key'], -1)
          end
          redis.call('HDEL', KEYS[3], path)
        end
      end
    end
    if reopened then
      redis.call('SREM', KEYS[6], cid)
      redis.call('HDEL', KEYS[7], cid)
      table.insert(out, cid)
    end
  end
end
if #out > 1 then
  redis.call('DEL', KEYS[8])
  redis.call('HSET', KEYS[1], 'state', 'queued', 'finished', 0, 'halted', '0',
             'halted_path', '', 'halt_reason', '', 'cancelled', '0', 'updated', ARGV[1])
  touch(tonumber(ARGV[2]))
end
return out
"""
)

# KEYS: leases ; ARGV: prefix, now ms ('' = server clock), limit
_REAP = (
    _NOW
    + """
local limit = tonumber(ARGV[3])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms(ARGV[2]), 'LIMIT', 0, limit)
local out = {}
for _, member in ipairs(due) do
  local sep = string.find(member, ' ', 1, true)
  local job = string.sub(member, 1, sep - 1)
  local chunk = string.sub(member, sep + 1)
  local base = ARGV[1] .. ':job:' .. job .. ':'
  if redis.call('EXISTS', base .. 'lock:' .. chunk) == 0 then
    redis.call('ZREM', KEYS[1], member)
    if redis.call('EXISTS', base .. 'meta') == 1
       and redis.call('SISMEMBER', base .. 'done', chunk) == 0 then
      table.insert(out, member)
    end
  end
end
return out
"""
)


class RedisJobStore:
    """A :class:`~dispatch.jobs.store.JobStore` in Redis, shared by every worker.

    ``ttl_s`` is how long a job's records live after its last activity.
    """

    def __init__(self, client: Any, *, prefix: str = "dispatch", ttl_s: float = 7 * 86400) -> None:
        self._r = client
        self.prefix = prefix
        self.ttl_ms = int(ttl_s * 1000)
        self._record_many = client.register_script(_RECORD_MANY)
        self._halt = client.register_script(_HALT)
        self._cancel = client.register_script(_CANCEL)
        self._claim = client.register_script(_CLAIM)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._defer = client.register_script(_DEFER)
        self._finish = client.register_script(_FINISH)
        self._reap = client.register_script(_REAP)
        self._reopen = client.register_script(_REOPEN)
        self._add = client.register_script(_ADD)
        self._close = client.register_script(_CLOSE)

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str = "dispatch", ttl_s: float = 7 * 86400
    ) -> RedisJobStore:
        """A store on the Redis at ``url`` (``redis://host:port/db``)."""
        import redis  # lazily: `dispatch send` never pays for it

        client = redis.Redis.from_url(url, decode_responses=True)
        return cls(client, prefix=prefix, ttl_s=ttl_s)

    @property
    def client(self) -> Any:
        """The redis-py client (shared with :class:`~dispatch.jobs.slots.RedisSlots`)."""
        return self._r

    # -- keys ------------------------------------------------------------------------

    def _key(self, job_id: str, part: str) -> str:
        return f"{self.prefix}:job:{job_id}:{part}"

    def _keys(self, job_id: str) -> list[str]:
        return [self._key(job_id, part) for part in _PARTS]

    def _lock(self, job_id: str, chunk_id: str) -> str:
        return self._key(job_id, f"lock:{chunk_id}")

    @property
    def _leases(self) -> str:
        return f"{self.prefix}:leases"

    # -- jobs ------------------------------------------------------------------------

    def create_job(
        self,
        spec: JobSpec,
        chunks: Sequence[Chunk],
        problems: Sequence[FileOutcome] = (),
        *,
        open: bool = False,
    ) -> None:
        now = time.time()
        job_id = spec.job_id
        keys = self._keys(job_id)
        meta: dict[str, Any] = {
            "spec": json.dumps(spec.to_dict()),
            "name": spec.name,
            "destination": spec.destination,
            "state": JobState.QUEUED.value,
            "total_files": sum(len(c.files) for c in chunks) + len(problems),
            "total_bytes": sum(c.bytes for c in chunks),
            "chunks": len(chunks),
            "order": json.dumps([c.chunk_id for c in chunks]),
            "created": now,
            "updated": now,
            "started": 0,
            "finished": 0,
            "open": "1" if open else "0",
        }
        pipe = self._r.pipeline(transaction=True)
        pipe.delete(*keys)
        pipe.hset(keys[0], mapping=meta)
        if chunks:
            pipe.hset(keys[1], mapping={c.chunk_id: json.dumps(c.to_dict()) for c in chunks})
        pipe.zadd(f"{self.prefix}:jobs", {job_id: now})
        pipe.execute()
        self.record_many(job_id, problems)
        for key in keys:
            self._r.pexpire(key, self.ttl_ms)
        if not chunks and not open:
            self._finish(
                keys=[keys[0], keys[5], self._leases, keys[7]], args=["", "", now, self.ttl_ms]
            )

    def add_chunks(self, job_id: str, chunks: Sequence[Chunk]) -> None:
        if not chunks:
            return
        args: list[Any] = [
            self.ttl_ms,
            time.time(),
            sum(len(c.files) for c in chunks),
            sum(c.bytes for c in chunks),
            len(chunks),
        ]
        for c in chunks:
            args += [c.chunk_id, json.dumps(c.to_dict())]
        if int(self._add(keys=self._keys(job_id), args=args)) < 0:
            raise UnknownJob(f"no such job: {job_id}")

    def close_job(self, job_id: str, problems: Sequence[FileOutcome] = ()) -> bool:
        args = [self.ttl_ms, time.time(), _outcomes_json(problems)]
        result = int(self._close(keys=self._keys(job_id), args=args))
        if result < 0:
            raise UnknownJob(f"no such job: {job_id}")
        return result == 1

    def wait_finished(self, job_id: str, timeout_s: float) -> bool:
        """Block up to ``timeout_s`` until the job has finished; True once it has. The
        end list is rotated, not emptied, so every waiter sees it."""
        found = self._r.brpoplpush(self._key(job_id, "end"), self._key(job_id, "end"),
                                   max(timeout_s, 0.01))  # fmt: skip
        return found is not None

    def _meta(self, job_id: str, *fields: str) -> list[str | None]:
        values: list[str | None] = self._r.hmget(self._key(job_id, "meta"), list(fields))
        return values

    def spec(self, job_id: str) -> JobSpec:
        (raw,) = self._meta(job_id, "spec")
        if raw is None:
            raise UnknownJob(f"no such job: {job_id}")
        return JobSpec.from_dict(json.loads(raw))

    def chunk(self, job_id: str, chunk_id: str) -> Chunk:
        raw = self._r.hget(self._key(job_id, "chunks"), chunk_id)
        if raw is None:
            raise UnknownJob(f"no chunk {chunk_id} in job {job_id}")
        return Chunk.from_dict(json.loads(raw))

    def chunk_ids(self, job_id: str) -> list[str]:
        (raw,) = self._meta(job_id, "order")
        if raw is None:
            raise UnknownJob(f"no such job: {job_id}")
        ids: list[str] = json.loads(raw)
        return ids

    def record(self, job_id: str, outcome: FileOutcome) -> bool:
        return self.record_many(job_id, [outcome]) == [True]

    def record_many(self, job_id: str, outcomes: Sequence[FileOutcome]) -> list[bool]:
        if not outcomes:
            return []
        items = _outcomes_json(outcomes)
        result = self._record_many(keys=self._keys(job_id), args=[self.ttl_ms, time.time(), items])
        if isinstance(result, int):  # -1: the job is unknown
            return [False] * len(outcomes)
        return [flag == "1" for flag in result]

    def confirmed(self, job_id: str, chunk_id: str) -> set[str]:
        paths = [f.path for f in self.chunk(job_id, chunk_id).files]
        if not paths:
            return set()
        flags = self._r.smismember(self._key(job_id, "stored"), paths)
        return {p for p, flag in zip(paths, flags, strict=True) if flag}

    def settled(self, job_id: str, paths: Sequence[str]) -> set[str]:
        if not paths:
            return set()
        found = self._r.hmget(self._key(job_id, "outcomes"), paths)
        return {p for p, raw in zip(paths, found, strict=True) if raw is not None}

    def halt(self, job_id: str, path: str, reason: str) -> bool:
        result = int(self._halt(keys=[self._key(job_id, "meta")], args=[path, reason]))
        if result < 0:
            raise UnknownJob(f"no such job: {job_id}")
        return result == 1

    def cancel(self, job_id: str) -> bool:
        return int(self._cancel(keys=[self._key(job_id, "meta")])) == 1

    def stopped(self, job_id: str) -> JobState | None:
        exists, cancelled, halted = self._meta(job_id, "state", "cancelled", "halted")
        if exists is None:
            raise UnknownJob(f"no such job: {job_id}")
        if cancelled == "1":
            return JobState.CANCELLED
        return JobState.HALTED if halted == "1" else None

    def add_retry(self, job_id: str, chunk_id: str) -> int:
        pipe = self._r.pipeline(transaction=True)
        pipe.hincrby(self._key(job_id, "attempts"), chunk_id, 1)
        pipe.hincrby(self._key(job_id, "meta"), "retries", 1)
        pipe.pexpire(self._key(job_id, "attempts"), self.ttl_ms)
        attempts, _, _ = pipe.execute()
        return int(attempts)

    # -- chunk leases ----------------------------------------------------------------

    def claim_chunk(self, job_id: str, chunk_id: str, holder: str, lease_s: float) -> bool:
        keys = [self._lock(job_id, chunk_id), self._leases, *self._keys(job_id)]
        result = int(
            self._claim(
                keys=keys,
                args=[
                    holder,
                    int(lease_s * 1000),
                    f"{job_id} {chunk_id}",
                    self.ttl_ms,
                    time.time(),
                ],
            )
        )
        if result < 0:
            raise UnknownJob(f"no such job: {job_id}")
        return result == 1

    def renew_chunk(self, job_id: str, chunk_id: str, holder: str, lease_s: float) -> bool:
        keys = [self._lock(job_id, chunk_id), self._leases]
        args = [holder, int(lease_s * 1000), f"{job_id} {chunk_id}"]
        return int(self._renew(keys=keys, args=args)) == 1

    def release_chunk(self, job_id: str, chunk_id: str, holder: str) -> None:
        self._release(keys=[self._lock(job_id, chunk_id)], args=[holder])

    def defer_chunk(self, job_id: str, chunk_id: str, until: float) -> None:
        delay_ms = max(int((until - time.time()) * 1000), 0)
        self._defer(keys=[self._leases], args=[f"{job_id} {chunk_id}", delay_ms])

    def holder(self, job_id: str, chunk_id: str) -> str | None:
        """Who holds the chunk's lock now (None when nobody does)."""
        value: str | None = self._r.get(self._lock(job_id, chunk_id))
        return value

    def finish_chunk(self, job_id: str, chunk_id: str) -> bool:
        keys = [self._key(job_id, "meta"), self._key(job_id, "done"), self._leases,
                self._key(job_id, "end")]  # fmt: skip
        keys += [k for k in self._keys(job_id) if k not in keys]
        result = int(
            self._finish(
                keys=keys, args=[chunk_id, f"{job_id} {chunk_id}", time.time(), self.ttl_ms]
            )
        )
        if result < 0:
            raise UnknownJob(f"no such job: {job_id}")
        return result == 1

    def chunk_done(self, job_id: str, chunk_id: str) -> bool:
        return bool(self._r.sismember(self._key(job_id, "done"), chunk_id))

    def reap(self, now: float | None = None) -> list[tuple[str, str]]:
        now_arg = "" if now is None else str(int(now * 1000))
        members = self._reap(keys=[self._leases], args=[self.prefix, now_arg, 100])
        pairs: list[tuple[str, str]] = []
        for member in members:
            job_id, _, chunk_id = str(member).partition(" ")
            pairs.append((job_id, chunk_id))
        return pairs

    def reopen(self, job_id: str) -> list[str]:
        result = self._reopen(keys=self._keys(job_id), args=[time.time(), self.ttl_ms])
        status, *chunk_ids = (str(item) for item in result)
        if status == "unknown":
            raise UnknownJob(f"no such job: {job_id}")
        if status == "running":
            raise JobNotFinished(f"job {job_id} has not finished yet")
        return chunk_ids

    # -- reading ---------------------------------------------------------------------

    def progress(self, job_id: str) -> JobProgress:
        pipe = self._r.pipeline(transaction=False)
        pipe.hgetall(self._key(job_id, "meta"))
        pipe.hgetall(self._key(job_id, "failures"))
        pipe.scard(self._key(job_id, "done"))
        meta, failures, done = pipe.execute()
        if not meta:
            raise UnknownJob(f"no such job: {job_id}")

        def num(name: str) -> int:
            return int(meta.get(name) or 0)

        def secs(name: str) -> float:
            return float(meta.get(name) or 0.0)

        return JobProgress(
            job_id=job_id,
            name=meta.get("name", ""),
            destination=meta.get("destination", ""),
            state=JobState(meta["state"]),
            total_files=num("total_files"),
            total_bytes=num("total_bytes"),
            chunks=num("chunks"),
            chunks_done=int(done),
            stored=num("stored"),
            failed=num("failed"),
            not_sent=num("not_sent"),
            bytes_stored=num("bytes_stored"),
            retries=num("retries"),
            failures={k: int(v) for k, v in failures.items() if int(v) > 0},
            halted_path=meta.get("halted_path", ""),
            halt_reason=meta.get("halt_reason", ""),
            created=secs("created"),
            started=secs("started"),
            finished=secs("finished"),
            updated=secs("updated"),
            open=meta.get("open") == "1",
        )

    def jobs(self, limit: int = 20) -> list[JobProgress]:
        index = f"{self.prefix}:jobs"
        found: list[JobProgress] = []
        for job_id in self._r.zrevrange(index, 0, -1):
            if len(found) >= limit:
                break
            try:
                found.append(self.progress(job_id))
            except UnknownJob:
                self._r.zrem(index, job_id)  # its records expired
        return found

    def report(self, job_id: str) -> Iterator[FileOutcome]:
        for _path, raw in self._r.hscan_iter(self._key(job_id, "outcomes"), count=500):
            yield outcome_from_dict(json.loads(raw))


def _outcomes_json(outcomes: Sequence[FileOutcome]) -> str:
    """The outcomes as the scripts' ``record_items`` takes them."""
    return json.dumps([_outcome_args(outcome) for outcome in outcomes])


def _outcome_args(outcome: FileOutcome) -> list[Any]:
    """The five script arguments of one outcome: path, JSON, kind, failure key, bytes."""
    data = outcome_to_dict(outcome)
    return [
        outcome.path,
        json.dumps(data),
        outcome.outcome.value,
        data["failure_key"],
        outcome.bytes if outcome.outcome is Outcome.STORED else 0,
    ]
