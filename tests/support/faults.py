"""A chunk runner that meets a fault of the sender's own, to test the guard of
:mod:`dispatch.jobs.attempt`: the real :func:`~dispatch.jobs.runner.run_chunk`, with
association slots that raise at first use. The chunk is claimed (its lease taken and
renewed) and its first file is next to go when the fault strikes.

:mod:`tests.support.faulty_worker` installs it in a Celery worker; a test of the
embedded mode puts it in place of ``dispatch.jobs.embedded.run_chunk``.
"""

from __future__ import annotations

from typing import Any, NoReturn

from dispatch.jobs.model import Chunk, JobSpec
from dispatch.jobs.runner import ChunkResult, run_chunk
from dispatch.jobs.slots import SlotPool
from dispatch.jobs.store import JobStore

FAULT = "injected fault"
INTERNAL_ERROR = f"internal error: RuntimeError: {FAULT}"
"""The reason recorded for the chunk's files."""


class BrokenSlots:
    """Slots whose every method raises ``RuntimeError(FAULT)``."""

    def __getattr__(self, name: str) -> Any:
        def broken(*_args: Any, **_kwargs: Any) -> NoReturn:
            raise RuntimeError(FAULT)

        return broken


def run_chunk_with_a_fault(
    spec: JobSpec, chunk: Chunk, store: JobStore, slots: SlotPool, **options: Any
) -> ChunkResult:
    """:func:`run_chunk` with :class:`BrokenSlots` instead of ``slots``."""
    return run_chunk(spec, chunk, store, BrokenSlots(), **options)
