"""A chunk run with storage commitment: the chunk is done only once its stored files
have a commitment state, and each state is counted in
``dispatch_files_committed_total``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from prometheus_client import REGISTRY

from dispatch.jobs.runner import ChunkStatus, run_chunk
from dispatch.jobs.slots import MemorySlots
from dispatch.jobs.store import MemoryJobStore
from dispatch.metrics import PrometheusObserver
from tests.jobs.support import chunks_of, make_spec
from tests.support.commitment_scp import CommitmentScp
from tests.support.dicom_files import make_study


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
    spec = make_spec(commitment_scp.host, commitment_scp.port, job_id="rc1", halt=False)
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
    # The failed file was sent again and asked for again once, then counted once.
    assert [len(r.instances) for r in commitment_scp.requests] == [3, 1]
    assert _committed(spec.destination, "committed") == 2
    assert _committed(spec.destination, "commit_failed") == 1


def _run_one(scp: CommitmentScp, tmp_path: Path, job_id: str, halt: bool) -> MemoryJobStore:
    study = make_study(tmp_path / job_id, images=3)
    scp.fail = {study.sop_instance_uids[1]: 0x0110}
    (chunk,) = chunks_of(study.files, 10)
    spec = make_spec(scp.host, scp.port, job_id=job_id, halt=halt)
    spec = dataclasses.replace(spec, commit_timeout_s=30.0)
    store = MemoryJobStore()
    store.create_job(spec, [chunk])
    assert run_chunk(spec, chunk, store, MemorySlots()).status is ChunkStatus.DONE
    return store


def test_a_file_whose_commitment_failed_is_sent_again_and_committed(
    commitment_scp: CommitmentScp, tmp_path: Path
) -> None:
    commitment_scp.fail_once = True
    store = _run_one(commitment_scp, tmp_path, "rc2", halt=True)
    p = store.progress("rc2")
    assert (p.state.value, p.committed, p.commit_failed) == ("completed", 3, 0)
    failed_uid = next(iter(commitment_scp.fail))
    assert commitment_scp.stored.count(failed_uid) == 2
    assert commitment_scp.requests[1].instances == [failed_uid]


def test_a_commitment_failure_after_the_resend_halts_the_job(
    commitment_scp: CommitmentScp, tmp_path: Path
) -> None:
    store = _run_one(commitment_scp, tmp_path, "rc3", halt=True)
    p = store.progress("rc3")
    assert (p.state.value, p.committed, p.commit_failed) == ("halted", 2, 1)
    assert p.halt_reason == "storage commitment failed: 0x0110 (processing failure)"
