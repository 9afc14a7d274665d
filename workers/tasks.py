"""The send task: ``dispatch.send_chunk(job_id, chunk_id)``.

The message carries ids only; the chunk's files and the association settings come from
the job record. The task runs :func:`~dispatch.jobs.runner.run_chunk`, retries a
transient failure with exponential backoff and full jitter up to the job's retries
(counted per chunk in the job record, so a chunk handed on by the reaper keeps its
count), and when they are spent records the remaining files with the last error. The
job's final state is set by whichever run finishes its last chunk.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery.exceptions import Retry  # type: ignore[import-untyped]

from dispatch.jobs.backoff import backoff_s
from dispatch.jobs.enqueue import SEND_CHUNK
from dispatch.jobs.runner import ChunkStatus, give_up, run_chunk
from dispatch.jobs.store import UnknownJob
from workers import metrics
from workers.app import app
from workers.context import context

log = logging.getLogger("dispatch.workers")


@app.task(bind=True, name=SEND_CHUNK, max_retries=None, acks_late=True)  # type: ignore[untyped-decorator]
def send_chunk(self: Any, job_id: str, chunk_id: str) -> dict[str, Any]:
    """Send one chunk; see the module docstring."""
    metrics.task_started()
    state = "error"
    try:
        result = _send_chunk(self, job_id, chunk_id)
        state = result["status"]
        return result
    except Retry:
        state = ChunkStatus.RETRY.value
        raise
    finally:
        metrics.task_ended(state)


def _send_chunk(task: Any, job_id: str, chunk_id: str) -> dict[str, Any]:
    ctx = context()
    cfg, store = ctx.config, ctx.store
    try:
        spec = ctx.spec(job_id)
        chunk = store.chunk(job_id, chunk_id)
    except UnknownJob:
        log.warning("job %s chunk %s: no such job (expired?); nothing to do", job_id, chunk_id)
        return {"status": "unknown"}
    result = run_chunk(
        spec,
        chunk,
        store,
        ctx.slots,
        lease_s=cfg.lease_s,
        slot_poll_cap_s=cfg.slot_poll_cap_s,
    )
    finished = result.job_finished
    if result.status is ChunkStatus.RETRY:
        attempts = store.add_retry(job_id, chunk_id)
        if attempts <= spec.retries:
            countdown = backoff_s(attempts - 1, cfg.retry_base_s, cfg.retry_cap_s)
            # Watched meanwhile: if the worker holding the delayed message dies, the
            # reaper hands the chunk on once this deadline passes unclaimed.
            store.defer_chunk(job_id, chunk_id, time.time() + countdown + 3 * cfg.lease_s)
            log.info("job %s chunk %s: retry %d in %.1f s", job_id, chunk_id, attempts, countdown)
            raise task.retry(countdown=countdown)
        finished = give_up(store, spec, result)
    if finished:
        log.info("job %s finished: %s", job_id, store.progress(job_id).state.value)
    return {"status": result.status.value, "recorded": result.recorded}
