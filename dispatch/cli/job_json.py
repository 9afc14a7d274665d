"""The machine-readable form of a job (``dispatch status --json``, ``dispatch jobs
--json``): one JSON object per job, its fields stable (documented in the README; new
fields may be added, none renamed or removed).

Counts are those of :class:`~dispatch.jobs.store.JobProgress`, the same every other view
of a job shows. Times are ISO 8601 in UTC (``2026-01-31T23:59:58Z``), ``null`` until
they happen.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dispatch.jobs.store import JobProgress


def iso_time(epoch_s: float) -> str | None:
    """``epoch_s`` as ISO 8601 UTC to the second, None for 0 (not yet)."""
    if not epoch_s:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_s))


def job_object(p: JobProgress) -> dict[str, Any]:
    """The job's JSON object."""
    return {
        "job_id": p.job_id,
        "name": p.name,
        "destination": p.destination,
        "state": p.state.value,
        "scanning": p.open,
        "interrupted": p.interrupted or None,
        "files": p.total_files,
        "bytes": p.total_bytes,
        "done": p.done,
        "stored": p.stored,
        "failed": p.failed,
        "not_sent": p.not_sent,
        "bytes_stored": p.bytes_stored,
        "tasks": p.chunks,
        "tasks_done": p.chunks_done,
        "retries": p.retries,
        "failures": dict(p.failures),
        "halted_at": p.halted_path or None,
        "halt_reason": p.halt_reason or None,
        "submitted": iso_time(p.created),
        "started": iso_time(p.started),
        "finished": iso_time(p.finished),
        "elapsed_s": round(p.elapsed_s, 3),
    }
