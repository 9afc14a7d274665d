"""Submitting a job to the workers, and following it, without importing ``workers``.

Tasks are sent by name (:data:`SEND_CHUNK`) with a
:class:`~dispatch.jobs.publish.TaskPublisher`, which writes Celery's task message
straight onto the broker's Redis: neither ``dispatch send`` nor ``dispatch submit``
imports celery, and redis-py is imported only when a client is built. A task message
carries the job and chunk ids only: the files and settings come from the job record,
and secrets from the worker's own configuration.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from dispatch.errors import UsageError
from dispatch.jobs.model import JobSpec
from dispatch.jobs.publish import TaskPublisher
from dispatch.jobs.store import JobProgress, JobStore

if TYPE_CHECKING:
    from dispatch.jobs.config import JobsConfig

SEND_CHUNK = "dispatch.send_chunk"
"""The name of the workers' task that sends one chunk: ``send_chunk(job_id, chunk_id)``."""


class TaskSender(Protocol):
    """What sends a task by name: a :class:`~dispatch.jobs.publish.TaskPublisher`, or a
    Celery app (its ``send_task`` takes these arguments too)."""

    def send_task(self, name: str, args: Sequence[str], queue: str) -> object: ...


def new_job_id() -> str:
    """A fresh job id: 12 hex digits."""
    return uuid.uuid4().hex[:12]


def celery_client(broker_url: str, visibility_timeout_s: float = 7200.0) -> Any:
    """A Celery app that only sends tasks (it knows no task code), for a process that
    imports Celery anyway (a worker); elsewhere :class:`TaskPublisher` writes the same
    messages without it."""
    from celery import Celery  # type: ignore[import-untyped]  # lazily: only workers need it

    app = Celery("dispatch-client", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        broker_transport_options={"visibility_timeout": visibility_timeout_s},
        broker_connection_retry_on_startup=True,
    )
    return app


def store_for(config: JobsConfig) -> JobStore:
    """The Redis job store named by the settings; :class:`UsageError` without one."""
    from dispatch.jobs.backends.redis import RedisJobStore

    if not config.broker_url and not config.store_url:
        raise UsageError(
            "no broker configured: give --broker URL or set DISPATCH_BROKER_URL"
            " (jobs run without a broker are not recorded beyond their run)"
        )
    return RedisJobStore.from_url(
        config.redis_url, prefix=config.key_prefix, ttl_s=config.job_ttl_s
    )


def publisher_for(config: JobsConfig, store: JobStore) -> TaskPublisher:
    """The publisher of tasks to ``config``'s broker. When the job records live in the
    broker's Redis (no ``store_url`` of their own) it shares the connection of
    ``store``, which must then be ``config``'s job store
    (:func:`store_for`); else it has a connection of its own."""
    from dispatch.jobs.backends.redis import RedisJobStore

    if isinstance(store, RedisJobStore) and config.redis_url == config.broker_url:
        return TaskPublisher(store.client)
    return TaskPublisher.from_url(config.broker_url)


def send_chunks(publisher: TaskPublisher, spec: JobSpec, chunk_ids: Sequence[str]) -> None:
    """Enqueue one :data:`SEND_CHUNK` task per chunk id on the job's queue, in order,
    in one round trip."""
    publisher.send_tasks(SEND_CHUNK, [[spec.job_id, c] for c in chunk_ids], spec.queue)


def resend_reaped(store: JobStore, sender: TaskSender) -> list[tuple[str, str]]:
    """Send again every chunk whose lease ran out unfinished (a worker died holding it);
    return them. Safe to call from any number of processes: each chunk is handed out
    once per expiry."""
    reaped = store.reap()
    for job_id, chunk_id in reaped:
        try:
            queue = store.spec(job_id).queue
        except Exception:  # the job expired meanwhile: nothing to resend
            continue
        sender.send_task(SEND_CHUNK, args=[job_id, chunk_id], queue=queue)
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
    ``lambda: resend_reaped(store, publisher)``) is called every ``reap_every_s`` so that a
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
