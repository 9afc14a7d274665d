"""Where a job's records live: the :class:`JobStore` contract and its in-memory version.

A job store holds a job's spec, chunks and totals; every file's outcome; the counters
of a progress display; the halt and cancel flags; and the per-chunk leases that keep two
runners off the same chunk. Two implementations pass the same contract tests:
:class:`MemoryJobStore` (one process, the embedded mode) and
:class:`~dispatch.jobs.redis_store.RedisJobStore` (every worker of a cluster).

Contract highlights:

- :meth:`JobStore.record` is atomic and idempotent: a file already confirmed STORED is
  never overwritten nor counted twice; a later outcome of a file replaces an earlier
  unsuccessful one and the counters follow.
- :meth:`JobStore.halt` records the first permanent failure only ("first wins").
- :meth:`JobStore.claim_chunk` succeeds for one holder at a time until its lease runs
  out; the lease is kept alive by :meth:`JobStore.renew_chunk`. A chunk whose lease ran
  out without :meth:`JobStore.finish_chunk` is handed out by :meth:`JobStore.reap`.
- :meth:`JobStore.reopen` (``dispatch retry``) takes a finished job back to
  ``queued``: the chunks that hold unsuccessful files are no longer done, those files'
  outcomes are forgotten (uncounted) until new ones arrive; STORED files and the files
  found unusable at submission (they belong to no chunk) keep their outcomes.
- A job may be created *open* (``create_job(..., open=True)``) while its inputs are
  still being scanned: :meth:`JobStore.add_chunks` adds chunks and their totals
  atomically, :meth:`JobStore.close_job` records the scan's problems and closes it. An
  open job never reaches a final state (finishing its last chunk so far does not
  finish it); ``close_job`` finishes it when every chunk is already done.
- Leases and times are wall-clock seconds (``time.time``), so that hosts agree.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from dispatch.errors import DispatchError
from dispatch.jobs.model import (
    Chunk,
    JobSpec,
    JobState,
    failure_key,
    final_state,
)
from dispatch.outcome import FileOutcome, Outcome

Clock = Callable[[], float]


class UnknownJob(DispatchError):
    """No such job (never created, or its records expired)."""


class JobNotFinished(DispatchError):
    """The job still has chunks to run (it cannot be reopened yet)."""


@dataclass(frozen=True)
class JobProgress:
    """A snapshot of a job: totals, what is done, failures so far, timing.

    Times are wall-clock seconds since the epoch (``started``/``finished`` 0 until
    then). ``retries`` counts transient failures that were (or will be) retried.
    """

    job_id: str
    name: str
    destination: str
    state: JobState
    total_files: int
    total_bytes: int
    chunks: int
    chunks_done: int
    stored: int = 0
    failed: int = 0
    not_sent: int = 0
    bytes_stored: int = 0
    retries: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    halted_path: str = ""
    halt_reason: str = ""
    created: float = 0.0
    started: float = 0.0
    finished: float = 0.0
    updated: float = 0.0
    open: bool = False
    """The inputs are still being scanned: the totals are those found so far."""

    @property
    def done(self) -> int:
        """Files with an outcome."""
        return self.stored + self.failed + self.not_sent

    @property
    def is_finished(self) -> bool:
        """True once every chunk is done and the final state is set."""
        return self.finished > 0

    @property
    def elapsed_s(self) -> float:
        if not self.started:
            return 0.0
        end = self.finished or time.time()
        return max(end - self.started, 0.0)

    @property
    def files_per_s(self) -> float:
        secs = self.elapsed_s
        return self.done / secs if secs > 0 else 0.0

    @property
    def bytes_per_s(self) -> float:
        secs = self.elapsed_s
        return self.bytes_stored / secs if secs > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the average rate so far; None before any file is done."""
        rate = self.files_per_s
        if self.is_finished:
            return 0.0
        if rate <= 0:
            return None
        return max(self.total_files - self.done, 0) / rate


