"""The backend of one process (the embedded mode): job records and association slots
in memory, safe for threads.

:class:`MemoryJobStore` fulfils :class:`~dispatch.jobs.store.JobStore` and
:class:`MemorySlots` :class:`~dispatch.jobs.slots.SlotPool`; they pass the same contract
tests as the Redis backend (:mod:`dispatch.jobs.backends.redis`).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from dispatch.commitment import CommitmentReport, CommitState, states_by_path
from dispatch.errors import JobNotFinished, UnknownJob
from dispatch.jobs.backoff import wait_s
from dispatch.jobs.destinations import DestinationState
from dispatch.jobs.model import Chunk, JobSpec, JobState, failure_key, final_state
from dispatch.jobs.store import JobProgress
from dispatch.outcome import FileOutcome, Outcome

__all__ = ["MemoryJobStore", "MemorySlots"]

Clock = Callable[[], float]
"""Seconds: wall-clock time for the job store, any monotonic clock for the slots."""


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
    interrupted: str = ""
    submission_until: float = 0.0
    in_flight: dict[str, int] = field(default_factory=dict)
    """With ``open``: the end of the submitter's lease (0: none taken)."""
    commitment: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    """path -> (commitment state, reason, transaction UID)."""


class MemoryJobStore:
    """A :class:`JobStore` in this process's memory, safe for threads. Records never
    expire (they live as long as the process)."""

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}
        self._locks: dict[tuple[str, str], tuple[str, float]] = {}
        self._leases: dict[tuple[str, str], float] = {}
        self._destinations: dict[str, DestinationState] = {}
        self._transactions: dict[str, tuple[str, dict[str, str]]] = {}
        self._reports: dict[str, CommitmentReport] = {}
        self._reported = threading.Condition(self._lock)

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
            interrupted=bool(job.interrupted),
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
                interrupted=job.interrupted,
                bytes_in_flight=sum(job.in_flight.values()),
                commit=job.spec.commit_timeout_s is not None,
                committed=job.counts[CommitState.COMMITTED.value],
                commit_failed=job.counts[CommitState.FAILED.value],
                commit_pending=job.counts[CommitState.PENDING.value],
            )

    def jobs(self, limit: int = 20) -> list[JobProgress]:
        with self._lock:
            newest = sorted(self._jobs.values(), key=lambda j: j.created, reverse=True)
            ids = [j.spec.job_id for j in newest[:limit]]
        return [self.progress(job_id) for job_id in ids]

    def report(self, job_id: str) -> Iterator[FileOutcome]:
        with self._lock:
            job = self._job(job_id)
            in_chunks = list(dict.fromkeys(f.path for c in job.chunks.values() for f in c.files))
            outcomes = [job.outcomes[p] for p in in_chunks if p in job.outcomes]
            listed = set(in_chunks)
            outcomes += [o for p, o in job.outcomes.items() if p not in listed]
        yield from outcomes

    def hold_submission(self, job_id: str, lease_s: float) -> bool:
        with self._lock:
            job = self._job(job_id)
            if not job.open:
                return False
            job.submission_until = self._clock() + lease_s
            return True

    def close_interrupted(self, now: float | None = None) -> list[str]:
        now = self._clock() if now is None else now
        closed: list[str] = []
        with self._lock:
            for job_id, job in self._jobs.items():
                if not job.open or not job.submission_until or job.submission_until > now:
                    continue
                job.open = False
                job.interrupted = f"submission interrupted after {job.total_files} files"
                job.updated = now
                if len(job.done) >= len(job.chunks) and not job.finished:
                    self._finish(job)
                closed.append(job_id)
        return closed

    def destination(self, destination: str) -> DestinationState:
        with self._lock:
            return self._destinations.get(destination, DestinationState(destination))

    def claim_probe(
        self, destination: str, now: float, hold_s: float
    ) -> tuple[bool, DestinationState]:
        with self._lock:
            state = self._destinations.get(destination, DestinationState(destination))
            if not state.waiting:
                return True, state
            if state.next_try > now:
                return False, state
            self._destinations[destination] = replace(state, next_try=now + hold_s)
            return True, state

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
        with self._lock:
            state = self._destinations.get(destination, DestinationState(destination))
            if not state.waiting:
                state = replace(state, since=now, failures=0)
            state = replace(
                state,
                error=error,
                failures=state.failures + 1,
                next_try=now + wait_s(state.failures, base_s, cap_s, fraction),
            )
            self._destinations[destination] = state
            return state

    def destination_reached(self, destination: str, by: str, now: float) -> None:
        with self._lock:
            self._destinations[destination] = DestinationState(
                destination, reached_at=now, reached_by=by
            )

    def add_wait(self, job_id: str) -> int:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return 0
            job.retries += 1
            return job.retries

    def file_in_flight(self, job_id: str, chunk_id: str, sent: int) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return
            if sent:
                job.in_flight[chunk_id] = sent
            else:
                job.in_flight.pop(chunk_id, None)

    # -- storage commitment ------------------------------------------------------------

    def chunk_report(self, job_id: str, chunk_id: str) -> list[FileOutcome]:
        with self._lock:
            job = self._job(job_id)
            files = job.chunks[chunk_id].files if chunk_id in job.chunks else ()
            return [job.outcomes[f.path] for f in files if f.path in job.outcomes]

    def commit_requested(
        self, job_id: str, chunk_id: str, transaction_uid: str, instances: Mapping[str, str]
    ) -> None:
        with self._lock:
            self._transactions[transaction_uid] = (job_id, dict(instances))

    def commit_reported(self, report: CommitmentReport) -> str | None:
        with self._lock:
            found = self._transactions.get(report.transaction_uid)
            if found is None:
                return None
            job_id, instances = found
            job = self._jobs.get(job_id)
            if job is not None:
                states = states_by_path(instances, report)
                self._record_commitment(job, report.transaction_uid, states)
            self._reports[report.transaction_uid] = report
            self._reported.notify_all()
            return job_id

    def wait_commit_report(self, transaction_uid: str, timeout_s: float) -> CommitmentReport | None:
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while transaction_uid not in self._reports:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._reported.wait(remaining)
            return self._reports[transaction_uid]

    def record_commitment(
        self,
        job_id: str,
        transaction_uid: str,
        states: Mapping[str, tuple[CommitState, str]],
    ) -> None:
        with self._lock:
            self._record_commitment(self._job(job_id), transaction_uid, states)

    @staticmethod
    def _record_commitment(
        job: _Job, transaction_uid: str, states: Mapping[str, tuple[CommitState, str]]
    ) -> None:
        for path, (state, reason) in states.items():
            old = job.commitment.get(path)
            if old is not None:
                if old[0] == CommitState.COMMITTED or (
                    state is CommitState.PENDING and old[2] == transaction_uid
                ):
                    continue
                job.counts[old[0]] -= 1
            job.commitment[path] = (state.value, reason, transaction_uid)
            job.counts[state.value] += 1

    def commitment(self, job_id: str, paths: Sequence[str]) -> dict[str, tuple[str, str]]:
        with self._lock:
            job = self._job(job_id)
            return {p: job.commitment[p][:2] for p in paths if p in job.commitment}


class MemorySlots:
    """:class:`SlotPool` within one process; ``clock`` is injectable for tests."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._held: dict[str, dict[str, float]] = {}

    def _live(self, destination: str) -> dict[str, float]:
        now = self._clock()
        held = self._held.setdefault(destination, {})
        for holder in [h for h, until in held.items() if until <= now]:
            del held[holder]
        return held

    def try_acquire(self, destination: str, limit: int, holder: str, lease_s: float) -> bool:
        with self._lock:
            held = self._live(destination)
            if holder not in held and len(held) >= limit:
                return False
            held[holder] = self._clock() + lease_s
            return True

    def renew(self, destination: str, holder: str, lease_s: float) -> bool:
        with self._lock:
            held = self._live(destination)
            if holder not in held:
                return False
            held[holder] = self._clock() + lease_s
            return True

    def release(self, destination: str, holder: str) -> None:
        with self._lock:
            self._held.get(destination, {}).pop(holder, None)

    def in_use(self, destination: str) -> int:
        with self._lock:
            return len(self._live(destination))
