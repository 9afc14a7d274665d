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
from collections.abc import Callable, Sequence

from dispatch.jobs.backoff import backoff_s
from dispatch.jobs.model import Chunk, JobSpec
from dispatch.jobs.runner import ChunkResult, ChunkStatus, ProgressSink, give_up, run_chunk
from dispatch.jobs.slots import MemorySlots, SlotPool
from dispatch.jobs.store import JobProgress, JobStore, MemoryJobStore
from dispatch.outcome import FileOutcome

log = logging.getLogger("dispatch.jobs")

_BUSY_DELAY_S = 0.5
"""A chunk another runner holds (not expected in-process) is looked at again after this."""


def run_embedded(
    spec: JobSpec,
    chunks: Sequence[Chunk],
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

    ``on_start`` is called with the store once the job is recorded (a progress display
    can then poll ``store.progress(spec.job_id)``; ``store.cancel`` stops the job).
    """
    store = store if store is not None else MemoryJobStore()
    slots = slots if slots is not None else MemorySlots()
    store.create_job(spec, chunks, problems)
    if on_start is not None:
        on_start(store)
    order = itertools.count()
    pending: list[tuple[float, int, Chunk]] = [(0.0, next(order), c) for c in chunks]
    heapq.heapify(pending)
    cond = threading.Condition()
    running = 0

    def take() -> Chunk | None:
        nonlocal running
        with cond:
            while True:
                if not pending and running == 0:
                    cond.notify_all()
                    return None
                now = time.monotonic()
                if pending and pending[0][0] <= now:
                    running += 1
                    return heapq.heappop(pending)[2]
                cond.wait(pending[0][0] - now if pending else None)

    def later(chunk: Chunk, delay_s: float) -> None:
        heapq.heappush(pending, (time.monotonic() + delay_s, next(order), chunk))

    def handle(chunk: Chunk) -> float | None:
        """Run the chunk once; the delay before running it again, or None when done."""
        try:
            result = run_chunk(spec, chunk, store, slots, lease_s=lease_s, on_progress=on_progress)
        except Exception as exc:  # a bug must not leave the job hanging
            log.exception("chunk %s failed", chunk.chunk_id)
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
                return backoff_s(attempts - 1, retry_base_s, retry_cap_s)
            give_up(store, spec, result)
            return None
        if result.status in (ChunkStatus.BUSY, ChunkStatus.LOST):
            return _BUSY_DELAY_S
        return None

    def worker() -> None:
        nonlocal running
        while (chunk := take()) is not None:
            delay: float | None = None
            try:
                delay = handle(chunk)
            finally:
                with cond:
                    running -= 1
                    if delay is not None:
                        later(chunk, delay)
                    cond.notify_all()

    threads = [
        threading.Thread(target=worker, name=f"dispatch-job-{n}", daemon=True)
        for n in range(max(1, min(jobs, len(chunks))))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return store.progress(spec.job_id)
