"""``celery -A tests.support.faulty_worker worker``: the workers' own app, whose send
task runs its chunks with :func:`tests.support.faults.run_chunk_with_a_fault`."""

from __future__ import annotations

from tests.support.faults import run_chunk_with_a_fault
from workers import app, tasks

tasks.run_chunk = run_chunk_with_a_fault  # type: ignore[attr-defined]

__all__ = ["app"]
