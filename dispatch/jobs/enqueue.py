"""Submitting a job to the workers, and following it, without importing ``workers``.

Tasks are sent by name (:data:`SEND_CHUNK`) with Celery's ``send_task``; celery and
redis-py are imported inside the functions, so ``dispatch send`` never pays for them.
A task message carries the job and chunk ids only: the files and settings come from the
job record, and secrets from the worker's own configuration.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from dispatch.jobs.model import Chunk, JobSpec
from dispatch.jobs.store import JobProgress, JobStore
from dispatch.outcome import FileOutcome

SEND_CHUNK = "dispatch.send_chunk"
"""The name of the workers' task that sends one chunk: ``send_chunk(job_id, chunk_id)``."""


def new_job_id() -> str:
    """A fresh job id: 12 hex digits."""
    return uuid.uuid4().hex[:12]


def celery_client(broker_url: str, visibility_timeout_s: float = 7200.0) -> Any:
    """A Celery app that only sends tasks (it knows no task code)."""
    from celery import Celery  # type: ignore[import-untyped]  # lazily: only submitting needs it

    app = Celery("dispatch-client", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        broker_transport_options={"visibility_timeout": visibility_timeout_s},
        broker_connection_retry_on_startup=True,
    )
    return app


def send_chunks(app: Any, spec: JobSpec, chunk_ids: Sequence[str], producer: Any = None) -> None:
    """Enqueue one :data:`SEND_CHUNK` task per chunk id on the job's queue (through
    ``producer`` when given: one connection for many calls)."""
    with app.producer_or_acquire(producer) as producer:
        for chunk_id in chunk_ids:
            app.send_task(
                SEND_CHUNK, args=[spec.job_id, chunk_id], queue=spec.queue, producer=producer
            )


def enqueue_job(
    broker_url: str,
    spec: JobSpec,
    chunks: Sequence[Chunk],
    *,
    store: JobStore | None = None,
    problems: Sequence[FileOutcome] = (),
    app: Any = None,
) -> str:
    """Record the job (in ``store``, by default the Redis of ``broker_url``) and send
    one task per chunk. Returns the job id."""
    if store is None:
        from dispatch.jobs.redis_store import RedisJobStore

        store = RedisJobStore.from_url(broker_url)
    store.create_job(spec, chunks, problems)
    send_chunks(app or celery_client(broker_url), spec, [c.chunk_id for c in chunks])
    return spec.job_id


def resend_reaped(store: JobStore, app: Any) -> list[tuple[str, str]]:
    """Send again every chunk whose lease ran out unfinished (a worker died holding it);
    return them. Safe to call from any number of processes: each chunk is handed out
    once per expiry."""
    reaped = store.reap()
    for job_id, chunk_id in reaped:
        try:
            queue = store.spec(job_id).queue
        except Exception:  # the job expired meanwhile: nothing to resend
            continue
        app.send_task(SEND_CHUNK, args=[job_id, chunk_id], queue=queue)
    return reaped


def wait_for_job(
    store: JobStore,
    job_id: str,
    on_progress: Callable[[JobProgress], None] | None = None,
    *,
    reaper: Callable[[], object] | None = None,
    poll_s: float = 0.1,
    reap_every_s: float = 1.0,
    timeout_s: float | None = None,
) -> JobProgress:
    """Wait until the job is finished and return its final snapshot.

    A store with a ``wait_finished(job_id, timeout_s)`` method (the Redis store: it
    blocks on the list the finishing script pushes to) is waited on, woken at once when
    the job ends; any other store is polled every ``poll_s``. ``on_progress`` gets a
    snapshot at least every ``poll_s`` (a live display); ``reaper`` (e.g.
    ``lambda: resend_reaped(store, app)``) is called every ``reap_every_s`` so that a
    dead worker's chunk is handed on even while no worker runs its reaper. Raises
    TimeoutError after ``timeout_s``.
    """
    block: Callable[[str, float], bool] | None = getattr(store, "wait_finished", None)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    reap_at = time.monotonic()
    while True:
        snapshot = store.progress(job_id)
        if on_progress is not None:
            on_progress(snapshot)
        if snapshot.is_finished:
            return snapshot
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"job {job_id} not finished after {timeout_s} s")
        if reaper is not None and time.monotonic() >= reap_at:
            reaper()
            reap_at = time.monotonic() + reap_every_s
        if block is None:
            time.sleep(poll_s)
            continue
        wait_s = reap_every_s if on_progress is None else poll_s
        if reaper is not None:
            wait_s = min(wait_s, max(reap_at - time.monotonic(), 0.0))
        if deadline is not None:
            wait_s = min(wait_s, max(deadline - time.monotonic(), 0.0))
        block(job_id, max(wait_s, 0.01))
