"""A chunk run with storage commitment: the chunk is done only once its stored files
have a commitment state, and each state is counted in
``dispatch_files_committed_total``."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from dispatch.jobs.runner import ChunkStatus, run_chunk
from dispatch.jobs.slots import MemorySlots
from dispatch.jobs.store import MemoryJobStore
from dispatch.metrics import PrometheusObserver
from tests.jobs.support import chunks_of, make_spec
from tests.support.commitment_scp import CommitmentScp
from tests.support.dicom_files import make_study


@pytest.fixture
def commitment_scp() -> Iterator[CommitmentScp]:
    scp = CommitmentScp()
    yield scp
    scp.shutdown()
    assert scp.errors == []


def _committed(destination: str, result: str) -> float | None:
    return REGISTRY.get_sample_value(
        "dispatch_files_committed_total", {"destination": destination, "result": result}
    )


def test_the_chunk_ends_with_every_file_committed_or_failed_and_counted(
    commitment_scp: CommitmentScp, tmp_path: Path
) -> None:
    study = make_study(tmp_path / "s", images=3)
    commitment_scp.fail = {study.sop_instance_uids[2]: 0x0213}
    (chunk,) = chunks_of(study.files, 10)
    spec = make_spec(commitment_scp.host, commitment_scp.port, job_id="rc1")
    spec = dataclasses.replace(spec, commit_timeout_s=30.0)
    store = MemoryJobStore()
    store.create_job(spec, [chunk])
    observer = PrometheusObserver()
    result = run_chunk(spec, chunk, store, MemorySlots(), observer=observer)
    assert result.status is ChunkStatus.DONE and result.job_finished
    p = store.progress("rc1")
    assert (p.stored, p.committed, p.commit_failed, p.commit_pending) == (3, 2, 1, 0)
    assert _committed(spec.destination, "committed") == 2
    assert _committed(spec.destination, "commit_failed") == 1
    # Created at 0 with the destination's other series.
    assert _committed(spec.destination, "commit_pending") == 0
    # Run again (a redelivered task): nothing is asked for or counted twice.
    assert run_chunk(spec, chunk, store, MemorySlots(), observer=observer).status is (
        ChunkStatus.DONE)  # fmt: skip
    assert len(commitment_scp.requests) == 1
    assert _committed(spec.destination, "committed") == 2
