"""What the tasks of one worker process share: settings, job store, slots, a client.

Built on first use in each process (after the prefork pool forked it: a Redis
connection must not cross a fork).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from dispatch.jobs.backends.redis import RedisJobStore, RedisSlots
from dispatch.jobs.config import JobsConfig
from dispatch.jobs.enqueue import celery_client
from dispatch.jobs.model import JobSpec
from dispatch.jobs.secrets import with_worker_secrets
from workers.app import DEFAULT_BROKER_URL, config


@dataclass
class WorkerContext:
    config: JobsConfig
    store: RedisJobStore
    slots: RedisSlots
    sender: Any
    """A Celery client that sends tasks (used by the reaper)."""
    _specs: dict[str, JobSpec] = field(default_factory=dict)

    def spec(self, job_id: str) -> JobSpec:
        """The job's settings with this host's secrets, read once per job: a job's spec
        never changes, and a job runs many tasks on each worker. Raises
        :class:`~dispatch.jobs.store.UnknownJob` like the store."""
        found = self._specs.get(job_id)
        if found is None:
            found = with_worker_secrets(self.store.spec(job_id), self.config)
            if len(self._specs) >= _SPECS_KEPT:
                self._specs.pop(next(iter(self._specs)))
            self._specs[job_id] = found
        return found


_SPECS_KEPT = 32
"""Specs of this many recent jobs are kept by each worker process."""


_contexts: dict[int, WorkerContext] = {}


def context() -> WorkerContext:
    """This process's context."""
    pid = os.getpid()
    found = _contexts.get(pid)
    if found is None:
        broker = config.broker_url or DEFAULT_BROKER_URL
        # The reaper sees unpublished chunks only where it sees the broker's queues.
        in_broker = config.store_url in ("", broker)
        store = RedisJobStore.from_url(
            config.store_url or broker,
            prefix=config.key_prefix,
            ttl_s=config.job_ttl_s,
            unclaimed_grace_s=config.unclaimed_grace_s if in_broker else None,
            broker_key_prefix=config.broker_key_prefix,
        )
        found = WorkerContext(
            config=config,
            store=store,
            slots=RedisSlots(store.client, prefix=config.key_prefix),
            sender=celery_client(broker, config.visibility_timeout_s, config.broker_key_prefix),
        )
        _contexts.clear()
        _contexts[pid] = found
    return found
