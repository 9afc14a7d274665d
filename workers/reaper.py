"""The reaper: hands on the chunks of dead workers, long before Celery would.

Celery with Redis puts a dead worker's unacknowledged task back on the queue only after
the visibility timeout (plus kombu's periodic restore). Instead every running chunk
holds a lease renewed by a heartbeat; a thread in every worker's main process looks,
every ``reaper_interval_s``, for chunks whose lease ran out unfinished and sends them
again. Each expired chunk is handed out once (an atomic script), however many workers
look; a later redelivery of the original task is harmless (the chunk is done, or its
files are confirmed).

It also closes the jobs whose submitter died while scanning their inputs (its lease on
the open job ran out): such a job ends ``interrupted`` once the chunks it has are done.

The thread also keeps ``<prefix>:worker:<node name>`` alive in Redis (the pid, with a
short expiry) so that clients can see which workers are up.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from celery.signals import worker_ready  # type: ignore[import-untyped]

from dispatch.jobs.enqueue import resend_reaped
from workers.context import context

log = logging.getLogger("dispatch.workers")


class Reaper(threading.Thread):
    """The periodic check, as a daemon thread."""

    def __init__(self, node: str) -> None:
        super().__init__(name="dispatch-reaper", daemon=True)
        self.node = node
        self.stopped = threading.Event()

    def run(self) -> None:
        ctx = context()
        interval = ctx.config.reaper_interval_s
        alive_key = f"{ctx.config.key_prefix}:worker:{self.node}"
        away = False
        while True:
            try:
                ctx.store.client.set(alive_key, os.getpid(), px=int(interval * 3000))
                for job_id, chunk_id in resend_reaped(ctx.store, ctx.sender):
                    log.warning("job %s chunk %s: lease expired, sent again", job_id, chunk_id)
                for job_id in ctx.store.close_interrupted():
                    log.warning("job %s: its submitter is gone; submission interrupted", job_id)
                if away:
                    log.warning("reaper: Redis is back")
                away = False
            except Exception as exc:  # Redis unreachable for a while: look again later
                # One line when it goes away, not one per look.
                (log.debug if away else log.warning)("reaper: %s; looking again", exc)
                away = True
            if self.stopped.wait(interval):
                return


@worker_ready.connect  # type: ignore[untyped-decorator]
def start_reaper(sender: Any = None, **_: Any) -> None:
    """Start the reaper in the worker's main process once it is ready."""
    node = str(getattr(sender, "hostname", "") or os.getpid())
    Reaper(node).start()
