"""The embedded mode: a job's chunks run on threads of this process, no broker.

The very same :func:`~dispatch.jobs.runner.run_chunk` as on the workers, the same job
records (a :class:`~dispatch.jobs.store.MemoryJobStore` by default) and the same
retries with backoff; ``jobs`` threads give at most that many associations at once
(and never more than the job's ``max_associations``).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from dispatch.jobs.backoff import backoff_s
from dispatch.jobs.model import Chunk, JobSpec
from dispatch.jobs.runner import ChunkResult, ChunkStatus, ProgressSink, give_up, run_chunk
from dispatch.jobs.slots import MemorySlots, SlotPool
from dispatch.jobs.store import JobProgress, JobStore, MemoryJobStore
from dispatch.outcome import FileOutcome

log = logging.getLogger("dispatch.jobs")

_BUSY_DELAY_S = 0.5
"""A chunk another runner holds (not expected in-process) is looked at again after this."""


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
        retry_base_s: float = 2.0,
        retry_cap_s: float = 300.0,
        lease_s: float = 10.0,
    ) -> None:
        self.spec = spec
        self.store = store
        self.slots = slots if slots is not None else MemorySlots()
        self.jobs = max(1, jobs)
        self.on_progress = on_progress
        self.retry_base_s = retry_base_s
        self.retry_cap_s = retry_cap_s
        self.lease_s = lease_s
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

    def add(self, chunk: Chunk) -> None:
        """Run ``chunk`` (recorded in the store already) as soon as a thread is free."""
        with self._cond:
            heapq.heappush(self._pending, (0.0, next(self._order), chunk))
            self._cond.notify()

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
        try:
            result = run_chunk(
                spec, chunk, store, self.slots, lease_s=self.lease_s, on_progress=self.on_progress
            )
        except Exception as exc:  # a bug must not leave the job hanging
            log.error("chunk %s failed: internal error: %r", chunk.chunk_id, exc)
            log.debug("chunk %s failed", chunk.chunk_id, exc_info=True)
            paths = tuple(f.path for f in chunk.files)
            give_up(
                store,
                spec,
                ChunkResult(
                    ChunkStatus.RETRY,
                    chunk.chunk_id,
                    remaining=paths,
                    error=f"internal error: {exc}",
                ),
            )
            return None
        if result.status is ChunkStatus.RETRY:
            attempts = store.add_retry(spec.job_id, chunk.chunk_id)
            if attempts <= spec.retries:
                return backoff_s(attempts - 1, self.retry_base_s, self.retry_cap_s)
            give_up(store, spec, result)
            return None
        if result.status in (ChunkStatus.BUSY, ChunkStatus.LOST):
            return _BUSY_DELAY_S
        return None

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


def run_embedded(
    spec: JobSpec,
    chunks: Iterable[Chunk],
    *,
    store: JobStore | None = None,
    slots: SlotPool | None = None,
    jobs: int = 2,
    problems: Sequence[FileOutcome] = (),
    on_progress: ProgressSink | None = None,
    retry_base_s: float = 2.0,
    retry_cap_s: float = 300.0,
    lease_s: float = 10.0,
    on_start: Callable[[JobStore], None] | None = None,
) -> JobProgress:
    """Record the job, run all its chunks on ``jobs`` threads, return the final snapshot.

    ``chunks`` may be a sequence (recorded at once) or any iterable, e.g. a
    :class:`~dispatch.jobs.scan.Scanner`'s chunks: the job is then recorded open, the
    threads start first and each chunk runs as soon as it is produced; the job is
    closed when the iterable is exhausted. ``on_start`` is called with the store once
    the job is recorded (a progress display can then poll
    ``store.progress(spec.job_id)``; ``store.cancel`` stops the job).
    """
    store = store if store is not None else MemoryJobStore()
    run = EmbeddedRun(
        spec,
        store,
        slots=slots,
        jobs=jobs,
        on_progress=on_progress,
        retry_base_s=retry_base_s,
        retry_cap_s=retry_cap_s,
        lease_s=lease_s,
    )
    if isinstance(chunks, Sequence):
        store.create_job(spec, chunks, problems)
        if on_start is not None:
            on_start(store)
        run.jobs = max(1, min(jobs, len(chunks)))
        for c in chunks:
            run.add(c)
        run.start()
        return run.join()
    store.create_job(spec, [], problems, open=True)
    if on_start is not None:
        on_start(store)
    run.start()
    try:
        for c in chunks:
            store.add_chunks(spec.job_id, [c])
            run.add(c)
    finally:
        store.close_job(spec.job_id)
    return run.join()