class JobStore(Protocol):
    """The records of jobs; see the module docstring for the contract."""

    def create_job(
        self,
        spec: JobSpec,
        chunks: Sequence[Chunk],
        problems: Sequence[FileOutcome] = (),
        *,
        open: bool = False,
    ) -> None:
        """Record a new job in state ``queued``. ``problems`` are files found unusable
        while scanning: recorded at once as NOT_SENT and counted in the totals. A job
        without chunks is finished at once, unless ``open``: an open job takes more
        chunks (:meth:`add_chunks`) until :meth:`close_job`."""

    def add_chunks(self, job_id: str, chunks: Sequence[Chunk]) -> None:
        """Add chunks to an open job, atomically with their totals (files, bytes).
        Raises :class:`UnknownJob`."""

    def close_job(self, job_id: str, problems: Sequence[FileOutcome] = ()) -> bool:
        """Record the scan's ``problems`` (NOT_SENT, counted in the totals) and close
        the job: from now on it finishes with its last chunk. True when this finished
        it (every chunk was done already). Raises :class:`UnknownJob`."""

    def spec(self, job_id: str) -> JobSpec:
        """The job's spec; raises :class:`UnknownJob`."""

    def chunk(self, job_id: str, chunk_id: str) -> Chunk:
        """One chunk of the job; raises :class:`UnknownJob`."""

    def chunk_ids(self, job_id: str) -> list[str]:
        """Every chunk id of the job, in submission order."""

    def record(self, job_id: str, outcome: FileOutcome) -> bool:
        """Record one file's outcome atomically; False when the file was already
        STORED (nothing changes) or the job is unknown."""

    def record_many(self, job_id: str, outcomes: Sequence[FileOutcome]) -> list[bool]:
        """:meth:`record` for several outcomes in order, in one step (one round trip to
        a remote store); one flag per outcome, as :meth:`record` returns."""

    def confirmed(self, job_id: str, chunk_id: str) -> set[str]:
        """The paths of the chunk that the peer confirmed (STORED)."""

    def settled(self, job_id: str, paths: Sequence[str]) -> set[str]:
        """Those of ``paths`` (files of the job) with a final outcome: stored, or failed
        for good (a permanent failure, or retries exhausted). A retry sends none of them
        again; transient failures are not recorded until they are final."""

    def halt(self, job_id: str, path: str, reason: str) -> bool:
        """Halt the job for the first permanent failure (``path`` and its ``reason``):
        the job's state becomes ``halted``. False when it was already halted."""

    def cancel(self, job_id: str) -> bool:
        """Cancel the job: queued chunks send nothing, running ones stop after their
        current file. False when the job is unknown or already finished."""

    def stopped(self, job_id: str) -> JobState | None:
        """``halted`` or ``cancelled`` when the job must send nothing more, else None."""

    def add_retry(self, job_id: str, chunk_id: str) -> int:
        """Count a transient failure of the chunk; return how many it has had."""

    def claim_chunk(self, job_id: str, chunk_id: str, holder: str, lease_s: float) -> bool:
        """Take the chunk's lock for ``lease_s`` seconds unless another holder has it;
        marks the job running."""

    def renew_chunk(self, job_id: str, chunk_id: str, holder: str, lease_s: float) -> bool:
        """Extend the holder's lease; False when the holder lost the lock."""

    def release_chunk(self, job_id: str, chunk_id: str, holder: str) -> None:
        """Drop the holder's lock (a no-op for anyone else). The chunk stays watched:
        unless finished or deferred, :meth:`reap` hands it out once the lease is over."""

    def defer_chunk(self, job_id: str, chunk_id: str, until: float) -> None:
        """The chunk will be tried again (a retry is scheduled): :meth:`reap` hands it
        out only if nobody has claimed it by ``until``."""

    def finish_chunk(self, job_id: str, chunk_id: str) -> bool:
        """Mark the chunk done; True when this was the job's last chunk (the job's
        final state is then set)."""

    def chunk_done(self, job_id: str, chunk_id: str) -> bool:
        """True once :meth:`finish_chunk` was called for the chunk."""

    def reap(self, now: float | None = None) -> list[tuple[str, str]]:
        """The (job, chunk) pairs whose lease ran out before they were finished, each
        handed out once (to be enqueued again)."""

    def reopen(self, job_id: str) -> list[str]:
        """Make a finished job send again its files that were not stored; return the
        ids of the chunks to enqueue again, in submission order ([] and nothing
        changed when every file of every chunk was stored).

        Atomically: each chunk file whose outcome is FAILED or NOT_SENT (or missing)
        has that outcome removed and uncounted; those chunks are no longer done and
        their retry counts restart; the job's halt and cancel flags, halt reason and
        finished time are cleared and its state is ``queued`` again. STORED files are
        untouched (the runner skips them) and so are the files found unusable when the
        job was submitted: they belong to no chunk and would fail again. Raises
        :class:`UnknownJob`, or :class:`JobNotFinished` while the job still runs.
        """

    def progress(self, job_id: str) -> JobProgress:
        """A snapshot of the job; raises :class:`UnknownJob`."""

    def jobs(self, limit: int = 20) -> list[JobProgress]:
        """The most recent jobs, newest first."""

    def report(self, job_id: str) -> Iterator[FileOutcome]:
        """Every recorded per-file outcome of the job (order unspecified)."""


