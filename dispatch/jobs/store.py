"""Where a job's records live: the :class:`JobStore` contract, and :class:`JobProgress`.

A job store holds a job's spec, chunks and totals; every file's outcome; the counters
of a progress display; the halt and cancel flags; and the per-chunk leases that keep two
runners off the same chunk. Two implementations pass the same contract tests:
:class:`~dispatch.jobs.backends.memory.MemoryJobStore` (one process, the embedded mode)
and :class:`~dispatch.jobs.backends.redis.RedisJobStore` (every worker of a cluster).

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
- The submitter of an open job holds a lease on it (:meth:`JobStore.hold_submission`,
  renewed by a heartbeat); when it runs out, :meth:`JobStore.close_interrupted` closes
  the job as interrupted.
- Leases and times are wall-clock seconds (``time.time``), so that hosts agree.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from dispatch.commitment import CommitmentReport, CommitState
from dispatch.errors import JobNotFinished, UnknownJob
from dispatch.jobs.destinations import DestinationState
from dispatch.jobs.model import Chunk, JobSpec, JobState
from dispatch.outcome import FileOutcome

if TYPE_CHECKING:
    from dispatch.jobs.backends.memory import MemoryJobStore

__all__ = ["JobNotFinished", "JobProgress", "JobStore", "MemoryJobStore", "UnknownJob"]


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
    interrupted: str = ""
    """Why the submission broke off ("submission interrupted after N files"), "" when it
    did not: the job then ends ``interrupted`` once its recorded chunks are done."""
    bytes_in_flight: int = 0
    """Data-set bytes of large files being sent now, not yet stored (see
    :meth:`JobStore.file_in_flight`): progress moves while a large file goes out."""
    commit: bool = False
    """Submitted with ``--commit``: storage commitment is requested for stored files."""
    committed: int = 0
    commit_failed: int = 0
    commit_pending: int = 0
    """Stored files by commitment state (see :mod:`dispatch.jobs.commit_chunk`)."""

    @property
    def commit_settled(self) -> bool:
        """Every stored file has a commitment state (True without ``--commit``)."""
        if not self.commit:
            return True
        return self.committed + self.commit_failed + self.commit_pending >= self.stored

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

    def record(self, job_id: str, outcome: FileOutcome) -> bool:
        """Record one file's outcome atomically; False when the file was already
        STORED (nothing changes) or the job is unknown."""

    def record_many(self, job_id: str, outcomes: Sequence[FileOutcome]) -> list[bool]:
        """:meth:`record` for several outcomes in order, in one step (one round trip to
        a remote store); one flag per outcome, as :meth:`record` returns."""

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
        handed out once (to be enqueued again). A store that can see the broker's queues
        (:class:`~dispatch.jobs.backends.redis.RedisJobStore` with an unclaimed grace)
        also hands out the chunks never claimed whose task is not queued: their
        submitter died before publishing it."""

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
        """Every recorded per-file outcome of the job: the chunks' files in submission
        order, then the files in no chunk (found unusable by the scan). A remote store
        streams it, a few chunks at a time, so that a job of millions of files is never
        all in memory; an unknown job has none."""

    def hold_submission(self, job_id: str, lease_s: float) -> bool:
        """The submitter's lease on an open job, taken or renewed for ``lease_s``
        seconds while it scans and enqueues. False when the job is no longer open
        (closed, or closed as interrupted: the submitter must add nothing more). Raises
        :class:`UnknownJob`."""

    def close_interrupted(self, now: float | None = None) -> list[str]:
        """Close, each once, the open jobs whose submitter's lease ran out (it died, or
        stalled longer than its lease, while scanning): the job records "submission
        interrupted after N files", takes no more chunks, and ends ``interrupted`` once
        the chunks it has are done (at once when they are). Returns their ids."""

    # -- destinations that cannot be reached (see dispatch.jobs.destinations) ----------

    def destination(self, destination: str) -> DestinationState:
        """What is known of ``destination``'s reachability (an empty state when
        nothing is)."""

    def claim_probe(
        self, destination: str, now: float, hold_s: float
    ) -> tuple[bool, DestinationState]:
        """May a chunk try ``destination`` now? Atomically: yes when it is not waiting;
        when it is and its next try is due, yes for one caller only (the next try moves
        ``hold_s`` ahead, so that the others wait while this one tries); otherwise no.
        Returns the answer and the state as it was read."""

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
        """Worker ``by`` could not reach ``destination`` at ``now`` (``error``):
        atomically, it is waiting since ``now`` unless it was already, one failure
        more, its next try after :func:`~dispatch.jobs.backoff.wait_s` of the failures
        in a row (``fraction`` its random part). Returns the new state."""

    def destination_reached(self, destination: str, by: str, now: float) -> None:
        """Worker ``by`` had an association accepted by ``destination`` at ``now``: it
        waits no more."""

    def add_wait(self, job_id: str) -> int:
        """Count, in the job's retries (not a chunk's), a chunk's failure to reach its
        destination; return the job's retries. 0 for an unknown job."""

    def file_in_flight(self, job_id: str, chunk_id: str, sent: int) -> None:
        """The file chunk ``chunk_id`` is sending has ``sent`` data-set bytes out so far
        (0: none in flight). Called for large files only, a few times a second at most."""

    # -- storage commitment (see dispatch.jobs.commit_chunk) ---------------------------

    def chunk_report(self, job_id: str, chunk_id: str) -> list[FileOutcome]:
        """The recorded outcomes of the chunk's files, in its order."""

    def commit_requested(
        self, job_id: str, chunk_id: str, transaction_uid: str, instances: Mapping[str, str]
    ) -> None:
        """Before its N-ACTION goes out: ``transaction_uid`` asks commitment of
        ``instances`` (SOP instance UID -> path) of the chunk, so that a report reaching
        any host (:meth:`commit_reported`) finds its job and files."""

    def commit_reported(self, report: CommitmentReport) -> str | None:
        """Record what a report says of its transaction's files (each file's state, see
        :meth:`record_commitment`) and keep it for :meth:`wait_commit_report`. Returns
        the job's id; None when the transaction is unknown (nothing recorded)."""

    def wait_commit_report(self, transaction_uid: str, timeout_s: float) -> CommitmentReport | None:
        """The report of ``transaction_uid`` recorded by :meth:`commit_reported`, waited
        for at most ``timeout_s``; None when none came."""

    def record_commitment(
        self,
        job_id: str,
        transaction_uid: str,
        states: Mapping[str, tuple[CommitState, str]],
    ) -> None:
        """Record each file's (path -> state, reason) commitment state, counted in the
        progress. ``committed`` is final; ``commit_pending`` never replaces a state the
        same transaction's report gave; otherwise the newest state wins."""

    def commitment(self, job_id: str, paths: Sequence[str]) -> dict[str, tuple[str, str]]:
        """The commitment state and reason of those of ``paths`` that have one."""


def __getattr__(name: str) -> Any:
    # MemoryJobStore lived here before the backends had a package of their own; it is
    # imported on demand because the backend imports this module.
    if name == "MemoryJobStore":
        from dispatch.jobs.backends.memory import MemoryJobStore

        return MemoryJobStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
