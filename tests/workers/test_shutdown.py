"""SIGTERM of a worker: the file in flight finishes and is recorded, the rest of its
chunk is handed back at once and sent by another worker, and the worker exits."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from dispatch.jobs.backends.redis import RedisJobStore
from dispatch.jobs.enqueue import wait_for_job
from dispatch.jobs.model import JobState
from tests.jobs.support import chunks_of, make_spec
from tests.support.cluster import WORKER_ENV, WorkerFactory
from tests.support.dicom_files import make_study
from tests.support.jobs import enqueue_job
from tests.support.netns import wait_until
from tests.support.scp import StorageScp

LEASE_S = 30.0
"""The workers' lease here: far longer than the hand-back may take, so that the chunk
can only have gone on by being handed back, not by its lease running out."""
EXIT_S = 10.0


def test_a_terminated_worker_hands_its_chunk_back_and_exits(
    scp: StorageScp,
    worker_factory: WorkerFactory,
    redis_url: str,
    job_store: RedisJobStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(WORKER_ENV, "DISPATCH_LEASE_S", str(LEASE_S))
    # A queue of their own: the session's workers must not take this job.
    pool = [worker_factory("t1", queue="term"), worker_factory("t2", queue="term")]
    study = make_study(tmp_path / "s", images=8)
    chunks = chunks_of(study.files, 10)
    spec = make_spec(scp.host, scp.port, job_id="term1", max_associations=1, queue="term")
    scp.stall_on_store(3)
    enqueue_job(redis_url, spec, chunks, store=job_store)
    scp.wait_until_stalled(1, timeout_s=30)

    holder = job_store.holder("term1", chunks[0].chunk_id)
    assert holder is not None
    pid = int(holder.split(":")[1])
    (victim,) = [w for w in pool if w.owns(pid)]
    victim.process.send_signal(signal.SIGTERM)  # the main process only, as docker stop
    in_flight = scp.stores[2]
    # The main process passes the stop on to its pool process as it announces the warm
    # shutdown; the pool process, blocked on the peer's answer, takes it at once.
    wait_until(lambda: "Warm shutdown" in victim.log(), "the warm shutdown", EXIT_S)
    scp.release_stall()
    assert victim.process.wait(EXIT_S) == 0, victim.log()
    exited_at = time.monotonic()

    final = wait_for_job(job_store, "term1", poll_s=0.1, timeout_s=LEASE_S)
    handed_on_s = time.monotonic() - exited_at
    print(f"job completed {handed_on_s:.1f} s after the worker exited")
    assert handed_on_s < LEASE_S / 2
    assert final.state is JobState.COMPLETED and final.stored == 8
    counts = Counter(s.sop_instance_uid for s in scp.stores)
    # Every file once: the one in flight was answered and recorded before the hand-back.
    assert counts == Counter(study.sop_instance_uids)
    # The victim's association carried the files up to the one in flight, no more.
    assert in_flight.association.stores == 3, victim.log()
    assert len(scp.associations) == 2
