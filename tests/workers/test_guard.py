"""The guard of the retry decision in a real Celery worker: a chunk whose run raises an
unexpected exception ends with every file's outcome recorded, once, and the waiting
``dispatch submit`` returns (no redelivery by the reaper)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from dispatch.jobs.model import JobState
from dispatch.jobs.redis_store import RedisJobStore
from dispatch.outcome import Outcome
from tests.support.cluster import WORKER_ENV, CliRun, Worker, WorkerFactory, run_cli
from tests.support.dicom_files import make_study
from tests.support.faults import INTERNAL_ERROR
from tests.support.scp import StorageScp

WAIT_S = 60.0


def _submit_and_wait(*args: object) -> CliRun:
    """``dispatch submit *args`` on a thread: fail when it does not return in time."""
    runs: list[CliRun] = []
    thread = threading.Thread(target=lambda: runs.append(run_cli(*map(str, args))))
    thread.start()
    thread.join(WAIT_S)
    assert not thread.is_alive(), "dispatch submit --wait did not return"
    return runs[0]


def test_a_worker_task_that_raises_records_every_file_and_submit_returns(
    scp: StorageScp,
    worker_factory: WorkerFactory,
    redis_url: str,
    job_store: RedisJobStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker = worker_factory("faulty", queue="faulty", app="tests.support.faulty_worker")
    monkeypatch.setenv("DISPATCH_QUEUE", "faulty")
    study = make_study(tmp_path / "s", images=3)
    run = _submit_and_wait(
        "submit", "--broker", redis_url, "--wait", "--no-halt", scp.host, scp.port, *study.files
    )
    assert run.code == 1, run.stdout + run.stderr
    assert "files: 3 (stored 0, failed 1, not sent 2)" in run.stdout
    job_id = run.stdout.splitlines()[0].strip()
    final = job_store.progress(job_id)
    assert (final.state, final.chunks_done, final.retries) == (JobState.FAILED, 1, 0)
    outcomes = {o.path: o for o in job_store.report(job_id)}
    first, *rest = (str(f) for f in study.files)
    assert (outcomes[first].outcome, outcomes[first].reason) == (Outcome.FAILED, INTERNAL_ERROR)
    assert {(outcomes[p].outcome, outcomes[p].reason) for p in rest} == {
        (Outcome.NOT_SENT, INTERNAL_ERROR)
    }
    # Past the chunk's lease and a reaper round: nobody handed the chunk on again.
    time.sleep(float(WORKER_ENV["DISPATCH_LEASE_S"]) * 1.5)
    assert worker.log().count(INTERNAL_ERROR) == 1, worker.log()
    assert scp.stores == []


def test_a_file_name_that_is_not_utf8_gets_an_outcome_like_every_other(
    scp: StorageScp,
    workers: list[Worker],
    redis_url: str,
    job_store: RedisJobStore,
    tmp_path: Path,
) -> None:
    # Legal on Linux; a job store may not take such a name as it is.
    study = make_study(tmp_path / "s", images=3)
    os.rename(study.files[1], os.fsencode(study.directory) + b"/IMG\xff.dcm")
    run = _submit_and_wait(
        "submit", "--broker", redis_url, "--wait", "--no-halt", scp.host, scp.port,
        "+sd", study.directory,
    )  # fmt: skip
    job_id = run.stdout.splitlines()[0].strip()
    final = job_store.progress(job_id)
    assert final.is_finished and final.chunks_done == final.chunks
    assert final.done == final.total_files == 3, run.stdout + run.stderr
    assert len(list(job_store.report(job_id))) == 3