@dataclass
class _Job:
    spec: JobSpec
    chunks: dict[str, Chunk]
    total_files: int
    total_bytes: int
    created: float
    state: JobState = JobState.QUEUED
    outcomes: dict[str, FileOutcome] = field(default_factory=dict)
    stored_paths: set[str] = field(default_factory=set)
    counts: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    bytes_stored: int = 0
    retries: int = 0
    attempts: Counter[str] = field(default_factory=Counter)
    done: set[str] = field(default_factory=set)
    cancelled: bool = False
    halted_path: str = ""
    halt_reason: str = ""
    halted: bool = False
    started: float = 0.0
    finished: float = 0.0
    updated: float = 0.0
    open: bool = False


class MemoryJobStore:
    """A :class:`JobStore` in this process's memory, safe for threads. Records never
    expire (they live as long as the process)."""

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}
        self._locks: dict[tuple[str, str], tuple[str, float]] = {}
        self._leases: dict[tuple[str, str], float] = {}

    def _job(self, job_id: str) -> _Job:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise UnknownJob(f"no such job: {job_id}") from None

    def create_job(
        self,
        spec: JobSpec,
        chunks: Sequence[Chunk],
        problems: Sequence[FileOutcome] = (),
        *,
        open: bool = False,
    ) -> None:
        now = self._clock()
        job = _Job(
            spec=spec,
            chunks={c.chunk_id: c for c in chunks},
            total_files=sum(len(c.files) for c in chunks) + len(problems),
            total_bytes=sum(c.bytes for c in chunks),
            created=now,
            updated=now,
            open=open,
        )
        with self._lock:
            self._jobs[spec.job_id] = job
            for outcome in problems:
                self._record(job, outcome)
            if not chunks and not open:
                self._finish(job)

    def add_chunks(self, job_id: str, chunks: Sequence[Chunk]) -> None:
        with self._lock:
            job = self._job(job_id)
            for c in chunks:
                job.chunks[c.chunk_id] = c
                job.total_files += len(c.files)
                job.total_bytes += c.bytes
            job.updated = self._clock()

    def close_job(self, job_id: str, problems: Sequence[FileOutcome] = ()) -> bool:
        with self._lock:
            job = self._job(job_id)
            job.total_files += len(problems)
            for outcome in problems:
                self._record(job, outcome)
            job.open = False
            if len(job.done) >= len(job.chunks) and not job.finished:
                self._finish(job)
                return True
            return False

    def spec(self, job_id: str) -> JobSpec:
        with self._lock:
            return self._job(job_id).spec

    def chunk(self, job_id: str, chunk_id: str) -> Chunk:
        with self._lock:
            try:
                return self._job(job_id).chunks[chunk_id]
            except KeyError:
                raise UnknownJob(f"no chunk {chunk_id} in job {job_id}") from None

    def chunk_ids(self, job_id: str) -> list[str]:
        with self._lock:
            return list(self._job(job_id).chunks)

    def _record(self, job: _Job, outcome: FileOutcome) -> bool:
        path = outcome.path
        if path in job.stored_paths:
            return False
        previous = job.outcomes.get(path)
        if previous is not None:
            job.counts[previous.outcome.value] -= 1
            key = failure_key(previous)
            if key:
                job.failures[key] -= 1
        job.outcomes[path] = outcome
        job.counts[outcome.outcome.value] += 1
        if outcome.outcome is Outcome.STORED:
            job.stored_paths.add(path)
            job.bytes_stored += outcome.bytes
        key = failure_key(outcome)
        if key:
            job.failures[key] += 1
        job.updated = self._clock()
        return True

    def record(self, job_id: str, outcome: FileOutcome) -> bool:
        with self._lock:
            job = self._jobs.get(job_id)
            return False if job is None else self._record(job, outcome)

    def record_many(self, job_id: str, outcomes: Sequence[FileOutcome]) -> list[bool]:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return [False] * len(outcomes)
            return [self._record(job, outcome) for outcome in outcomes]

    def confirmed(self, job_id: str, chunk_id: str) -> set[str]:
        with self._lock:
            job = self._job(job_id)
            chunk = job.chunks.get(chunk_id)
            files = chunk.files if chunk else ()
            return {f.path for f in files if f.path in job.stored_paths}

    def settled(self, job_id: str, paths: Sequence[str]) -> set[str]:
        with self._lock:
            outcomes = self._job(job_id).outcomes
            return {p for p in paths if p in outcomes}

    def halt(self, job_id: str, path: str, reason: str) -> bool:
        with self._lock:
            job = self._job(job_id)
            if job.halted:
                return False
            job.halted, job.halted_path, job.halt_reason = True, path, reason
            if job.state in (JobState.QUEUED, JobState.RUNNING):
                job.state = JobState.HALTED
            return True

    def cancel(self, job_id: str) -> bool:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.finished:
                return False
            job.cancelled = True
            job.state = JobState.CANCELLED
            return True

    def stopped(self, job_id: str) -> JobState | None:
        with self._lock:
            job = self._job(job_id)
            if job.cancelled:
                return JobState.CANCELLED
            return JobState.HALTED if job.halted else None

    def add_retry(self, job_id: str, chunk_id: str) -> int:
        with self._lock:
            job = self._job(job_id)
            job.retries += 1
            job.attempts[chunk_id] += 1
            return job.attempts[chunk_id]

    def claim_chunk(self, job_id: str, chunk_id: str, holder: str, lease_s: float) -> bool:
        now = self._clock()
        key = (job_id, chunk_id)
        with self._lock:
            job = self._job(job_id)
            current = self._locks.get(key)
            if current is not None and current[1] > now:
                return False
            self._locks[key] = (holder, now + lease_s)
            self._leases[key] = now + lease_s
            if job.state is JobState.QUEUED:
                job.state = JobState.RUNNING
            if not job.started:
                job.started = now
            return True

    def renew_chunk(self, job_id: str, chunk_id: str, holder: str, lease_s: float) -> bool:
        now = self._clock()
        key = (job_id, chunk_id)
        with self._lock:
            current = self._locks.get(key)
            if current is None or current[0] != holder or current[1] <= now:
                return False
            self._locks[key] = (holder, now + lease_s)
            self._leases[key] = now + lease_s
            return True

    def release_chunk(self, job_id: str, chunk_id: str, holder: str) -> None:
        key = (job_id, chunk_id)
        with self._lock:
            current = self._locks.get(key)
            if current is not None and current[0] == holder:
                del self._locks[key]

    def defer_chunk(self, job_id: str, chunk_id: str, until: float) -> None:
        with self._lock:
            self._leases[(job_id, chunk_id)] = until

    def _finish(self, job: _Job) -> None:
        job.state = final_state(
            cancelled=job.cancelled,
            halted=job.halted,
            stored=job.counts["stored"],
            failed=job.counts["failed"],
            not_sent=job.counts["not_sent"],
        )
        job.finished = self._clock()

    def finish_chunk(self, job_id: str, chunk_id: str) -> bool:
        with self._lock:
            job = self._job(job_id)
            job.done.add(chunk_id)
            self._leases.pop((job_id, chunk_id), None)
            if len(job.done) >= len(job.chunks) and not job.finished and not job.open:
                self._finish(job)
                return True
            return False

    def chunk_done(self, job_id: str, chunk_id: str) -> bool:
        with self._lock:
            return chunk_id in self._job(job_id).done

    def reap(self, now: float | None = None) -> list[tuple[str, str]]:
        now = self._clock() if now is None else now
        found: list[tuple[str, str]] = []
        with self._lock:
            for key, until in list(self._leases.items()):
                lock = self._locks.get(key)
                if until > now or (lock is not None and lock[1] > now):
                    continue
                del self._leases[key]
                job = self._jobs.get(key[0])
                if job is not None and key[1] not in job.done:
                    found.append(key)
        return found

    def reopen(self, job_id: str) -> list[str]:
        with self._lock:
            job = self._job(job_id)
            if not job.finished:
                raise JobNotFinished(f"job {job_id} has not finished yet")
            reopened: list[str] = []
            for chunk_id, chunk in job.chunks.items():
                unstored = [f.path for f in chunk.files if f.path not in job.stored_paths]
                if not unstored:
                    continue
                for path in unstored:
                    previous = job.outcomes.pop(path, None)
                    if previous is not None:
                        job.counts[previous.outcome.value] -= 1
                        key = failure_key(previous)
                        if key:
                            job.failures[key] -= 1
                job.done.discard(chunk_id)
                job.attempts.pop(chunk_id, None)
                reopened.append(chunk_id)
            if reopened:
                job.state = JobState.QUEUED
                job.cancelled = job.halted = False
                job.halted_path = job.halt_reason = ""
                job.finished = 0.0
                job.updated = self._clock()
            return reopened

    def progress(self, job_id: str) -> JobProgress:
        with self._lock:
            job = self._job(job_id)
            return JobProgress(
                job_id=job_id,
                name=job.spec.name,
                destination=job.spec.destination,
                state=job.state,
                total_files=job.total_files,
                total_bytes=job.total_bytes,
                chunks=len(job.chunks),
                chunks_done=len(job.done),
                stored=job.counts["stored"],
                failed=job.counts["failed"],
                not_sent=job.counts["not_sent"],
                bytes_stored=job.bytes_stored,
                retries=job.retries,
                failures={k: v for k, v in job.failures.items() if v > 0},
                halted_path=job.halted_path,
                halt_reason=job.halt_reason,
                created=job.created,
                started=job.started,
                finished=job.finished,
                updated=job.updated,
                open=job.open,
            )

    def jobs(self, limit: int = 20) -> list[JobProgress]:
        with self._lock:
            newest = sorted(self._jobs.values(), key=lambda j: j.created, reverse=True)
            ids = [j.spec.job_id for j in newest[:limit]]
        return [self.progress(job_id) for job_id in ids]

    def report(self, job_id: str) -> Iterator[FileOutcome]:
        with self._lock:
            outcomes = list(self._job(job_id).outcomes.values())
        yield from outcomes
