"""The Celery application of the workers, built from the dispatch settings.

Crash safety (see the project's field notes on Celery with Redis): tasks are
acknowledged late and rejected (so redelivered) when their worker process is lost;
each worker process takes one task at a time; the Redis visibility timeout exceeds any
task or retry countdown (:meth:`JobsConfig.check` enforces that). A worker whose whole
host died is not noticed by Celery for a visibility timeout: the reaper
(:mod:`workers.reaper`) hands its chunks on once their leases run out.
"""

from __future__ import annotations

import logging

from celery import Celery  # type: ignore[import-untyped]

from dispatch.jobs.config import JobsConfig, load_config

log = logging.getLogger("dispatch.workers")

DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
"""Used when no broker is configured: a worker always needs one."""


def make_app(config: JobsConfig) -> Celery:
    """A Celery app configured for the send tasks."""
    app = Celery(
        "dispatch", broker=config.broker_url or DEFAULT_BROKER_URL, include=["workers.tasks"]
    )
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": config.visibility_timeout_s},
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_default_queue=config.queue,
        task_ignore_result=True,
        result_expires=config.result_expires_s,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=True,
    )
    return app


config = load_config()
app = make_app(config)
