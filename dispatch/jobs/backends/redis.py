"""The backend of a cluster: job records and association slots in Redis, shared by every
worker on every host.

:class:`RedisJobStore` fulfils :class:`~dispatch.jobs.store.JobStore` and
:class:`RedisSlots` :class:`~dispatch.jobs.slots.SlotPool`. Keys (``P`` is the prefix,
``dispatch`` by default; one job's keys share ``P:job:<id>:``)::

    P:job:<id>:meta        hash: spec JSON, state, totals, counters, halt/cancel, times
    P:job:<id>:chunks      hash: chunk id -> the chunk, compressed (model.chunk_to_blob)
    P:job:<id>:outcomes    hash: path -> outcome JSON, of files in no chunk (the scan's
                           problems)
    P:job:<id>:stored      set: those of them STORED
    P:job:<id>:failures    hash: failure key -> count
    P:job:<id>:done        set: chunk ids finished
    P:job:<id>:attempts    hash: chunk id -> transient failures so far
    P:job:<id>:end         list: the final state, pushed when the job finishes (a
                           waiting submit blocks on it instead of polling)
    P:job:<id>:codes       hash: chunk id -> its files' outcomes, 5 bytes a file: a
                           code (none, plain stored, stored, failed, not sent) and, for a
                           plain stored file, the C-STORE time in microseconds
    P:job:<id>:details     hash: "<chunk id> <index>" -> outcome JSON, of every file
                           whose outcome is not plain stored
    P:job:<id>:lock:<chunk>  string: the holder of the chunk, with a PX lease
    P:jobs                 sorted set: job id by creation time (the recent-jobs list)
    P:leases               sorted set: "<job> <chunk>" by the time (ms) by which someone
                           must have renewed or finished it, else it is handed out again
    P:unclaimed            sorted set: "<job> <chunk>" of chunks never claimed yet, by
                           the time (ms) they were recorded (or last handed out); the
                           reaper reads the broker's queue lists and kombu's
                           ``unacked`` hash to tell a lost task from a queued one
    P:slots:<destination>  sorted set: slot holders by the end (ms) of their lease
    P:submissions          sorted set: ids of open jobs by the end (ms) of their
                           submitter's lease (see ``hold_submission``)

A *plain stored* outcome is one that says no more than the chunk's file reference: status
0x0000, the file's SOP class and instance, its own transfer syntax, its data set's bytes
(see :func:`~dispatch.jobs.model.plain_stored`); it is kept as its time alone and read
back whole. A finished job thus holds tens of bytes a file, not a kilobyte (measured
with ``benchmarks/bench_scale.py``: 15.6 bytes a file for a million). Which chunk a path
belongs to is known from the chunks this store wrote or read (a bounded cache; a path
found in none of them is looked for in every chunk of the job).

    P:job:<id>:commitment  hash: path -> "state<TAB>reason<TAB>transaction UID" of the
                           storage commitment of a stored file (``--commit``); the
                           meta hash counts them (committed, commit_failed,
                           commit_pending)
    P:commit:<transaction UID>  hash: job, chunk, instances (SOP instance UID -> path,
                           JSON) of a storage commitment request; report (JSON) once
                           one came
    P:commit:<transaction UID>:end  list: pushed when the report came (a waiting
                           runner blocks on it)
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
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from dispatch.commitment import (
    CommitmentReport,
    CommitState,
    report_from_json,
    report_to_json,
    states_by_path,
)
from dispatch.errors import JobNotFinished, UnknownJob
from dispatch.jobs.backends.broker_errors import broker_command, map_broker_errors
from dispatch.jobs.backends.scripts import register
from dispatch.jobs.destinations import DestinationState
from dispatch.jobs.model import (
    Chunk,
    FileRef,
    JobSpec,
    JobState,
    chunk_from_blob,
    chunk_to_blob,
    outcome_from_dict,
    outcome_to_dict,
    plain_micros,
    plain_stored,
)
from dispatch.jobs.store import JobProgress
from dispatch.outcome import FileOutcome, Outcome

__all__ = ["RedisJobStore", "RedisSlots"]

_PARTS = (
    "meta", "chunks", "outcomes", "stored", "failures", "done", "attempts", "end", "codes",
    "details",
)  # fmt: skip

_PROGRESS_FIELDS = (
    "name", "destination", "state", "total_files", "total_bytes", "chunks", "stored",
    "failed", "not_sent", "bytes_stored", "retries", "halted_path", "halt_reason", "created",
    "started", "finished", "updated", "open", "interrupted", "commit", "committed",
    "commit_failed", "commit_pending",
)  # fmt: skip
"""The fields of a job's meta hash that :meth:`RedisJobStore.progress` reads."""

