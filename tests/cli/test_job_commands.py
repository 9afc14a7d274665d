"""The job commands: ``dispatch status|watch|jobs|report|retry|cancel`` on jobs sent by
real Celery workers through a real Redis to the test peer, run in this process."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from dispatch.jobs.model import JobState
from dispatch.jobs.redis_store import RedisJobStore
from dispatch.jobs.runner import REPLY_GRACE_S
from dispatch.outcome import Outcome
from tests.support.cluster import Worker, run_cli
from tests.support.dicom_files import Study, make_study
from tests.support.scp import StorageScp

C000 = "0xC000 (Error: cannot understand)"


def _peer(scp: StorageScp) -> list[str]:
    return [scp.host, str(scp.port)]


def _submit(redis_url: str, scp: StorageScp, files: list[Path], *options: str) -> str:
    run = run_cli("submit", "--broker", redis_url, "--no-wait", *options, *_peer(scp), *files)
    assert run.code == 0, run.stderr
    (job_id,) = run.stdout.split()  # the job id and nothing else
    return job_id


def _files(root: Path, studies: int, images: int) -> tuple[list[Study], list[Path]]:
    made = [make_study(root / f"study{n}", images=images) for n in range(studies)]
    return made, [f for s in made for f in s.files]


def _views_agree(
    redis_url: str, job: str, state: str, *, stored: int, failed: int, not_sent: int
) -> dict[str, Any]:
    """Every view of the finished job gives the same counts: the progress line and the
    summary of ``status``, its JSON, the ``jobs`` list and the report. Returns the JSON."""
    total = stored + failed + not_sent
    status = run_cli("status", job, "--broker", redis_url).stdout.splitlines()
    progress = status[0]
    assert progress.startswith(f"{state}: {total}/{total} files"), progress
    assert progress.endswith(f"{failed} failed, {not_sent} not sent"), progress
    assert ("files/s" in progress) == (stored > 0), progress  # no rate without a store
    assert f"files: {total} (stored {stored}, failed {failed}, not sent {not_sent})" in status
    as_json = json.loads(run_cli("status", job, "--broker", redis_url, "--json").stdout)
    assert as_json["state"] == state
    assert (as_json["files"], as_json["done"]) == (total, total)
    assert (as_json["stored"], as_json["failed"], as_json["not_sent"]) == (
        stored,
        failed,
        not_sent,
    )
    assert as_json["finished"] is not None
    (line,) = [
        ln for ln in run_cli("jobs", "--broker", redis_url).stdout.splitlines()
        if ln.startswith(job)
    ]  # fmt: skip
    assert f"{total}/{total} files  stored {stored}, failed {failed}, not sent {not_sent}" in line
    report = run_cli("report", job, "--broker", redis_url).stdout
    outcomes = Counter(json.loads(ln)["outcome"] for ln in report.splitlines())
    expected = {"stored": stored, "failed": failed, "not_sent": not_sent}
    assert outcomes == {k: v for k, v in expected.items() if v}
    return dict(as_json)


def test_no_wait_then_watch_status_jobs_and_reports(
    scp: StorageScp, workers: list[Worker], redis_url: str, tmp_path: Path
) -> None:
    _, files = _files(tmp_path, 2, 3)
    job = _submit(redis_url, scp, files, "--job-name", "nightly")

    watched = run_cli("watch", job, "--broker", redis_url)
    assert watched.code == 0, watched.stderr
    assert f"job {job} (nightly) to ANY-SCP@127.0.0.1:{scp.port}: completed" in watched.stdout
    assert "completed: 6/6 files" in watched.stderr  # the progress display's last line

    status = run_cli("status", job, "--broker", redis_url)
    assert status.code == 0
    assert status.stdout.startswith("completed: 6/6 files")
    assert "files: 6 (stored 6, failed 0, not sent 0)" in status.stdout

    listed = run_cli("jobs", "--broker", redis_url)
    assert listed.code == 0
    (line,) = [ln for ln in listed.stdout.splitlines() if ln.startswith(job)]
    assert "completed" in line and "6/6 files" in line and line.endswith("nightly")
    assert "stored 6, failed 0, not sent 0" in line
    assert re.search(r"submitted \S+ \S+  started \S+ \S+  finished \S+ \S+", line), line

    as_json = json.loads(run_cli("status", job, "--broker", redis_url, "--json").stdout)
    assert as_json["job_id"] == job and as_json["name"] == "nightly"
    assert as_json["state"] == "completed"
    assert (as_json["files"], as_json["done"], as_json["stored"]) == (6, 6, 6)
    assert (as_json["failed"], as_json["not_sent"], as_json["scanning"]) == (0, 0, False)
    assert as_json["submitted"] <= as_json["started"] <= as_json["finished"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", as_json["finished"])
    listed_json = json.loads(run_cli("jobs", "--broker", redis_url, "--json").stdout)
    (same,) = [j for j in listed_json if j["job_id"] == job]
    assert same == as_json

    jsonl = run_cli("report", job, "--broker", redis_url, "--format", "jsonl")
    rows = [json.loads(ln) for ln in jsonl.stdout.splitlines()]
    assert sorted(r["path"] for r in rows) == sorted(map(str, files))
    assert {r["outcome"] for r in rows} == {"stored"}

    as_csv = run_cli("report", job, "--broker", redis_url, "--format", "csv")
    table = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert sorted(r["path"] for r in table) == sorted(map(str, files))
    assert {r["outcome"] for r in table} == {"stored"}


def test_status_of_a_halted_job_names_the_file(
    scp: StorageScp,
    workers: list[Worker],
    redis_url: str,
    job_store: RedisJobStore,
    tmp_path: Path,
) -> None:
    _, files = _files(tmp_path, 1, 3)
    scp.respond(0xC000)
    job = _submit(redis_url, scp, files, "--max-associations", "1")
    watched = run_cli("watch", job, "--broker", redis_url)
    assert watched.code == 192
    status = run_cli("status", job, "--broker", redis_url)
    assert status.stdout.startswith("halted: 3/3 files")
    assert "files: 3 (stored 0, failed 1, not sent 2)" in status.stdout
    assert f"halted at {files[0]}: {C000}" in status.stdout
    as_json = _views_agree(redis_url, job, "halted", stored=0, failed=1, not_sent=2)
    assert as_json["halted_at"] == str(files[0])


def test_cancel_a_job_stalled_at_the_peer(
    scp: StorageScp,
    workers: list[Worker],
    redis_url: str,
    job_store: RedisJobStore,
    tmp_path: Path,
) -> None:
    _, files = _files(tmp_path, 1, 4)
    # Stalled: slower to answer than the runner's grace (a faster answer has the flags
    # read within the runner's check interval, a few files later at most).
    scp.stall_on_store(1, at_least_s=3 * REPLY_GRACE_S)
    job = _submit(redis_url, scp, files)
    scp.wait_until_stalled(1, timeout_s=30)

    run = run_cli("cancel", job, "--broker", redis_url)
    assert (run.code, run.stdout) == (0, f"job {job} cancelled\n")
    assert job_store.progress(job).state is JobState.CANCELLED
    scp.release_stall()

    watched = run_cli("watch", job, "--broker", redis_url)
    assert watched.code == 1
    final = job_store.progress(job)
    assert final.state is JobState.CANCELLED and final.is_finished
    # The file in flight got its answer; nothing was sent after it.
    assert len(scp.stores) == 1
    assert (final.stored, final.not_sent) == (1, 3)
    reasons = {o.reason for o in job_store.report(job) if o.outcome is Outcome.NOT_SENT}
    assert reasons == {"job cancelled"}
    _views_agree(redis_url, job, "cancelled", stored=1, failed=0, not_sent=3)

    again = run_cli("cancel", job, "--broker", redis_url)
    assert again.code == 1 and again.stderr == f"job {job} has already ended\n"


def test_retry_resends_only_the_failed_files(
    scp: StorageScp,
    workers: list[Worker],
    redis_url: str,
    job_store: RedisJobStore,
    tmp_path: Path,
) -> None:
    studies, files = _files(tmp_path, 2, 3)
    scp.respond(0xC000, 0xC000)
    first = run_cli("submit", "--broker", redis_url, "--wait", "--no-halt", *_peer(scp), *files)
    assert first.code == 0, first.stderr
    job = first.stdout.splitlines()[0]
    assert "files: 6 (stored 4, failed 2, not sent 0)" in first.stdout
    failed_uids = {s.sop_instance_uid for s in scp.stores if s.status == 0xC000}
    assert len(failed_uids) == 2

    # The peer answers success from now on.
    run = run_cli("retry", job, "--broker", redis_url)
    assert run.code == 0, run.stderr
    assert run.stdout.startswith(f"job {job}: ")
    watched = run_cli("watch", job, "--broker", redis_url)
    assert watched.code == 0, watched.stderr
    assert ": completed" in watched.stdout and "with failures" not in watched.stdout

    final = job_store.progress(job)
    assert (final.state, final.stored, final.failed, final.total_files) == (
        JobState.COMPLETED,
        6,
        0,
        6,
    )
    assert final.failures == {}
    stores = scp.stores
    assert len(stores) == 8
    resent = Counter(s.sop_instance_uid for s in stores[6:])
    assert set(resent) == failed_uids and set(resent.values()) == {1}
    ok = Counter(s.sop_instance_uid for s in stores if s.status == 0)
    assert ok == Counter(uid for s in studies for uid in s.sop_instance_uids)

    nothing = run_cli("retry", job, "--broker", redis_url)
    assert (nothing.code, nothing.stdout) == (0, f"job {job}: nothing to retry\n")


@pytest.mark.parametrize("command", ["status", "watch", "report", "retry", "cancel"])
def test_unknown_job_is_a_one_line_error(
    redis_url: str, job_store: RedisJobStore, command: str
) -> None:
    run = run_cli(command, "feedfacecafe", "--broker", redis_url)
    assert run.code == 1
    assert run.stdout == ""
    assert run.stderr.count("\n") == 1
    assert run.stderr.startswith(f"dispatch {command}: unknown or expired job")


def test_status_without_a_broker_is_a_one_line_error() -> None:
    run = run_cli("status", "feedfacecafe")
    assert run.code == 1
    assert run.stderr.count("\n") == 1
    assert run.stderr.startswith("dispatch status: no broker configured: give --broker URL")


def test_unreachable_broker_is_a_one_line_error() -> None:
    run = run_cli("jobs", "--broker", "redis://127.0.0.1:1/0")
    assert run.code == 1
    assert run.stderr.count("\n") == 1
    assert run.stderr.startswith("dispatch jobs: cannot reach the broker: ")


SUBMIT = "import sys; from dispatch.cli.main import main; sys.exit(main(sys.argv[1:]))"


def test_submit_wait_with_no_worker_says_once_where_the_tasks_wait(
    scp: StorageScp, redis_url: str, tmp_path: Path
) -> None:
    _, files = _files(tmp_path, 1, 2)
    queue = f"nobody-{uuid.uuid4().hex[:6]}"  # no worker consumes it
    env = {**os.environ, "DISPATCH_QUEUE": queue, "DISPATCH_NO_WORKER_NOTICE_S": "0.5"}
    env.pop("DISPATCH_CONFIG", None)
    cmd = [sys.executable, "-c", SUBMIT, "submit", "--broker", redis_url, "--wait"]
    process = subprocess.Popen(
        [*cmd, *_peer(scp), *map(str, files)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    # The notice is awaited on the command's own output; a timer bounds the wait.
    timer = threading.Timer(60, process.kill)
    timer.start()
    lines: list[str] = []
    try:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if "no worker" in line:
                break
        process.kill()
        rest = process.communicate()[1]
    finally:
        timer.cancel()
        process.wait()
    job = ""
    for line in lines:
        if line.startswith("W: no worker"):
            job = line.split("task of job ")[1].split()[0]
    assert job, "".join(lines)
    assert run_cli("cancel", job, "--broker", redis_url).code == 0
    (notice,) = [ln for ln in lines if "no worker" in ln]
    assert notice.strip() == (
        f"W: no worker has taken any task of job {job} after 0.5 s: its tasks wait on"
        f" queue {queue!r} of the broker at {redis_url}"
        f" (dispatch worker --queues {queue} consumes it)"
    )
    assert "no worker" not in rest
