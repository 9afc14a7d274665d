"""The backend of a cluster: job records and association slots in Redis, shared by every
worker on every host.

:class:`RedisJobStore` fulfils :class:`~dispatch.jobs.store.JobStore` and
:class:`RedisSlots` :class:`~dispatch.jobs.slots.SlotPool`. Keys (``P`` is the prefix,
``dispatch`` by default; one job's keys share ``P:job:<id>:``)::

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
    P:unclaimed            sorted set: "<job> <chunk>" of chunks never claimed yet, by
                           the time (ms) they were recorded (or last handed out); the
                           reaper reads the broker's queue lists and kombu's
                           ``unacked`` hash to tell a lost task from a queued one
    P:slots:<destination>  sorted set: slot holders by the end (ms) of their lease
    P:destination:<destination>  hash: since, error, next_try, failures, reached_at,
                           reached_by (see :mod:`dispatch.jobs.destinations`)

Every job key gets the job TTL, renewed on activity. Updates that must not interleave
run as Lua scripts (:mod:`dispatch.jobs.backends.scripts`). Leases use the Redis
server's clock, so hosts need not agree. Every command's redis-py error is raised as
:class:`~dispatch.errors.BrokerUnavailable` (:mod:`dispatch.jobs.backends.broker_errors`).

redis-py is imported when a store is built from a URL, so importing this module costs
nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

from dispatch.errors import JobNotFinished, UnknownJob
from dispatch.jobs.backends.broker_errors import broker_command, map_broker_errors
from dispatch.jobs.backends.scripts import register
from dispatch.jobs.destinations import DestinationState
from dispatch.jobs.model import (
    Chunk,
    JobSpec,
    JobState,
    outcome_from_dict,
    outcome_to_dict,
)
from dispatch.jobs.store import JobProgress
from dispatch.outcome import FileOutcome, Outcome

__all__ = ["RedisJobStore", "RedisSlots"]

_PARTS = ("meta", "chunks", "outcomes", "stored", "failures", "done", "attempts", "end")


class RedisJobStore:
    """A :class:`~dispatch.jobs.store.JobStore` in Redis, shared by every worker.

    ``ttl_s`` is how long a job's records live after its last activity.

    With ``unclaimed_grace_s`` (only for a store in the broker's own Redis database:
    :meth:`reap` reads the queues there) :meth:`reap` also hands out the chunks recorded
    longer ago than that which no runner ever claimed and whose task is neither queued
    nor taken by a worker: the submitter died between recording and publishing them.
    """

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "dispatch",
        ttl_s: float = 7 * 86400,
        unclaimed_grace_s: float | None = None,
    ) -> None:
        self._r = client
        self.prefix = prefix
        self.ttl_ms = int(ttl_s * 1000)
        self.unclaimed_grace_s = unclaimed_grace_s
        self._record_many = register(client, "record_many")
        self._halt = register(client, "halt")
        self._cancel = register(client, "cancel")
        self._watch = register(client, "watch_unclaimed")
        self._claim = register(client, "claim_chunk")
        self._renew = register(client, "renew_chunk")
        self._release = register(client, "release_chunk")
        self._defer = register(client, "defer_chunk")
        self._finish = register(client, "finish_chunk")
        self._reap = register(client, "reap")
        self._reopen = register(client, "reopen")
        self._add = register(client, "add_chunks")
        self._close = register(client, "close_job")
        self._probe = register(client, "destination_probe")
        self._dest_failed = register(client, "destination_failed")
        self._add_wait = register(client, "add_wait")

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "dispatch",
        ttl_s: float = 7 * 86400,
        unclaimed_grace_s: float | None = None,
    ) -> RedisJobStore:
        """A store on the Redis at ``url`` (``redis://host:port/db``)."""
        import redis  # lazily: `dispatch send` never pays for it

        client = redis.Redis.from_url(url, decode_responses=True)
        return cls(client, prefix=prefix, ttl_s=ttl_s, unclaimed_grace_s=unclaimed_grace_s)

    @property
    def client(self) -> Any:
        """The redis-py client (shared with :class:`RedisSlots`)."""
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

    @property
    def _unclaimed(self) -> str:
        return f"{self.prefix}:unclaimed"

    @staticmethod
    def _members(job_id: str, chunks: Sequence[Chunk]) -> list[str]:
        return [f"{job_id} {c.chunk_id}" for c in chunks]

    # -- jobs ------------------------------------------------------------------------

    @broker_command
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
        if chunks:
            self._watch(keys=[self._unclaimed], args=self._members(job_id, chunks), client=pipe)
        pipe.execute()
        self.record_many(job_id, problems)
        for key in keys:
            self._r.pexpire(key, self.ttl_ms)
        if not chunks and not open:
            self._finish(
                keys=[keys[0], keys[5], self._leases, keys[7]], args=["", "", now, self.ttl_ms]
            )

    @broker_command
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
        self._watch(keys=[self._unclaimed], args=self._members(job_id, chunks))

    @broker_command
    def close_job(self, job_id: str, problems: Sequence[FileOutcome] = ()) -> bool:
        args = [self.ttl_ms, time.time(), _outcomes_json(problems)]
        result = int(self._close(keys=self._keys(job_id), args=args))
        if result < 0:
            raise UnknownJob(f"no such job: {job_id}")
        return result == 1

    @broker_command
    def wait_finished(self, job_id: str, timeout_s: float) -> bool:
        """Block up to ``timeout_s`` until the job has finished; True once it has. The
        end list is rotated, not emptied, so every waiter sees it."""
        found = self._r.brpoplpush(self._key(job_id, "end"), self._key(job_id, "end"),
                                   max(timeout_s, 0.01))  # fmt: skip
        return found is not None

    def _meta(self, job_id: str, *fields: str) -> list[str | None]:
        values: list[str | None] = self._r.hmget(self._key(job_id, "meta"), list(fields))
        return values

    @broker_command
    def spec(self, job_id: str) -> JobSpec:
        (raw,) = self._meta(job_id, "spec")
        if raw is None:
            raise UnknownJob(f"no such job: {job_id}")
        return JobSpec.from_dict(json.loads(raw))

    @broker_command
    def chunk(self, job_id: str, chunk_id: str) -> Chunk:
        raw = self._r.hget(self._key(job_id, "chunks"), chunk_id)
        if raw is None:
            raise UnknownJob(f"no chunk {chunk_id} in job {job_id}")
        return Chunk.from_dict(json.loads(raw))

    @broker_command
    def record(self, job_id: str, outcome: FileOutcome) -> bool:
        return self.record_many(job_id, [outcome]) == [True]

    @broker_command
    def record_many(self, job_id: str, outcomes: Sequence[FileOutcome]) -> list[bool]:
        if not outcomes:
            return []
        items = _outcomes_json(outcomes)
        result = self._record_many(keys=self._keys(job_id), args=[self.ttl_ms, time.time(), items])
        if isinstance(result, int):  # -1: the job is unknown
            return [False] * len(outcomes)
        return [flag == "1" for flag in result]

    @broker_command
    def settled(self, job_id: str, paths: Sequence[str]) -> set[str]:
        if not paths:
            return set()
        found = self._r.hmget(self._key(job_id, "outcomes"), paths)
        return {p for p, raw in zip(paths, found, strict=True) if raw is not None}

    @broker_command
    def halt(self, job_id: str, path: str, reason: str) -> bool:
        result = int(self._halt(keys=[self._key(job_id, "meta")], args=[path, reason]))
        if result < 0:
            raise UnknownJob(f"no such job: {job_id}")
        return result == 1

    @broker_command
    def cancel(self, job_id: str) -> bool:
        return int(self._cancel(keys=[self._key(job_id, "meta")])) == 1

    @broker_command
    def stopped(self, job_id: str) -> JobState | None:
        exists, cancelled, halted = self._meta(job_id, "state", "cancelled", "halted")
        if exists is None:
            raise UnknownJob(f"no such job: {job_id}")
        if cancelled == "1":
            return JobState.CANCELLED
        return JobState.HALTED if halted == "1" else None

    @broker_command
    def add_retry(self, job_id: str, chunk_id: str) -> int:
        pipe = self._r.pipeline(transaction=True)
        pipe.hincrby(self._key(job_id, "attempts"), chunk_id, 1)
        pipe.hincrby(self._key(job_id, "meta"), "retries", 1)
        pipe.pexpire(self._key(job_id, "attempts"), self.ttl_ms)
        attempts, _, _ = pipe.execute()
        return int(attempts)

    # -- chunk leases ----------------------------------------------------------------

    @broker_command
    def claim_chunk(self, job_id: str, chunk_id: str, holder: str, lease_s: float) -> bool:
        keys = [self._lock(job_id, chunk_id), self._leases, self._unclaimed, *self._keys(job_id)]
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

    @broker_command
    def renew_chunk(self, job_id: str, chunk_id: str, holder: str, lease_s: float) -> bool:
        keys = [self._lock(job_id, chunk_id), self._leases]
        args = [holder, int(lease_s * 1000), f"{job_id} {chunk_id}"]
        return int(self._renew(keys=keys, args=args)) == 1

    @broker_command
    def release_chunk(self, job_id: str, chunk_id: str, holder: str) -> None:
        self._release(keys=[self._lock(job_id, chunk_id)], args=[holder])

    @broker_command
    def defer_chunk(self, job_id: str, chunk_id: str, until: float) -> None:
        delay_ms = max(int((until - time.time()) * 1000), 0)
        self._defer(keys=[self._leases], args=[f"{job_id} {chunk_id}", delay_ms])

    @broker_command
    def holder(self, job_id: str, chunk_id: str) -> str | None:
        """Who holds the chunk's lock now (None when nobody does)."""
        value: str | None = self._r.get(self._lock(job_id, chunk_id))
        return value

    @broker_command
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

    @broker_command
    def chunk_done(self, job_id: str, chunk_id: str) -> bool:
        return bool(self._r.sismember(self._key(job_id, "done"), chunk_id))

    @broker_command
    def reap(self, now: float | None = None) -> list[tuple[str, str]]:
        now_arg = "" if now is None else str(int(now * 1000))
        grace = self.unclaimed_grace_s
        grace_arg = "" if grace is None else str(int(grace * 1000))
        members = self._reap(
            keys=[self._leases, self._unclaimed], args=[self.prefix, now_arg, 100, grace_arg]
        )
        pairs: list[tuple[str, str]] = []
        for member in members:
            job_id, _, chunk_id = str(member).partition(" ")
            pairs.append((job_id, chunk_id))
        return pairs

    @broker_command
    def reopen(self, job_id: str) -> list[str]:
        result = self._reopen(keys=self._keys(job_id), args=[time.time(), self.ttl_ms])
        status, *chunk_ids = (str(item) for item in result)
        if status == "unknown":
            raise UnknownJob(f"no such job: {job_id}")
        if status == "running":
            raise JobNotFinished(f"job {job_id} has not finished yet")
        return chunk_ids

    # -- reading ---------------------------------------------------------------------

    @broker_command
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

    @broker_command
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
        with map_broker_errors():
            for _path, raw in self._r.hscan_iter(self._key(job_id, "outcomes"), count=500):
                yield outcome_from_dict(json.loads(raw))

    # -- destinations that cannot be reached -----------------------------------------

    def _destination(self, destination: str) -> str:
        return f"{self.prefix}:destination:{destination}"

    @broker_command
    def destination(self, destination: str) -> DestinationState:
        return _destination_state(destination, self._r.hgetall(self._destination(destination)))

    @broker_command
    def claim_probe(
        self, destination: str, now: float, hold_s: float
    ) -> tuple[bool, DestinationState]:
        go, flat = self._probe(keys=[self._destination(destination)], args=[now, hold_s])
        return int(go) == 1, _destination_state(destination, _pairs(flat))

    @broker_command
    def destination_failed(
        self,
        destination: str,
        by: str,
        error: str,
        now: float,
        base_s: float,
        cap_s: float,
        fraction: float,
    ) -> DestinationState:
        args = [f"{now:.3f}", error, base_s, cap_s, fraction, self.ttl_ms]
        flat = self._dest_failed(keys=[self._destination(destination)], args=args)
        return _destination_state(destination, _pairs(flat))

    @broker_command
    def destination_reached(self, destination: str, by: str, now: float) -> None:
        key = self._destination(destination)
        pipe = self._r.pipeline(transaction=True)
        pipe.delete(key)
        pipe.hset(key, mapping={"reached_at": f"{now:.3f}", "reached_by": by})
        pipe.pexpire(key, self.ttl_ms)
        pipe.execute()

    @broker_command
    def add_wait(self, job_id: str) -> int:
        return int(self._add_wait(keys=[self._key(job_id, "meta")]))


def _pairs(flat: Sequence[Any]) -> dict[str, str]:
    """A flat HGETALL reply of a script as a dict."""
    items = [str(item) for item in flat]
    return dict(zip(items[::2], items[1::2], strict=True))


def _destination_state(destination: str, fields: dict[str, str]) -> DestinationState:
    def num(name: str) -> float:
        return float(fields.get(name) or 0.0)

    return DestinationState(
        destination,
        since=num("since"),
        error=fields.get("error", ""),
        next_try=num("next_try"),
        failures=int(num("failures")),
        reached_at=num("reached_at"),
        reached_by=fields.get("reached_by", ""),
    )


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


class RedisSlots:
    """:class:`~dispatch.jobs.slots.SlotPool` shared by every worker through Redis.

    ``now`` (seconds) may be passed to the methods to test lease expiry without
    waiting; by default the Redis server's clock is used.
    """

    def __init__(self, client: Any, prefix: str = "dispatch") -> None:
        self._r = client
        self.prefix = prefix
        self._acquire = register(client, "slot_acquire")
        self._renew = register(client, "slot_renew")
        self._count = register(client, "slot_count")

    def _key(self, destination: str) -> str:
        return f"{self.prefix}:slots:{destination}"

    @staticmethod
    def _ms(now: float | None) -> str:
        return "" if now is None else str(int(now * 1000))

    @broker_command
    def try_acquire(
        self, destination: str, limit: int, holder: str, lease_s: float, now: float | None = None
    ) -> bool:
        args = [holder, limit, int(lease_s * 1000), self._ms(now)]
        return int(self._acquire(keys=[self._key(destination)], args=args)) == 1

    @broker_command
    def renew(
        self, destination: str, holder: str, lease_s: float, now: float | None = None
    ) -> bool:
        args = [holder, int(lease_s * 1000), self._ms(now)]
        return int(self._renew(keys=[self._key(destination)], args=args)) == 1

    @broker_command
    def release(self, destination: str, holder: str) -> None:
        self._r.zrem(self._key(destination), holder)

    @broker_command
    def in_use(self, destination: str, now: float | None = None) -> int:
        return int(self._count(keys=[self._key(destination)], args=[self._ms(now)]))
