"""The send task: ``dispatch.send_chunk(job_id, chunk_id)``.

The message carries ids only; the chunk's files and the association settings come from
the job record. The task runs :func:`~dispatch.jobs.runner.run_chunk` once and does
what :func:`~dispatch.jobs.attempt.attempt_chunk` decides (the embedded mode's decision
too): a transient failure with retries left, or a destination waited out, is run again
with Celery's countdown (the chunk watched meanwhile, see below); a chunk for a
destination this worker cannot reach while others do is handed back to the queue at
once, and this process pauses a moment before taking more work (else it would take the
same chunk back at once); anything else ended the chunk, or was left to the runner
that holds it. The job's final state is set by whichever run finishes its last chunk.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from celery.exceptions import Retry  # type: ignore[import-untyped]

from dispatch.errors import BrokerUnavailable, UnknownJob
from dispatch.jobs.attempt import Backoff, Reach, attempt_chunk
from dispatch.jobs.config import JobsConfig
from dispatch.jobs.enqueue import SEND_CHUNK
from dispatch.jobs.runner import ChunkStatus, run_chunk
from workers import metrics
from workers.app import app
from workers.context import context

log = logging.getLogger("dispatch.workers")

_PAUSE_CAP_S = 1.0
"""Longest pause of a process after it handed a chunk back."""

_reaches: dict[int, Reach] = {}


def _reach(cfg: JobsConfig) -> Reach:
    """This process's :class:`Reach` (each pool process connects on its own)."""
    pid = os.getpid()
    found = _reaches.get(pid)
    if found is None:
        found = Reach(cfg.retry_base_s, cfg.retry_cap_s, hold_s=cfg.lease_s)
        _reaches.clear()
        _reaches[pid] = found
    return found


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
    reach = _reach(cfg)
    try:
        decision = attempt_chunk(
            spec,
            chunk,
            store,
            lambda: run_chunk(
                spec,
                chunk,
                store,
                ctx.slots,
                lease_s=cfg.lease_s,
                slot_poll_cap_s=cfg.slot_poll_cap_s,
                observer=reach.observer(store),
            ),
            Backoff(cfg.retry_base_s, cfg.retry_cap_s),
            reach,
        )
    except BrokerUnavailable as exc:
        # Its lease hands the chunk on once Redis is back (the reaper): one line, no trace.
        log.warning("job %s chunk %s: stopped, %s", job_id, chunk_id, exc)
        return {"status": "lost"}
    except UnknownJob:
        log.warning("job %s chunk %s: the job's records vanished; stopped", job_id, chunk_id)
        return {"status": "unknown"}
    countdown = decision.retry_in_s
    if countdown is not None:
        # Watched meanwhile: if the worker holding the delayed message dies, the
        # reaper hands the chunk on once this deadline passes unclaimed.
        store.defer_chunk(job_id, chunk_id, time.time() + countdown + 3 * cfg.lease_s)
        if decision.hand_back:
            task.retry(countdown=0, throw=False)
            # The chunk is on the queue again: leave it to the others for a moment.
            time.sleep(min(decision.pause_s, _PAUSE_CAP_S))
            return {"status": "handed_back", "recorded": 0}
        if decision.waiting:
            log.info("job %s chunk %s: waits %.1f s for its destination", job_id, chunk_id,
                     countdown)  # fmt: skip
            raise task.retry(countdown=countdown)
        log.info("job %s chunk %s: retry %d in %.1f s", job_id, chunk_id, decision.retry, countdown)
        raise task.retry(countdown=countdown)
    if decision.job_finished:
        log.info("job %s finished: %s", job_id, store.progress(job_id).state.value)
    status = "error" if decision.internal_error else decision.result.status.value
    return {"status": status, "recorded": decision.result.recorded}
