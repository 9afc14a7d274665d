"""The distributed sender end to end: real Redis, real Celery workers, real DICOM peers."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

from dispatch.jobs.enqueue import wait_for_job
from dispatch.jobs.model import Chunk, JobSpec, JobState
from dispatch.jobs.redis_store import RedisJobStore
from dispatch.jobs.scan import chunk, scan
from dispatch.jobs.store import JobProgress
from dispatch.outcome import Outcome
from tests.jobs.support import chunks_of, confirmed, make_spec
from tests.support.cluster import Worker, WorkerFactory
from tests.support.dicom_files import Study, make_study
from tests.support.jobs import enqueue_job
from tests.support.programs import require_program
from tests.support.scp import StorageScp
from tests.support.storescp import free_port, is_listening

JOB_TIMEOUT_S = 60.0


def _studies(root: Path, count: int, images: int) -> list[Study]:
    return [make_study(root / f"study{n}", images=images) for n in range(count)]


def _run(redis_url: str, store: RedisJobStore, spec: JobSpec, chunks: list[Chunk]) -> JobProgress:
    enqueue_job(redis_url, spec, chunks, store=store)
    return wait_for_job(store, spec.job_id, poll_s=0.1, timeout_s=JOB_TIMEOUT_S)


def test_success_across_studies_and_two_workers(
    scp: StorageScp,
    workers: list[Worker],
    redis_url: str,
    job_store: RedisJobStore,
    tmp_path: Path,
) -> None:
    studies = _studies(tmp_path, 4, 3)
    spec = make_spec(scp.host, scp.port, job_id="ok1", max_associations=2)
    final = _run(redis_url, job_store, spec, chunks_of([f for s in studies for f in s.files], 2))
    assert final.state is JobState.COMPLETED
    assert (final.stored, final.total_files, final.chunks_done) == (12, 12, 8)
    counts = Counter(s.sop_instance_uid for s in scp.stores)
    assert counts == Counter(uid for s in studies for uid in s.sop_instance_uids)
    assert set(counts.values()) == {1}
    assert all(o.outcome is Outcome.STORED for o in job_store.report("ok1"))


def test_association_limit_holds_across_workers(
    scp: StorageScp,
    workers: list[Worker],
    redis_url: str,
    job_store: RedisJobStore,
    tmp_path: Path,
) -> None:
    studies = _studies(tmp_path, 4, 2)
    spec = make_spec(scp.host, scp.port, job_id="lim1", max_associations=1)
    final = _run(redis_url, job_store, spec, chunks_of([f for s in studies for f in s.files], 2))
    assert final.state is JobState.COMPLETED and final.stored == 8
    assert len(scp.associations) == 4
    assert scp.max_concurrent == 1


def test_peer_down_then_up_is_retried_then_delivered(
    workers: list[Worker], redis_url: str, job_store: RedisJobStore, tmp_path: Path
) -> None:
    program = require_program("storescp")
    study = make_study(tmp_path / "s", images=3)
    port = free_port()
    spec = make_spec("127.0.0.1", port, job_id="down1", retries=20)
    enqueue_job(redis_url, spec, chunks_of(study.files, 10), store=job_store)
    # Down: wait until the refused connection was counted as a retry.
    wait_until = time.monotonic() + JOB_TIMEOUT_S
    while job_store.progress("down1").retries < 1:
        assert time.monotonic() < wait_until
        time.sleep(0.05)
    received = tmp_path / "received"
    received.mkdir()
    peer = subprocess.Popen(
        [str(program), "-od", str(received), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "TCP_NODELAY": "1"},
    )
    try:
        while not is_listening(port):
            assert peer.poll() is None and time.monotonic() < wait_until
            time.sleep(0.02)
        final = wait_for_job(job_store, "down1", poll_s=0.1, timeout_s=JOB_TIMEOUT_S)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(peer.pid, signal.SIGTERM)
        peer.wait()
    assert final.state is JobState.COMPLETED and final.stored == 3
    assert final.retries >= 1
    assert len(list(received.iterdir())) == 3


def test_0xA700_is_retried_and_the_file_stored_once(
    scp: StorageScp,
    workers: list[Worker],
    redis_url: str,
    job_store: RedisJobStore,
    tmp_path: Path,
) -> None:
    study = make_study(tmp_path / "s", images=3)
    scp.respond(0xA700)
    spec = make_spec(scp.host, scp.port, job_id="a700")
    final = _run(redis_url, job_store, spec, chunks_of(study.files, 10))
    assert final.state is JobState.COMPLETED and final.stored == 3 and final.retries == 1
    assert [s.status for s in scp.stores].count(0xA700) == 1
    ok = Counter(s.sop_instance_uid for s in scp.stores if s.status == 0)
    assert ok == Counter(study.sop_instance_uids)


def test_0xC000_with_halt_halts_the_job_and_queued_chunks_send_nothing(
    scp: StorageScp,
    workers: list[Worker],
    redis_url: str,
    job_store: RedisJobStore,
    tmp_path: Path,
) -> None:
    studies = _studies(tmp_path, 3, 2)
    paths = {
        uid: str(f) for s in studies for uid, f in zip(s.sop_instance_uids, s.files, strict=True)
    }
    scp.respond(0xC000)
    spec = make_spec(scp.host, scp.port, job_id="halt1", halt=True, max_associations=1)
    final = _run(redis_url, job_store, spec, chunks_of([f for s in studies for f in s.files], 2))
    assert final.state is JobState.HALTED
    assert len(scp.stores) == 1
    assert final.halted_path == paths[scp.stores[0].sop_instance_uid]
    assert final.halt_reason.startswith("0xC000")
    assert (final.stored, final.failed, final.not_sent) == (0, 1, 5)
    reasons = {o.reason for o in job_store.report("halt1") if o.outcome is Outcome.NOT_SENT}
    assert reasons == {"job halted"}


def test_0xC000_with_continue_attempts_every_file(
    scp: StorageScp,
    workers: list[Worker],
    redis_url: str,
    job_store: RedisJobStore,
    tmp_path: Path,
) -> None:
    studies = _studies(tmp_path, 3, 2)
    scp.respond(0xC000)
    spec = make_spec(scp.host, scp.port, job_id="cont1", halt=False)
    final = _run(redis_url, job_store, spec, chunks_of([f for s in studies for f in s.files], 2))
    assert final.state is JobState.COMPLETED_WITH_FAILURES
    assert (final.stored, final.failed, final.not_sent) == (5, 1, 0)
    assert len(scp.stores) == 6
    assert final.failures == {"0xC000 (Error: cannot understand)": 1}


def test_bad_files_are_reported_never_enqueued(
    scp: StorageScp,
    workers: list[Worker],
    redis_url: str,
    job_store: RedisJobStore,
    tmp_path: Path,
) -> None:
    study = make_study(tmp_path / "s", images=2)
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"DICM but not really")
    result = scan([str(study.files[0]), str(bad), str(study.files[1])])
    assert [p.path for p in result.problems] == [str(bad)]
    spec = make_spec(scp.host, scp.port, job_id="bad1", halt=False)
    enqueue_job(
        redis_url, spec, chunk(result.groups, 10), store=job_store, problems=result.problems
    )
    final = wait_for_job(job_store, "bad1", poll_s=0.1, timeout_s=JOB_TIMEOUT_S)
    assert final.state is JobState.COMPLETED_WITH_FAILURES
    assert (final.total_files, final.stored, final.not_sent) == (3, 2, 1)
    report = {o.path: o for o in job_store.report("bad1")}
    assert report[str(bad)].outcome is Outcome.NOT_SENT and report[str(bad)].reason
    assert len(scp.stores) == 2


def test_worker_killed_mid_job_the_job_still_completes(
    scp: StorageScp,
    worker_factory: WorkerFactory,
    redis_url: str,
    job_store: RedisJobStore,
    tmp_path: Path,
) -> None:
    # A queue of their own: the session's workers must not take this job.
    pool = [worker_factory("k1", queue="kill"), worker_factory("k2", queue="kill")]
    study = make_study(tmp_path / "s", images=6)
    chunks = chunks_of(study.files, 10)
    spec = make_spec(scp.host, scp.port, job_id="kill1", max_associations=1, queue="kill")
    scp.stall_on_store(3)
    enqueue_job(redis_url, spec, chunks, store=job_store)
    scp.wait_until_stalled(1, timeout_s=JOB_TIMEOUT_S)

    holder = job_store.holder("kill1", chunks[0].chunk_id)
    assert holder is not None
    pid = int(holder.split(":")[1])
    (victim,) = [w for w in pool if w.owns(pid)]
    victim.kill()
    killed_at = time.monotonic()

    stalled = scp.stores[2]
    scp.release_stall()
    scp.wait_for(lambda: stalled.association.ended is not None, "the dead association", 10)
    # Nothing was resent while the dead worker's association was still there.
    assert [s.sop_instance_uid for s in scp.stores].count(stalled.sop_instance_uid) == 1

    final = wait_for_job(job_store, "kill1", poll_s=0.1, timeout_s=120)
    recovery_s = time.monotonic() - killed_at
    print(f"job completed {recovery_s:.1f} s after the kill")
    assert recovery_s < 120
    assert final.state is JobState.COMPLETED and final.stored == 6
    assert confirmed(job_store, "kill1", chunks[0].chunk_id) == {str(p) for p in study.files}
    counts = Counter(s.sop_instance_uid for s in scp.stores)
    assert set(counts) == set(study.sop_instance_uids)
    # Sent again after the kill: the file in flight, and the files stored before it
    # whose outcomes were still waiting to be recorded as a batch; each once only.
    resent = {uid for uid, n in counts.items() if n > 1}
    assert stalled.sop_instance_uid in resent
    assert resent <= set(study.sop_instance_uids[:3])
    assert max(counts.values()) == 2
    assert scp.max_concurrent == 1
