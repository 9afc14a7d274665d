"""The embedded mode: a job's chunks run on threads of this process, no broker.

The very same :func:`~dispatch.jobs.runner.run_chunk` and retry decision
(:func:`~dispatch.jobs.attempt.attempt_chunk`) as on the workers, the same job records
(a :class:`~dispatch.jobs.store.MemoryJobStore` by default) and the same retries with
backoff, and the same waiting for a destination that cannot be reached (its state in
the store; the threads are one worker, so none hands a chunk back to another);
``jobs`` threads give at most that many associations at once (and never more than the
job's ``max_associations``).
"""

from __future__ import annotations

import heapq
import itertools
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from dispatch.jobs.attempt import Backoff, Reach, attempt_chunk
from dispatch.jobs.backends.memory import MemorySlots
from dispatch.jobs.model import Chunk, JobSpec
from dispatch.jobs.runner import ProgressSink, run_chunk
from dispatch.jobs.slots import SlotPool
from dispatch.jobs.store import JobProgress, JobStore

_BUSY_DELAY_S = 0.5
"""A chunk another runner holds (not expected in-process) is looked at again after this."""

_SWITCH_S = 0.00005
"""Python's thread switch interval while the threads run (see :func:`quick_switching`)."""


@contextmanager
def quick_switching() -> Iterator[None]:
    """Shorten Python's thread switch interval for the duration, then restore it.

    The sender threads share the interpreter lock (with the grouping of the scan, or
    with all of it under -R): with the default interval (5 ms) a thread whose peer has
    answered waits that long for its turn, so a short one keeps every association busy.
    The interval is process-wide: only the embedded mode, which owns the process while
    it runs, sets it.
    """
    interval = sys.getswitchinterval()
    sys.setswitchinterval(_SWITCH_S)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


class EmbeddedRun:
    """The ``jobs`` threads of one job, fed with chunks as they come.

    :meth:`start` starts the threads (they wait for chunks), :meth:`add` hands them a
    chunk already recorded in the store, :meth:`close` says no more will come, and
    :meth:`join` waits until every chunk ran (retries included) and returns the final
    snapshot. The job must be recorded in ``store`` before the first chunk runs.
    """

    def __init__(
        self,
        spec: JobSpec,
        store: JobStore,
        *,
        slots: SlotPool | None = None,
        jobs: int = 2,
        on_progress: ProgressSink | None = None,
        backoff: Backoff | None = None,
        lease_s: float = 10.0,
    ) -> None:
        self.spec = spec
        self.store = store
        self.slots = slots if slots is not None else MemorySlots()
        self.jobs = max(1, jobs)
        self.on_progress = on_progress
        self.backoff = backoff if backoff is not None else Backoff()
        self.lease_s = lease_s
        # One worker: the same destination state as the workers', kept in ``store``.
        self.reach = Reach(self.backoff.base_s, self.backoff.cap_s, hold_s=lease_s)
        self._order = itertools.count()
        self._pending: list[tuple[float, int, Chunk]] = []
        self._cond = threading.Condition()
        self._running = 0
        self._closed = False
        self._threads: list[threading.Thread] = []

    def start(self) -> EmbeddedRun:
        self._threads = [
            threading.Thread(target=self._worker, name=f"dispatch-job-{n}", daemon=True)
            for n in range(self.jobs)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def add(self, chunks: Sequence[Chunk]) -> None:
        """Run ``chunks`` (recorded in the store already), in order, as soon as threads
        are free."""
        with self._cond:
            for chunk in chunks:
                heapq.heappush(self._pending, (0.0, next(self._order), chunk))
            self._cond.notify(len(chunks))

    def close(self) -> None:
        """No more chunks will be added: the threads end once the last one ran."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def join(self) -> JobProgress:
        """Close, wait for every thread; the job's final snapshot."""
        self.close()
        for thread in self._threads:
            thread.join()
        return self.store.progress(self.spec.job_id)

    def _take(self) -> Chunk | None:
        pending, cond = self._pending, self._cond
        with cond:
            while True:
                if not pending and self._running == 0 and self._closed:
                    cond.notify_all()
                    return None
                now = time.monotonic()
                if pending and pending[0][0] <= now:
                    self._running += 1
                    return heapq.heappop(pending)[2]
                cond.wait(pending[0][0] - now if pending else None)

    def _handle(self, chunk: Chunk) -> float | None:
        """Run the chunk once; the delay before running it again, or None when done."""
        spec, store = self.spec, self.store
        decision = attempt_chunk(
            spec,
            chunk,
            store,
            lambda: run_chunk(
                spec,
                chunk,
                store,
                self.slots,
                lease_s=self.lease_s,
                on_progress=self.on_progress,
                observer=self.reach.observer(store),
            ),
            self.backoff,
            self.reach,
        )
        if decision.later:
            return _BUSY_DELAY_S
        return decision.retry_in_s

    def _worker(self) -> None:
        while (chunk := self._take()) is not None:
            delay: float | None = None
            try:
                delay = self._handle(chunk)
            finally:
                with self._cond:
                    self._running -= 1
                    if delay is not None:
                        entry = (time.monotonic() + delay, next(self._order), chunk)
                        heapq.heappush(self._pending, entry)
                    self._cond.notify_all()