_NEVER_DECODE: dict[str, list[str]] = {"NEVER_DECODE": []}
"""redis-py's option for one command's reply as bytes (compressed chunks, outcome
codes), on a client that otherwise decodes replies."""

_CELL = 5
"""Bytes per file in a chunk's outcome codes (see the module docstring)."""

_CODES = {Outcome.STORED: 2, Outcome.FAILED: 3, Outcome.NOT_SENT: 4}
"""Outcome codes of outcomes kept whole; 1 is a plain stored outcome, 0 none."""

_CACHED_CHUNKS = 64
"""Chunks whose paths a store remembers, to find a recorded file's chunk."""

_REPORT_BATCH = 16
"""Chunks read per round trip while a report streams."""


class _Place(NamedTuple):
    """Where a file of a job is: its chunk, the chunk's file count, its position."""

    chunk_id: str
    files: int
    position: int
    ref: FileRef


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
        broker_key_prefix: str = "",
    ) -> None:
        self._r = client
        self.prefix = prefix
        self.broker_key_prefix = broker_key_prefix
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
        self._cache_lock = threading.Lock()
        self._cached: OrderedDict[tuple[str, str], Chunk] = OrderedDict()
        self._places: dict[tuple[str, str], _Place] = {}

        self._hold = register(client, "hold_submission")
        self._close_interrupted = register(client, "close_interrupted")

        self._probe = register(client, "destination_probe")
        self._dest_failed = register(client, "destination_failed")
        self._add_wait = register(client, "add_wait")
        self._record_commitment = register(client, "record_commitment")

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "dispatch",
        ttl_s: float = 7 * 86400,
        unclaimed_grace_s: float | None = None,
        broker_key_prefix: str = "",
    ) -> RedisJobStore:
        """A store on the Redis at ``url`` (``redis://host:port/db``)."""
        import redis  # lazily: `dispatch send` never pays for it

        client = redis.Redis.from_url(url, decode_responses=True)
        return cls(
            client,
            prefix=prefix,
            ttl_s=ttl_s,
            unclaimed_grace_s=unclaimed_grace_s,
            broker_key_prefix=broker_key_prefix,
        )

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
            "commit": "0" if spec.commit_timeout_s is None else "1",
        }
        pipe = self._r.pipeline(transaction=True)
        pipe.delete(*keys)
        pipe.hset(keys[0], mapping=meta)
        if chunks:
            pipe.hset(keys[1], mapping={c.chunk_id: chunk_to_blob(c) for c in chunks})
        pipe.zadd(f"{self.prefix}:jobs", {job_id: now})
        if chunks:
            self._watch(keys=[self._unclaimed], args=self._members(job_id, chunks), client=pipe)
        pipe.execute()
        for c in chunks:
            self._remember(job_id, c)
        if problems:
            self._record_many(keys=keys, args=[self.ttl_ms, now, _outcomes_json(problems)])
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
            args += [c.chunk_id, chunk_to_blob(c)]
        if int(self._add(keys=self._keys(job_id), args=args)) < 0:
            raise UnknownJob(f"no such job: {job_id}")
        for c in chunks:
            self._remember(job_id, c)
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
        raw = self._r.execute_command("HGET", self._key(job_id, "chunks"), chunk_id,
                                      **_NEVER_DECODE)  # fmt: skip
        if raw is None:
            raise UnknownJob(f"no chunk {chunk_id} in job {job_id}")
        chunk = chunk_from_blob(raw)
        self._remember(job_id, chunk)
        return chunk

    # -- where files are -------------------------------------------------------------

    def _remember(self, job_id: str, chunk: Chunk) -> None:
        """Keep the chunk's paths at hand, forgetting the least recently used chunk
        beyond :data:`_CACHED_CHUNKS`."""
        key = (job_id, chunk.chunk_id)
        with self._cache_lock:
            if key in self._cached:
                self._cached.move_to_end(key)
                return
            self._cached[key] = chunk
            n = len(chunk.files)
            for index, ref in enumerate(chunk.files):
                self._places[(job_id, ref.path)] = _Place(chunk.chunk_id, n, index, ref)
            while len(self._cached) > _CACHED_CHUNKS:
                (old_job, _), old = self._cached.popitem(last=False)
                for ref in old.files:
                    place = self._places.get((old_job, ref.path))
                    if place is not None and place.chunk_id == old.chunk_id:
                        del self._places[(old_job, ref.path)]

    def _locate(self, job_id: str, paths: Sequence[str]) -> dict[str, _Place]:
        """Where each of ``paths`` is in the job's chunks (absent: in no chunk). Paths
        of chunks not at hand are looked for in every chunk of the job, read in
        batches; the chunks that hold them are kept at hand. A path that is not UTF-8
        raises UnicodeEncodeError, as redis-py does for any command naming it."""
        for path in paths:
            path.encode("utf-8")
        with self._cache_lock:
            found = {p: self._places[(job_id, p)] for p in paths if (job_id, p) in self._places}
            known = {cid for (job, cid) in self._cached if job == job_id}
        missing = {p for p in paths if p not in found}
        if not missing:
            return found
        order = [cid for cid in self._order(job_id) if cid not in known]
        for start in range(0, len(order), _REPORT_BATCH):
            for chunk in self._chunks(job_id, order[start : start + _REPORT_BATCH]):
                n = len(chunk.files)
                hits = [(i, ref) for i, ref in enumerate(chunk.files) if ref.path in missing]
                for index, ref in hits:
                    found[ref.path] = _Place(chunk.chunk_id, n, index, ref)
                    missing.discard(ref.path)
                if hits:
                    self._remember(job_id, chunk)
            if not missing:
                break
        return found

    def _order(self, job_id: str) -> list[str]:
        """The job's chunk ids in submission order ([] for an unknown job)."""
        (raw,) = self._meta(job_id, "order")
        ids: list[str] = json.loads(raw) if raw else []
        return ids

    def _chunks(self, job_id: str, chunk_ids: Sequence[str]) -> list[Chunk]:
        """The chunks of ``chunk_ids`` that exist, read in one round trip."""
        pipe = self._r.pipeline(transaction=False)
        for cid in chunk_ids:
            pipe.execute_command("HGET", self._key(job_id, "chunks"), cid, **_NEVER_DECODE)
        return [chunk_from_blob(raw) for raw in pipe.execute() if raw is not None]

    @broker_command
    def record(self, job_id: str, outcome: FileOutcome) -> bool:
        return self.record_many(job_id, [outcome]) == [True]

    @broker_command
    def record_many(self, job_id: str, outcomes: Sequence[FileOutcome]) -> list[bool]:
        if not outcomes:
            return []
        places = self._locate(job_id, [o.path for o in outcomes])
        loose: list[list[Any]] = []
        loose_at: list[int] = []
        groups: dict[str, tuple[int, list[list[Any]], list[int]]] = {}
        for at, outcome in enumerate(outcomes):
            place = places.get(outcome.path)
            if place is None:
                loose.append(_outcome_args(outcome))
                loose_at.append(at)
                continue
            _, items, where = groups.setdefault(place.chunk_id, (place.files, [], []))
            items.append(_cell_args(place, outcome))
            where.append(at)
        order = loose_at + [at for _, _, where in groups.values() for at in where]
        payload = json.dumps(
            {"l": loose, "g": [[cid, n, cells] for cid, (n, cells, _) in groups.items()]}
        )
        args = [self.ttl_ms, time.time(), payload]
        result = self._record_many(keys=self._keys(job_id), args=args)
        flags = [False] * len(outcomes)
        if isinstance(result, int):  # -1: the job is unknown
            return flags
        for at, flag in zip(order, result, strict=True):
            flags[at] = flag == "1"
        return flags

    @broker_command
    def settled(self, job_id: str, paths: Sequence[str]) -> set[str]:
        if not paths:
            return set()
        places = self._locate(job_id, paths)
        loose = [p for p in paths if p not in places]
        chunk_ids = sorted({place.chunk_id for place in places.values()})
        pipe = self._r.pipeline(transaction=False)
        for cid in chunk_ids:
            pipe.execute_command("HGET", self._key(job_id, "codes"), cid, **_NEVER_DECODE)
        if loose:
            pipe.hmget(self._key(job_id, "outcomes"), loose)
        replies = pipe.execute()
        codes = dict(zip(chunk_ids, replies, strict=False))
        found = {p for p, raw in zip(loose, replies[-1] if loose else [], strict=True) if raw}
        for path, place in places.items():
            vec = codes[place.chunk_id]
            if vec and vec[place.position * _CELL] != 0:
                found.add(path)
        return found

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
            keys=[self._leases, self._unclaimed],
            args=[self.prefix, now_arg, 100, grace_arg, self.broker_key_prefix],
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
        # Named fields only: the spec and the chunk order are not counters, and the
        # order grows with the job. A snapshot costs the same for any number of files.
        pipe = self._r.pipeline(transaction=False)
        pipe.hmget(self._key(job_id, "meta"), _PROGRESS_FIELDS)
        pipe.hgetall(self._key(job_id, "failures"))
        pipe.scard(self._key(job_id, "done"))
        pipe.hvals(self._key(job_id, "inflight"))  # one entry a chunk sending a large file
        values, failures, done, in_flight = pipe.execute()
        meta = {k: v for k, v in zip(_PROGRESS_FIELDS, values, strict=True) if v is not None}
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
            interrupted=meta.get("interrupted", ""),
            bytes_in_flight=sum(int(v) for v in in_flight),
            commit=meta.get("commit") == "1",
            committed=num("committed"),
            commit_failed=num("commit_failed"),
            commit_pending=num("commit_pending"),
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
        """Chunk by chunk in submission order (a few chunks per round trip), then the
        files in no chunk: the job is never all in memory."""
        with map_broker_errors():
            order = self._order(job_id)
        for start in range(0, len(order), _REPORT_BATCH):
            with map_broker_errors():
                batch = self._report_batch(job_id, order[start : start + _REPORT_BATCH])
            yield from batch
        with map_broker_errors():
            for _path, raw in self._r.hscan_iter(self._key(job_id, "outcomes"), count=500):
                yield outcome_from_dict(json.loads(raw))

    def _report_batch(self, job_id: str, chunk_ids: Sequence[str]) -> list[FileOutcome]:
        """The outcomes of the files of ``chunk_ids``, in their order."""
        pipe = self._r.pipeline(transaction=False)
        for cid in chunk_ids:
            pipe.execute_command("HGET", self._key(job_id, "chunks"), cid, **_NEVER_DECODE)
            pipe.execute_command("HGET", self._key(job_id, "codes"), cid, **_NEVER_DECODE)
        replies = pipe.execute()
        cells: list[tuple[FileRef, int, int, str]] = []  # ref, code, micros, details field
        for raw, vec in zip(replies[::2], replies[1::2], strict=True):
            if raw is None or not vec:
                continue
            chunk = chunk_from_blob(raw)
            for index, ref in enumerate(chunk.files):
                cell = vec[index * _CELL : (index + 1) * _CELL]
                if cell[0]:
                    micros = int.from_bytes(cell[1:], "big")
                    cells.append((ref, cell[0], micros, f"{chunk.chunk_id} {index}"))
        wanted = [field for _, code, _, field in cells if code != 1]
        details = dict(zip(wanted, self._r.hmget(self._key(job_id, "details"), wanted),
                           strict=True)) if wanted else {}  # fmt: skip
        out: list[FileOutcome] = []
        for ref, code, micros, field in cells:
            if code == 1:
                out.append(plain_stored(ref, micros))
            elif details.get(field) is not None:
                out.append(outcome_from_dict(json.loads(details[field])))
        return out

    def address(self) -> str:
        """Where the records are, as ``host:port`` (or the socket path): for messages,
        never with a password."""
        kwargs = self._r.connection_pool.connection_kwargs
        if "path" in kwargs:
            return str(kwargs["path"])
        return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"

    @property
    def _submissions(self) -> str:
        return f"{self.prefix}:submissions"

    @broker_command
    def hold_submission(self, job_id: str, lease_s: float) -> bool:
        keys = [self._submissions, self._key(job_id, "meta")]
        result = int(self._hold(keys=keys, args=[job_id, int(lease_s * 1000), ""]))
        if result < 0:
            raise UnknownJob(f"no such job: {job_id}")
        return result == 1

    @broker_command
    def close_interrupted(self, now: float | None = None) -> list[str]:
        now_arg = "" if now is None else str(int(now * 1000))
        args = [self.prefix, now_arg, 100, self.ttl_ms, time.time()]
        return [
            str(job_id) for job_id in self._close_interrupted(keys=[self._submissions], args=args)
        ]

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

    @broker_command
    def file_in_flight(self, job_id: str, chunk_id: str, sent: int) -> None:
        key = self._key(job_id, "inflight")
        if sent:
            pipe = self._r.pipeline(transaction=False)
            pipe.hset(key, chunk_id, sent)
            pipe.pexpire(key, self.ttl_ms)
            pipe.execute()
        else:
            self._r.hdel(key, chunk_id)

    # -- storage commitment ------------------------------------------------------------

    def _transaction(self, transaction_uid: str) -> str:
        return f"{self.prefix}:commit:{transaction_uid}"

    @broker_command
    def chunk_report(self, job_id: str, chunk_id: str) -> list[FileOutcome]:
        return self._report_batch(job_id, [chunk_id])

    @broker_command
    def commit_requested(
        self, job_id: str, chunk_id: str, transaction_uid: str, instances: Mapping[str, str]
    ) -> None:
        key = self._transaction(transaction_uid)
        pipe = self._r.pipeline(transaction=True)
        pipe.hset(key, mapping={"job": job_id, "chunk": chunk_id,
                                "instances": json.dumps(dict(instances))})  # fmt: skip
        pipe.pexpire(key, self.ttl_ms)
        pipe.execute()

    @broker_command
    def commit_reported(self, report: CommitmentReport) -> str | None:
        key = self._transaction(report.transaction_uid)
        job_id, instances = self._r.hmget(key, ["job", "instances"])
        if job_id is None or instances is None:
            return None
        states = states_by_path(json.loads(instances), report)
        self.record_commitment(job_id, report.transaction_uid, states)
        pipe = self._r.pipeline(transaction=True)
        pipe.hset(key, "report", report_to_json(report))
        pipe.rpush(f"{key}:end", "1")
        pipe.pexpire(f"{key}:end", self.ttl_ms)
        pipe.execute()
        return str(job_id)

    @broker_command
    def wait_commit_report(self, transaction_uid: str, timeout_s: float) -> CommitmentReport | None:
        key = self._transaction(transaction_uid)
        if timeout_s > 0:
            # Blocks until the report's push (left in place for any other waiter).
            self._r.brpoplpush(f"{key}:end", f"{key}:end", max(timeout_s, 0.01))
        raw = self._r.hget(key, "report")
        return None if raw is None else report_from_json(raw)

    @broker_command
    def record_commitment(
        self,
        job_id: str,
        transaction_uid: str,
        states: Mapping[str, tuple[CommitState, str]],
    ) -> None:
        args: list[Any] = [self.ttl_ms, transaction_uid]
        for path, (state, reason) in states.items():
            args += [path, state.value, reason.replace("\t", " ")]
        keys = [self._key(job_id, "meta"), self._key(job_id, "commitment")]
        self._record_commitment(keys=keys, args=args)

    @broker_command
    def commitment(self, job_id: str, paths: Sequence[str]) -> dict[str, tuple[str, str]]:
        if not paths:
            return {}
        values = self._r.hmget(self._key(job_id, "commitment"), list(paths))
        found: dict[str, tuple[str, str]] = {}
        for path, value in zip(paths, values, strict=True):
            if value is not None:
                state, reason, _tx = str(value).split("\t")
                found[path] = (state, reason)
        return found


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
    """Outcomes of files in no chunk as the scripts' ``record_items`` takes them."""
    return json.dumps({"l": [_outcome_args(outcome) for outcome in outcomes], "g": []})


def _cell_args(place: _Place, outcome: FileOutcome) -> list[Any]:
    """The script arguments of the outcome of a file of a chunk: index, code,
    microseconds, JSON ('' for a plain stored one), failure key, bytes."""
    nbytes = outcome.bytes if outcome.outcome is Outcome.STORED else 0
    micros = plain_micros(place.ref, outcome)
    if micros is not None:
        return [place.position, 1, micros, "", "", nbytes]
    data = outcome_to_dict(outcome)
    code = _CODES[outcome.outcome]
    return [place.position, code, 0, json.dumps(data), data["failure_key"], nbytes]


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
