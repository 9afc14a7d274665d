"""One attempt at a chunk and what comes next: the retry decision of every runner.

The Celery task and the embedded mode both hand :func:`attempt_chunk` one run of a
chunk and act on its :class:`Decision`: run the chunk again after ``retry_in_s``
(a transient failure with retries left; Celery schedules it, the embedded mode queues
it), look at it again later (another runner holds it), or nothing more (done).

Retries are counted per chunk in the job record (:meth:`JobStore.add_retry`), so a
chunk handed on by the reaper keeps its count; with retries spent, :func:`give_up`
records the files still to send. A job allowed no retries counts none.

The one guard: any exception escaping a run (a bug, or an input the code does not
expect) ends the chunk here with recorded outcomes, the file in flight FAILED and the
others still to send NOT_SENT, both "internal error: ...", and the chunk finished, so
that its lease is released and nobody hands it on again. A path the store cannot
hold (a file name that is not UTF-8) is recorded under its printable spelling. When
the job store cannot be reached (or the job's records vanished) the exception
propagates untouched, and so does one raised while recording an internal error: the
chunk is then handed on once its lease runs out, as after a crash.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from dispatch.errors import BrokerUnavailable, UnknownJob
from dispatch.jobs.backoff import backoff_s
from dispatch.jobs.model import Chunk, JobSpec
from dispatch.jobs.runner import ChunkResult, ChunkStatus
from dispatch.jobs.store import JobStore
from dispatch.observe import current
from dispatch.outcome import FileOutcome, Outcome

log = logging.getLogger("dispatch.jobs")

__all__ = ["Backoff", "Decision", "attempt_chunk", "give_up"]


@dataclass(frozen=True)
class Backoff:
    """How long to wait before a retry: exponential from ``base_s`` up to ``cap_s``,
    full jitter (see :func:`~dispatch.jobs.backoff.backoff_s`)."""

    base_s: float = 2.0
    cap_s: float = 300.0

    def delay_s(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (counted from 1)."""
        return backoff_s(retry - 1, self.base_s, self.cap_s)


@dataclass(frozen=True)
class Decision:
    """What one attempt at a chunk led to."""

    result: ChunkResult
    """How the run ended (as the runner said, or RETRY/DONE as decided here)."""
    retry_in_s: float | None = None
    """Run the chunk again after this many seconds (a retry, number ``retry``)."""
    retry: int = 0
    """With ``retry_in_s``: which retry of the chunk that is (from 1)."""
    job_finished: bool = False
    """This attempt finished the job's last chunk."""
    internal_error: str = ""
    """The reason recorded when the guard ended the chunk ("" otherwise)."""

    @property
    def later(self) -> bool:
        """Another runner holds the chunk, or this one lost it: nothing was decided."""
        return self.result.status in (ChunkStatus.BUSY, ChunkStatus.LOST)


def attempt_chunk(
    spec: JobSpec,
    chunk: Chunk,
    store: JobStore,
    run: Callable[[], ChunkResult],
    backoff: Backoff,
) -> Decision:
    """Run ``chunk`` of ``spec`` once with ``run`` and decide what comes next; see the
    module docstring (the guard included)."""
    try:
        result = run()
    except (BrokerUnavailable, UnknownJob):
        # The store is away, or the job's records vanished: nothing can be recorded,
        # and nothing is wrong with the chunk. Its lease hands it on if the job lives.
        raise
    except Exception as exc:  # the guard: see the module docstring
        reason = f"internal error: {type(exc).__name__}: {exc}"
        log.error("job %s chunk %s failed: %s", spec.job_id, chunk.chunk_id, reason)
        log.debug("chunk %s failed", chunk.chunk_id, exc_info=True)
        finished = _end_with_internal_error(store, spec, chunk, reason)
        return Decision(
            ChunkResult(ChunkStatus.DONE, chunk.chunk_id),
            job_finished=finished,
            internal_error=reason,
        )
    if result.status is not ChunkStatus.RETRY:
        return Decision(result, job_finished=result.job_finished)
    if spec.retries > 0:
        retry = store.add_retry(spec.job_id, chunk.chunk_id)
        if retry <= spec.retries:
            return Decision(result, retry_in_s=backoff.delay_s(retry), retry=retry)
    return Decision(result, job_finished=give_up(store, spec, result))


def give_up(store: JobStore, spec: JobSpec, result: ChunkResult) -> bool:
    """Record a chunk whose retries are spent: the file in flight FAILED, the others
    NOT_SENT, all with the last error; with the halt policy the job halts. Marks the
    chunk done and returns True when that finished the job."""
    reason = f"retries exhausted: {result.error}"
    observer = current()
    for path in result.remaining:
        if path == result.failed_path:
            outcome = FileOutcome(path, Outcome.FAILED, status=result.failed_status, reason=reason)
        else:
            outcome = FileOutcome(path, Outcome.NOT_SENT, reason=reason)
        if store.record(spec.job_id, outcome):
            observer.file_done(spec.destination, outcome)
    if spec.policy.halt and result.remaining:
        store.halt(spec.job_id, result.failed_path or result.remaining[0], reason)
    return store.finish_chunk(spec.job_id, result.chunk_id)


def _end_with_internal_error(store: JobStore, spec: JobSpec, chunk: Chunk, reason: str) -> bool:
    """Record the chunk's files without an outcome yet (the first FAILED: it was in
    flight, or next to go; the others NOT_SENT), halt the job with the halt policy,
    finish the chunk; True when that finished the job."""
    job_id, paths = spec.job_id, [f.path for f in chunk.files]
    try:
        settled = store.settled(job_id, paths)
    except Exception:  # the store may refuse what raised (e.g. a path it cannot encode)
        settled = {p for p in paths if _settled(store, job_id, p)}
    unsettled = [p for p in paths if p not in settled]
    observer = current()
    for index, path in enumerate(unsettled):
        kind = Outcome.FAILED if index == 0 else Outcome.NOT_SENT
        outcome = FileOutcome(path, kind, reason=reason)
        if _record(store, job_id, outcome):
            observer.file_done(spec.destination, outcome)
    if spec.policy.halt and unsettled:
        try:
            store.halt(job_id, unsettled[0], reason)
        except Exception:  # as in _record
            if _printable(unsettled[0]) == unsettled[0]:
                raise
            store.halt(job_id, _printable(unsettled[0]), reason)
    return store.finish_chunk(job_id, chunk.chunk_id)


def _record(store: JobStore, job_id: str, outcome: FileOutcome) -> bool:
    """Record ``outcome``; if the store refuses its path (one it cannot encode, such as
    a file name that is not UTF-8), record it under the path's printable spelling, so
    that the file still has an outcome. A store that cannot be reached raises."""
    try:
        return store.record(job_id, outcome)
    except Exception:
        printable = _printable(outcome.path)
        if printable == outcome.path:
            raise
        log.warning("job %s: %s recorded as %s", job_id, ascii(outcome.path), printable)
        return store.record(job_id, replace(outcome, path=printable))


def _printable(path: str) -> str:
    """``path`` with the bytes that are not UTF-8 spelled ``\\xNN`` (the same path
    when it has none)."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _settled(store: JobStore, job_id: str, path: str) -> bool:
    try:
        return bool(store.settled(job_id, [path]))
    except Exception:  # not recordable either: treated as still to send
        return False
