"""One attempt at a chunk and what comes next: the retry decision of every runner.

The Celery task and the embedded mode both hand :func:`attempt_chunk` one run of a
chunk and act on its :class:`Decision`: run the chunk again after ``retry_in_s``
(a transient failure with retries left, or a destination waited out; Celery schedules
it, the embedded mode queues it), hand it back at once for another worker
(``hand_back``), look at it again later (another runner holds it), or nothing more
(done).

Two kinds of transient trouble, counted apart:

- A file's or an exchange's (a status 0xA7xx, an association that broke mid-file):
  counted per chunk in the job record (:meth:`JobStore.add_retry`), so a chunk handed
  on by the reaper keeps its count; with the job's ``retries`` spent, :func:`give_up`
  records the files still to send. A job allowed no retries counts none.
- The destination's (it could not be reached, or rejected the association
  rejected-transient): the destination is *waiting* in the job store (see
  :mod:`dispatch.jobs.destinations`), and every chunk for it waits until its next try,
  without a connection, for up to the job's ``retry_for_s`` from the start of the
  outage; then its files end NOT_SENT with a reason naming the outage. A worker that
  cannot reach a destination that another worker reached since its own failures began
  hands the chunk back instead (not counted anywhere) and leaves the destination to
  the others for a while (:class:`~dispatch.jobs.destinations.LocalBackoff`); once
  nobody reaches it, it is the shared waiting state again.

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
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from dispatch.errors import BrokerUnavailable, DispatchError, UnknownJob
from dispatch.jobs.backoff import backoff_s
from dispatch.jobs.destinations import (
    DestinationState,
    LocalBackoff,
    ReachObserver,
    format_duration,
    waiting_line,
    worker_name,
)
from dispatch.jobs.model import Chunk, JobSpec
from dispatch.jobs.runner import ChunkResult, ChunkStatus
from dispatch.jobs.store import JobStore
from dispatch.logtext import printable
from dispatch.observe import SendObserver, current
from dispatch.outcome import FileOutcome, Outcome

log = logging.getLogger("dispatch.jobs")

__all__ = ["Backoff", "Decision", "Reach", "attempt_chunk", "give_up"]


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
    waiting: bool = False
    """With ``retry_in_s``: the chunk waits for its destination (not a retry)."""
    hand_back: bool = False
    """This worker cannot reach the destination that others reach: re-queue the chunk
    at once (``retry_in_s`` 0) for them, and take other work only after ``pause_s``."""
    pause_s: float = 0.0

    @property
    def later(self) -> bool:
        """Another runner holds the chunk, or this one lost it: nothing was decided."""
        return self.result.status in (ChunkStatus.BUSY, ChunkStatus.LOST)


@dataclass
class Reach:
    """What one worker (a process; the embedded mode is one) brings to the decisions
    about destinations it cannot reach: its name, its own backoff of destinations
    others reach, the backoff of a waiting destination (``base_s``, ``cap_s``), and how
    long a chunk trying a waiting destination keeps the others off it (``hold_s``).
    ``clock`` (wall-clock seconds) and ``rng`` are there for tests."""

    base_s: float = 2.0
    cap_s: float = 300.0
    hold_s: float = 10.0
    worker: str = field(default_factory=worker_name)
    clock: Callable[[], float] = time.time
    rng: random.Random = field(default_factory=random.Random)
    local: LocalBackoff = field(init=False)

    def __post_init__(self) -> None:
        self.local = LocalBackoff(self.base_s, self.cap_s, self.rng)

    def observer(self, store: JobStore, inner: SendObserver | None = None) -> SendObserver:
        """An observer for :func:`~dispatch.jobs.runner.run_chunk` that passes everything
        on to ``inner`` (default: the installed one) and records, when an association
        is accepted, that this worker reached the destination."""
        return ReachObserver(inner or current(), lambda dest: self.reached(store, dest))

    def reached(self, store: JobStore, destination: str) -> None:
        """This worker reached ``destination``: nobody waits for it any more."""
        self.local.reached(destination)
        try:
            store.destination_reached(destination, self.worker, self.clock())
        except DispatchError as exc:  # the store unreachable: the next success says it
            log.warning("recording %s reached: %s", destination, exc)


def attempt_chunk(
    spec: JobSpec,
    chunk: Chunk,
    store: JobStore,
    run: Callable[[], ChunkResult],
    backoff: Backoff,
    reach: Reach | None = None,
) -> Decision:
    """Run ``chunk`` of ``spec`` once with ``run`` and decide what comes next; see the
    module docstring (the guard included). ``reach`` (default: one of its own, with
    ``backoff``'s times) is the worker's; ``run`` should report to its
    :meth:`Reach.observer`."""
    if reach is None:
        reach = Reach(backoff.base_s, backoff.cap_s)
    before = _before(spec, chunk, store, reach)
    if before is not None:
        return before
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
    if result.reason == "association":
        return _unreached(spec, store, result, reach)
    if spec.retries > 0:
        retry = store.add_retry(spec.job_id, chunk.chunk_id)
        if retry <= spec.retries:
            return Decision(result, retry_in_s=backoff.delay_s(retry), retry=retry)
    return Decision(result, job_finished=give_up(store, spec, result))


def _before(spec: JobSpec, chunk: Chunk, store: JobStore, reach: Reach) -> Decision | None:
    """Before a run: hand the chunk back when this worker leaves its destination to the
    others; wait while the destination waits (give up once the outage outlasted
    ``retry_for_s``); None: run it."""
    destination, now = spec.destination, reach.clock()
    until = reach.local.until(destination)
    if until > now:
        return Decision(_waited(chunk), retry_in_s=0.0, hand_back=True, pause_s=until - now)
    go, state = store.claim_probe(destination, now, reach.hold_s)
    if go or store.chunk_done(spec.job_id, chunk.chunk_id):
        return None
    if store.stopped(spec.job_id) is not None:
        return None  # the run records what is left as not sent
    # The files still to send are read only for giving up (a long chunk's many paths).
    over = now >= state.since + spec.retry_for_s
    result = _waited(chunk, store, spec, state) if over else _waited(chunk, state=state)
    return _wait(spec, store, result, state, now, reach)


def _waited(
    chunk: Chunk,
    store: JobStore | None = None,
    spec: JobSpec | None = None,
    state: DestinationState | None = None,
) -> ChunkResult:
    """The result of a run that did not run: the chunk's files still to send."""
    remaining: tuple[str, ...] = ()
    if store is not None and spec is not None:
        paths = [f.path for f in chunk.files]
        settled = store.settled(spec.job_id, paths)
        remaining = tuple(p for p in paths if p not in settled)
    error = f"association failed: {state.error}" if state is not None else ""
    return ChunkResult(
        ChunkStatus.RETRY, chunk.chunk_id, remaining=remaining, error=error, reason="association"
    )


def _unreached(spec: JobSpec, store: JobStore, result: ChunkResult, reach: Reach) -> Decision:
    """The destination could not be reached, or rejected the association: hand the
    chunk back when others reach it, else the destination waits (see the module
    docstring)."""
    destination, now = spec.destination, reach.clock()
    reach.local.failed(destination, now)
    if result.unreachable:
        state = store.destination(destination)
        others = state.reached_by not in ("", reach.worker)
        if others and not state.waiting and state.reached_at >= reach.local.since(destination):
            until = reach.local.back_off(destination, now)
            log.warning(
                "job %s chunk %s handed back: %s, which another worker reaches; this"
                " worker leaves it to the others for %.1f s",
                spec.job_id,
                result.chunk_id,
                printable(result.error),
                until - now,
            )
            return Decision(result, retry_in_s=0.0, hand_back=True, pause_s=until - now)
    error = result.error.removeprefix("association failed: ")
    state = store.destination_failed(
        destination, reach.worker, error, now, reach.base_s, reach.cap_s, reach.rng.random()
    )
    decision = _wait(spec, store, result, state, now, reach)
    if decision.waiting:
        store.add_wait(spec.job_id)
    return decision


def _wait(
    spec: JobSpec,
    store: JobStore,
    result: ChunkResult,
    state: DestinationState,
    now: float,
    reach: Reach,
) -> Decision:
    """Wait for the destination until its next try, or give up once the outage has
    lasted ``retry_for_s``."""
    deadline = state.since + spec.retry_for_s
    if now >= deadline:
        reason = (
            f"{result.error}; {spec.destination} unreachable since"
            f" {time.strftime('%H:%M:%S', time.localtime(state.since))}"
            f" (--retry-for {format_duration(spec.retry_for_s)} ran out)"
        )
        return Decision(result, job_finished=give_up(store, spec, result, reason))
    # Spread out: the chunks that wait together do not all ask at the same moment.
    delay = min(state.next_try, deadline) - now
    delay += reach.rng.uniform(0.0, min(1.0, reach.base_s / 4))
    log.info("job %s chunk %s: %s", spec.job_id, result.chunk_id, printable(waiting_line(state)))
    return Decision(result, retry_in_s=max(delay, 0.0), waiting=True)


def give_up(store: JobStore, spec: JobSpec, result: ChunkResult, reason: str | None = None) -> bool:
    """Record a chunk whose retries are spent: the file in flight FAILED, the others
    NOT_SENT, all with the last error (or ``reason``); with the halt policy the job
    halts. Marks the chunk done and returns True when that finished the job."""
    reason = reason or f"retries exhausted: {result.error}"
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
