"""The Celery application of the workers, built from the dispatch settings.

Crash safety (see the project's field notes on Celery with Redis): tasks are
acknowledged late and rejected (so redelivered) when their worker process is lost;
each worker process takes one task at a time; the Redis visibility timeout exceeds any
task or retry countdown (:meth:`JobsConfig.check` enforces that). A worker whose whole
host died is not noticed by Celery for a visibility timeout: the reaper
(:mod:`workers.reaper`) hands its chunks on once their leases run out.

A warm shutdown (SIGTERM) stops each running chunk after its current file: its outcomes
are recorded, its other files handed back at once (another worker sends them), and the
worker exits; a second SIGTERM, or SIGQUIT, stops at once (Celery's cold shutdown).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from typing import Any

from billiard.process import active_children  # type: ignore[import-untyped]
from celery import Celery  # type: ignore[import-untyped]
from celery.signals import (  # type: ignore[import-untyped]
    after_setup_logger,
    worker_process_init,
    worker_shutting_down,
)

from dispatch.jobs.config import JobsConfig, load_config
from dispatch.jobs.runner import request_stop

log = logging.getLogger("dispatch.workers")

DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
"""Used when no broker is configured: a worker always needs one."""


PER_FILE_LOGGER = "dispatch.send"
"""The logger of the lines written for every file sent ("Sending file: ...")."""


@after_setup_logger.connect  # type: ignore[untyped-decorator]
def _per_file_lines_at_debug(loglevel: int, **_kwargs: Any) -> None:
    """Show the per-file lines only when the worker logs at debug level: at the default
    level (info) a line per file would cost a worker more CPU than sending the file."""
    level = logging.DEBUG if loglevel <= logging.DEBUG else logging.WARNING
    logging.getLogger(PER_FILE_LOGGER).setLevel(level)


def transport_options(config: JobsConfig) -> dict[str, Any]:
    """kombu's Redis transport options of the settings (the submitters use the same)."""
    options: dict[str, Any] = {"visibility_timeout": config.visibility_timeout_s}
    if config.broker_key_prefix:
        options["global_keyprefix"] = config.broker_key_prefix
    return options


def make_app(config: JobsConfig) -> Celery:
    """A Celery app configured for the send tasks."""
    app = Celery(
        "dispatch", broker=config.broker_url or DEFAULT_BROKER_URL, include=["workers.tasks"]
    )
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options=transport_options(config),
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_default_queue=config.queue,
        task_ignore_result=True,
        result_expires=config.result_expires_s,
        broker_connection_retry_on_startup=True,
        # A Redis outage, however long, is waited out: a worker never gives up on it.
        broker_connection_max_retries=None,
        worker_hijack_root_logger=True,
        # Celery's tooling (celery events, Flower) follows every task from sent to done:
        # a few small PUBLISHes per chunk of up to a thousand files.
        worker_send_task_events=True,
        task_send_sent_event=True,
    )
    return app


config = load_config()
app = make_app(config)


STOP_SIGNAL = signal.SIGUSR2
"""What the main process sends its pool processes at a warm shutdown. Not SIGTERM: the
pool ends its processes with SIGTERM at a cold shutdown, and that must stay immediate."""


@worker_process_init.connect  # type: ignore[untyped-decorator]
def _stop_on_signal(**_: Any) -> None:
    """In each pool process: :data:`STOP_SIGNAL` asks the running chunk to stop after its
    current file and hand the rest back (the process then ends with the pool)."""
    signal.signal(STOP_SIGNAL, lambda _signum, _frame: request_stop())


@worker_shutting_down.connect  # type: ignore[untyped-decorator]
def _stop_pool_processes(how: str = "", **_: Any) -> None:
    """In the main process, at a warm shutdown (SIGTERM, ``docker stop``): ask the pool
    processes to stop, so that their chunks are handed back rather than sent to their
    end; Celery then waits for them as usual."""
    if how != "Warm":
        return
    for child in active_children():
        if child.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, STOP_SIGNAL)
