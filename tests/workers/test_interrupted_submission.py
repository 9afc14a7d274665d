"""A submitter killed while it enqueues: the job is closed as interrupted once its lease
runs out, every chunk it recorded is sent (the one it never published too), and the
job ends ``interrupted``, as ``dispatch status`` says."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from dispatch.jobs.backends.redis import RedisJobStore
from dispatch.jobs.enqueue import wait_for_job
from dispatch.jobs.model import JobState
from tests.support.cluster import REPO, WORKER_ENV, WorkerFactory, run_cli
from tests.support.dicom_files import make_study
from tests.support.netns import wait_until
from tests.support.scp import StorageScp

QUEUE = "interrupted"
CHUNK = 4
CHUNKS = 3
"""The submitter records this many chunks, and hangs as it publishes the last."""
TIMEOUT_S = 60.0


@pytest.fixture
def interrupted_pool(worker_factory: WorkerFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two workers on a queue of their own, which hand on a recorded chunk never
    published after 2 s, not a minute."""
    monkeypatch.setitem(WORKER_ENV, "DISPATCH_UNCLAIMED_GRACE_S", "2")
    worker_factory("i1", queue=QUEUE)
    worker_factory("i2", queue=QUEUE)


def _stop_mid_enqueue(
    sig: int, scp: StorageScp, redis_url: str, job_store: RedisJobStore, tmp_path: Path
) -> tuple[str, int, str]:
    """Run the hanging submitter with a lease of 1 s, send it ``sig`` once it has
    recorded its chunks; return the job id, its exit code and what it wrote on
    standard error."""
    study = make_study(tmp_path / "s", images=5 * CHUNK)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_")}
    env.update(DISPATCH_QUEUE=QUEUE, DISPATCH_LEASE_S="1", PYTHONPATH=str(REPO))
    command = [sys.executable, "-m", "tests.support.hanging_submit", str(CHUNKS)]
    command += ["--broker", redis_url, "--no-wait", "--chunk", str(CHUNK)]
    command += ["+sd", scp.host, str(scp.port), str(study.directory)]
    err_path = tmp_path / "submit.err"
    with err_path.open("w") as err:
        submitter = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=err, env=env, text=True, cwd=REPO
        )
    try:
        assert submitter.stdout is not None
        job_id = submitter.stdout.readline().strip()
        assert len(job_id) == 12, job_id
        wait_until(
            lambda: job_store.progress(job_id).chunks == CHUNKS, "the chunks recorded", TIMEOUT_S
        )
        submitter.send_signal(sig)
        code = submitter.wait(TIMEOUT_S)
    finally:
        if submitter.poll() is None:
            submitter.kill()
            submitter.wait()
        if submitter.stdout is not None:
            submitter.stdout.close()
    return job_id, code, err_path.read_text()


def _assert_interrupted(scp: StorageScp, job_store: RedisJobStore, job_id: str) -> None:
    """The job ends interrupted, every file of every chunk it recorded sent once."""
    final = wait_for_job(job_store, job_id, poll_s=0.1, timeout_s=TIMEOUT_S)
    # The chunks fill the associations allowed: the first ones may hold fewer than
    # CHUNK files, so the count recorded is the job's own.
    recorded = final.total_files
    assert CHUNKS <= recorded <= CHUNKS * CHUNK
    assert final.state is JobState.INTERRUPTED
    assert (final.stored, final.chunks_done) == (recorded, CHUNKS)
    assert final.interrupted == f"submission interrupted after {recorded} files"
    counts = Counter(s.sop_instance_uid for s in scp.stores)
    assert set(counts.values()) == {1} and len(counts) == recorded


@pytest.mark.usefixtures("interrupted_pool")
def test_a_submitter_killed_mid_enqueue_the_job_ends_interrupted(
    scp: StorageScp, redis_url: str, job_store: RedisJobStore, tmp_path: Path
) -> None:
    job_id, _code, _err = _stop_mid_enqueue(signal.SIGKILL, scp, redis_url, job_store, tmp_path)
    _assert_interrupted(scp, job_store, job_id)
    status = run_cli("status", job_id, "--broker", redis_url)
    recorded = job_store.progress(job_id).total_files
    assert status.stdout.startswith("interrupted:"), status.stdout
    assert f"submission interrupted after {recorded} files" in status.stdout


@pytest.mark.usefixtures("interrupted_pool")
def test_ctrl_c_mid_enqueue_ends_the_submission_and_says_the_job_goes_on(
    scp: StorageScp, redis_url: str, job_store: RedisJobStore, tmp_path: Path
) -> None:
    job_id, code, err = _stop_mid_enqueue(signal.SIGINT, scp, redis_url, job_store, tmp_path)
    assert code == 130, err
    assert f"job {job_id} goes on with the files submitted so far" in err, err
    assert f"dispatch watch {job_id}" in err and "Traceback" not in err, err
    _assert_interrupted(scp, job_store, job_id)
