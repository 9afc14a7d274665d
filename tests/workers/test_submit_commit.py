"""``dispatch submit --commit`` with Redis and two workers: storage commitment of each
chunk, reported on the requesting association or to a ``dispatch commit-listener``
process, with failures, never, and a worker killed between request and report."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dispatch.jobs.enqueue import wait_for_job
from dispatch.jobs.model import JobSpec
from dispatch.jobs.redis_store import RedisJobStore
from dispatch.jobs.store import JobProgress
from dispatch.outcome import Outcome
from tests.jobs.support import chunks_of, make_spec
from tests.support.cluster import REPO, Worker, WorkerFactory, run_cli
from tests.support.commitment_scp import CommitmentScp
from tests.support.dicom_files import Study, make_study
from tests.support.jobs import enqueue_job
from tests.support.storescp import free_port

JOB_TIMEOUT_S = 60.0
OUR_AE = "MIGRATOR"


@pytest.fixture
def four(tmp_path: Path) -> Study:
    return make_study(tmp_path / "s", images=4)


class Listener:
    """A ``dispatch commit-listener`` process on a free port."""

    def __init__(self, redis_url: str) -> None:
        self.port = free_port()
        cmd = [sys.executable, "-m", "dispatch.cli.main", "commit-listener", "-v",
               "--broker", redis_url, "-aet", OUR_AE, f"127.0.0.1:{self.port}"]  # fmt: skip
        self.process = subprocess.Popen(
            cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # printed once it listens
        assert line.startswith("listening for storage commitment reports"), line

    def stop(self) -> str:
        self.process.terminate()
        out, _ = self.process.communicate(timeout=10)
        assert self.process.returncode == 0, out
        return out


@pytest.fixture
def listener(redis_url: str) -> Iterator[Listener]:
    started = Listener(redis_url)
    yield started
    started.stop()


def _spec(scp: CommitmentScp, job_id: str, timeout_s: float = 30.0, **kw: object) -> JobSpec:
    spec = make_spec(scp.host, scp.port, job_id=job_id, **kw)  # type: ignore[arg-type]
    settings = dataclasses.replace(spec.settings, calling_ae=OUR_AE)
    return dataclasses.replace(spec, settings=settings, commit_timeout_s=timeout_s)


def _run(
    redis_url: str, store: RedisJobStore, spec: JobSpec, study: Study, per_chunk: int = 2
) -> JobProgress:
    enqueue_job(redis_url, spec, chunks_of(study.files, per_chunk), store=store)
    return wait_for_job(store, spec.job_id, poll_s=0.1, timeout_s=JOB_TIMEOUT_S)


def _states(store: RedisJobStore, job_id: str, study: Study) -> dict[str, tuple[str, str]]:
    return store.commitment(job_id, [str(f) for f in study.files])


def test_report_on_the_requesting_association_commits_each_chunk(
    commitment_scp: CommitmentScp,
    workers: list[Worker],
    redis_url: str,
    job_store: RedisJobStore,
    four: Study,
) -> None:
    final = _run(redis_url, job_store, _spec(commitment_scp, "commit-same"), four)
    assert (final.stored, final.committed, final.commit_failed, final.commit_pending) == (
        4, 4, 0, 0)  # fmt: skip
    assert final.commit and final.commit_settled
    # One request per chunk, each naming that chunk's instances.
    assert sorted(uid for r in commitment_scp.requests for uid in r.instances) == sorted(
        four.sop_instance_uids
    )
    assert len(commitment_scp.requests) == 2
    assert set(_states(job_store, "commit-same", four).values()) == {("committed", "")}


def test_report_on_a_new_association_is_recorded_by_the_listener(
    commitment_scp: CommitmentScp,
    workers: list[Worker],
    listener: Listener,
    redis_url: str,
    job_store: RedisJobStore,
    four: Study,
) -> None:
    commitment_scp.mode = "new"
    commitment_scp.report_to = ("127.0.0.1", listener.port, OUR_AE)
    final = _run(redis_url, job_store, _spec(commitment_scp, "commit-new"), four)
    assert (final.committed, final.commit_failed, final.commit_pending) == (4, 0, 0)
    assert commitment_scp.reports_sent.is_set()


def test_partial_failure_is_recorded_per_file_and_fails_the_exit_code(
    commitment_scp: CommitmentScp,
    workers: list[Worker],
    redis_url: str,
    job_store: RedisJobStore,
    four: Study,
    tmp_path: Path,
) -> None:
    commitment_scp.fail = {four.sop_instance_uids[1]: 0x0112}
    spec = _spec(commitment_scp, "commit-part", halt=False)
    final = _run(redis_url, job_store, spec, four)
    assert (final.committed, final.commit_failed, final.commit_pending) == (3, 1, 0)
    states = _states(job_store, "commit-part", four)
    assert states[str(four.files[1])] == ("commit_failed", "0x0112 (no such object instance)")
    report = run_cli("report", "commit-part", "--broker", redis_url, "--format", "csv")
    assert report.code == 0
    header, *rows = report.stdout.splitlines()
    assert header.endswith(",commitment,commitment_reason")
    assert sum("commit_failed" in row for row in rows) == 1
    watched = run_cli("watch", "commit-part", "--broker", redis_url)
    assert watched.code == 1  # stored everything, but not everything committed
    # The failed file was sent again and asked for again, once.
    failed_uid = four.sop_instance_uids[1]
    assert commitment_scp.stored.count(failed_uid) == 2
    assert sum(r.instances == [failed_uid] for r in commitment_scp.requests) == 1
    assert "commitment: 3 committed, 1 failed, 0 pending" in watched.stdout
    status = run_cli("status", "commit-part", "--broker", redis_url)
    assert "committed 3/4 (1 failed, 0 pending)" in status.stdout


def test_no_report_leaves_the_files_pending_after_the_timeout(
    commitment_scp: CommitmentScp,
    workers: list[Worker],
    redis_url: str,
    job_store: RedisJobStore,
    four: Study,
) -> None:
    commitment_scp.mode = "never"
    final = _run(redis_url, job_store, _spec(commitment_scp, "commit-never", 0.5), four)
    assert final.stored == 4
    assert (final.committed, final.commit_failed, final.commit_pending) == (0, 0, 4)
    reasons = {r for _s, r in _states(job_store, "commit-never", four).values()}
    assert reasons == {"no storage commitment report in time"}


def test_worker_killed_before_the_report_the_listener_records_it(
    commitment_scp: CommitmentScp,
    worker_factory: WorkerFactory,
    listener: Listener,
    redis_url: str,
    job_store: RedisJobStore,
    four: Study,
) -> None:
    # A queue of their own: the session's workers must not take this job.
    pool = [worker_factory("c1", queue="commitkill"), worker_factory("c2", queue="commitkill")]
    commitment_scp.mode = "new"
    commitment_scp.report_to = ("127.0.0.1", listener.port, OUR_AE)
    commitment_scp.release.clear()
    spec = _spec(commitment_scp, "commit-kill", queue="commitkill")
    chunks = chunks_of(four.files, 10)
    enqueue_job(redis_url, spec, chunks, store=job_store)
    assert commitment_scp.actions.wait(JOB_TIMEOUT_S)
    holder = job_store.holder("commit-kill", chunks[0].chunk_id)
    assert holder is not None
    (victim,) = [w for w in pool if w.owns(int(holder.split(":")[1]))]
    victim.kill()
    commitment_scp.release.set()  # the report goes to the listener, not to the dead worker
    final = wait_for_job(job_store, "commit-kill", poll_s=0.1, timeout_s=120)
    assert final.stored == 4 and final.committed == 4
    assert all(o.outcome is Outcome.STORED for o in job_store.report("commit-kill"))
    # The next runner found the files committed: no second request was needed.
    assert len(commitment_scp.requests) == 1


def test_submit_commit_waits_for_the_commitment_and_summarises_it(
    commitment_scp: CommitmentScp,
    workers: list[Worker],
    redis_url: str,
    four: Study,
) -> None:
    run = run_cli("submit", "--broker", redis_url, "--wait", "--commit", "--commit-timeout",
                  "30", "-aet", OUR_AE, commitment_scp.host, commitment_scp.port,
                  *four.files)  # fmt: skip
    assert run.code == 0, run.stderr
    assert "commitment: 4 committed, 0 failed, 0 pending" in run.stdout


def test_submit_commit_port_needs_the_listener_process_with_a_broker(
    redis_url: str, four: Study
) -> None:
    run = run_cli("submit", "--broker", redis_url, "--commit", "--commit-port", "11112",
                  "--no-check", "127.0.0.1", "104", *four.files)  # fmt: skip
    assert run.code == 1
    assert "dispatch commit-listener" in run.stderr


def test_the_listener_says_in_one_line_where_it_cannot_listen(redis_url: str) -> None:
    run = run_cli("commit-listener", "--broker", redis_url, "127.0.0.1:99999")
    assert run.code == 1
    assert "invalid address '127.0.0.1:99999'" in run.stderr
