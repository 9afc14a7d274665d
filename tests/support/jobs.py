"""Running whole jobs from a test: every chunk at once, without the scan that feeds
them as ``dispatch submit`` does.

- :func:`run_embedded`: record the job, run its chunks on threads of this process.
- :func:`enqueue_job`: record the job and send one task per chunk to the workers.
"""

from __future__ import annotations

from collections.abc import Sequence

from dispatch.jobs.attempt import Backoff
from dispatch.jobs.embedded import EmbeddedRun
from dispatch.jobs.enqueue import send_chunks
from dispatch.jobs.model import Chunk, JobSpec
from dispatch.jobs.publish import TaskPublisher
from dispatch.jobs.runner import ProgressSink
from dispatch.jobs.slots import SlotPool
from dispatch.jobs.store import JobProgress, JobStore, MemoryJobStore
from dispatch.outcome import FileOutcome


def run_embedded(
    spec: JobSpec,
    chunks: Sequence[Chunk],
    *,
    store: JobStore | None = None,
    slots: SlotPool | None = None,
    jobs: int = 2,
    on_progress: ProgressSink | None = None,
    retry_base_s: float = 2.0,
    retry_cap_s: float = 300.0,
    lease_s: float = 10.0,
) -> JobProgress:
    """Record the job (in ``store``, by default a new memory store), run all its
    chunks on at most ``jobs`` threads, return the final snapshot."""
    store = store if store is not None else MemoryJobStore()
    store.create_job(spec, chunks)
    run = EmbeddedRun(
        spec,
        store,
        slots=slots,
        jobs=max(1, min(jobs, len(chunks))),
        on_progress=on_progress,
        backoff=Backoff(retry_base_s, retry_cap_s),
        lease_s=lease_s,
    )
    run.add(chunks)
    run.start()
    return run.join()


def enqueue_job(
    broker_url: str,
    spec: JobSpec,
    chunks: Sequence[Chunk],
    *,
    store: JobStore,
    problems: Sequence[FileOutcome] = (),
) -> str:
    """Record the job in ``store`` and send one task per chunk to ``broker_url``.
    Returns the job id."""
    store.create_job(spec, chunks, problems)
    send_chunks(TaskPublisher.from_url(broker_url), spec, [c.chunk_id for c in chunks])
    return spec.job_id
