"""Submitting a job to the workers, and following it, without importing ``workers``.

Tasks are sent by name (:data:`SEND_CHUNK`) with a
:class:`~dispatch.jobs.publish.TaskPublisher` (Celery's messages written by the project,
without importing Celery). A task message
carries the job and chunk ids only: the files and settings come from the job record,
and secrets from the worker's own configuration.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from dispatch.errors import BrokerUnavailable, JobLost, UnknownJob, UsageError
from dispatch.jobs.model import JobSpec
from dispatch.jobs.publish import TaskPublisher, client_app
from dispatch.jobs.store import JobProgress, JobStore

if TYPE_CHECKING:
    from dispatch.jobs.config import JobsConfig

log = logging.getLogger("dispatch.jobs")

SEND_CHUNK = "dispatch.send_chunk"
"""The name of the workers' task that sends one chunk: ``send_chunk(job_id, chunk_id)``."""


class TaskSender(Protocol):
    """What sends a task by name: a :class:`~dispatch.jobs.publish.TaskPublisher`, or a
    Celery app (its ``send_task`` takes these arguments too)."""

    def send_task(self, name: str, args: Sequence[str], queue: str) -> object: ...


def new_job_id() -> str:
    """A fresh job id: 12 hex digits."""
    return uuid.uuid4().hex[:12]


def celery_client(
    broker_url: str, visibility_timeout_s: float = 7200.0, key_prefix: str = ""
) -> Any:
    """A Celery app that only sends tasks (it knows no task code): see
    :func:`dispatch.jobs.publish.client_app`."""
    return client_app(broker_url, visibility_timeout_s, key_prefix)


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


def publisher_for(config: JobsConfig) -> TaskPublisher:
    """The publisher of tasks to ``config``'s broker, with its transport options."""
    return TaskPublisher.from_url(config.broker_url, config.broker_key_prefix)


def send_chunks(publisher: TaskPublisher, spec: JobSpec, chunk_ids: Sequence[str]) -> None:
    """Enqueue one :data:`SEND_CHUNK` task per chunk id on the job's queue, in order."""
    publisher.send_tasks(SEND_CHUNK, [[spec.job_id, c] for c in chunk_ids], spec.queue)


def resend_reaped(store: JobStore, sender: TaskSender) -> list[tuple[str, str]]:
    """Send again every chunk whose lease ran out unfinished (a worker died holding it);
    return them. Safe to call from any number of processes: each chunk is handed out
    once per expiry."""
    reaped = store.reap()
    for job_id, chunk_id in reaped:
        try:
            queue = store.spec(job_id).queue
        except UnknownJob:  # the job expired meanwhile: nothing to resend
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
    reconnect_base_s: float = 0.2,
    reconnect_cap_s: float = 2.0,
) -> JobProgress:
    """Wait until the job is finished and return its final snapshot.

    A store with a ``wait_finished(job_id, timeout_s)`` method (the Redis store: it
    blocks on the list the finishing script pushes to) is waited on, woken at once when
    the job ends; any other store is polled every ``poll_s``. ``on_progress`` gets a
    snapshot at least every ``poll_s`` (a live display); ``reaper`` (e.g.
    ``lambda: resend_reaped(store, publisher)``) is called every ``reap_every_s`` so that a
    dead worker's chunk is handed on even while no worker runs its reaper. Raises
    TimeoutError after ``timeout_s``.

    The wait outlasts the store: while it cannot be reached
    (:class:`~dispatch.errors.BrokerUnavailable`) it is tried again after a pause that
    doubles from ``reconnect_base_s`` up to ``reconnect_cap_s``, with one warning when
    it goes away and one when it is back. Raises :class:`~dispatch.errors.UnknownJob`
    when the job was never seen, and :class:`~dispatch.errors.JobLost` (with the last
    counts seen) when its records vanished while it was followed.
    """
    block: Callable[[str, float], bool] | None = getattr(store, "wait_finished", None)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    reap_at = time.monotonic()
    outage = _Outage(_address(store), reconnect_base_s, reconnect_cap_s)
    last: JobProgress | None = None
    while True:
        try:
            snapshot = store.progress(job_id)
            outage.over()
            if on_progress is not None:
                on_progress(snapshot)
            last = snapshot
            if snapshot.is_finished:
                return snapshot
            _check(deadline, job_id, timeout_s)
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
        except BrokerUnavailable:
            _check(deadline, job_id, timeout_s)
            outage.pause()
        except UnknownJob:
            if last is None:
                raise
            raise JobLost(job_id, last.stored, last.failed, last.total_files) from None


class NoWorkerNotice:
    """A progress callback that says once, through ``notify``, that no worker has taken
    any task of the job ``after_s`` seconds after it was built, and where they wait."""

    def __init__(
        self, after_s: float, queue: str, broker: str, notify: Callable[[str], None]
    ) -> None:
        self._at = time.monotonic() + after_s
        self._after_s = after_s
        self._queue = queue
        self._broker = broker
        self._notify: Callable[[str], None] | None = notify

    def __call__(self, snapshot: JobProgress) -> None:
        if self._notify is None or snapshot.started or snapshot.is_finished:
            return
        if time.monotonic() < self._at:
            return
        self._notify(
            f"no worker has taken any task of job {snapshot.job_id} after"
            f" {self._after_s:g} s: its tasks wait on queue {self._queue!r} of the broker"
            f" at {self._broker} (dispatch worker --queues {self._queue} consumes it)"
        )
        self._notify = None


def _check(deadline: float | None, job_id: str, timeout_s: float | None) -> None:
    if deadline is not None and time.monotonic() >= deadline:
        raise TimeoutError(f"job {job_id} not finished after {timeout_s} s")


def _address(store: JobStore) -> str:
    address: Callable[[], str] | None = getattr(store, "address", None)
    return address() if address is not None else "the job store"


class _Outage:
    """The state of a wait while its store is unreachable: when it went away, the next
    pause, and the two lines that tell the user."""

    def __init__(self, address: str, base_s: float, cap_s: float) -> None:
        self.address = address
        self.base_s = base_s
        self.cap_s = cap_s
        self.since: float | None = None
        self.delay_s = base_s

    def pause(self) -> None:
        """The store failed a command: say so the first time, then wait a while."""
        if self.since is None:
            self.since = time.time()
            clock = time.strftime("%H:%M:%S", time.localtime(self.since))
            log.warning("Redis at %s is away since %s; waiting for it", self.address, clock)
        time.sleep(self.delay_s)
        self.delay_s = min(self.delay_s * 2, self.cap_s)

    def over(self) -> None:
        """The store answered: if it had gone away, say that it is back."""
        if self.since is not None:
            log.warning("Redis at %s is back after %.0f s", self.address, time.time() - self.since)
            self.since = None
            self.delay_s = self.base_s
