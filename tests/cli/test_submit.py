"""``dispatch submit``: the embedded mode, and jobs sent by real Celery workers through a
real Redis to real DICOM peers; ``dispatch worker`` as a program.

Every run is in this process (:func:`run_cli`) except ``dispatch worker``, which replaces
its process with celery and so runs as a subprocess.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

import dispatch.jobs.embedded
from dispatch.jobs.model import JobState
from dispatch.jobs.redis_store import RedisJobStore
from dispatch.outcome import Outcome
from tests.cli.conftest import dispatch_program
from tests.support import cluster
from tests.support.cluster import READY_TIMEOUT_S, REPO, WORKER_ENV, Worker, run_cli
from tests.support.dicom_files import Study, make_study
from tests.support.faults import INTERNAL_ERROR, run_chunk_with_a_fault
from tests.support.scp import StorageScp
from tests.support.storescp import free_port

C000 = "0xC000 (Error: cannot understand)"


def _studies(root: Path, count: int, images: int) -> list[Study]:
    return [make_study(root / f"study{n}", images=images) for n in range(count)]


def _files(studies: list[Study]) -> list[Path]:
    return [f for s in studies for f in s.files]


def _peer(scp: StorageScp) -> list[str]:
    return [scp.host, str(scp.port)]


def _job_id(stdout: str) -> str:
    """The job id ``dispatch submit`` prints on its first line."""
    first = stdout.splitlines()[0].strip()
    assert len(first) == 12 and all(c in "0123456789abcdef" for c in first), stdout
    return first


# -- the embedded mode (no broker) -------------------------------------------------------


def test_small_studies_go_together_over_one_association(scp: StorageScp, tmp_path: Path) -> None:
    studies = _studies(tmp_path, 6, 1)
    # --no-check: the associations counted are the job's own.
    run = run_cli("submit", "--no-check", "--jobs", "1", *_peer(scp), *_files(studies))
    assert run.code == 0, run.stderr
    assert "files: 6 (stored 6, failed 0, not sent 0)" in run.stdout
    assert len(scp.associations) == 1  # one task for the six one-image studies
    # Study after study, in the order given.
    sent = [s.sop_instance_uid for s in scp.stores]
    assert sent == [uid for study in studies for uid in study.sop_instance_uids]


def test_small_studies_are_shared_among_the_associations_allowed(
    scp: StorageScp, tmp_path: Path
) -> None:
    studies = _studies(tmp_path, 6, 2)
    run = run_cli("submit", "--no-check", "--jobs", "2", *_peer(scp), *_files(studies))
    assert run.code == 0, run.stderr
    assert "files: 12 (stored 12, failed 0, not sent 0)" in run.stdout
    # Two associations, each with whole studies, study after study in the order given.
    assert sorted(a.stores for a in scp.associations) == [6, 6]
    order = [uid for study in studies for uid in study.sop_instance_uids]
    for association in scp.associations:
        sent = [s.sop_instance_uid for s in scp.stores if s.association is association]
        assert sent == sorted(sent, key=order.index)
        whole = [st for st in studies if set(st.sop_instance_uids) & set(sent)]
        assert sorted(sent) == sorted(uid for st in whole for uid in st.sop_instance_uids)


def test_embedded_mode_sends_studies_on_two_associations_at_once(
    scp: StorageScp, tmp_path: Path
) -> None:
    studies = _studies(tmp_path, 3, 2)
    report = tmp_path / "report.jsonl"
    scp.stall_on_store(1)
    runs: list[cluster.CliRun] = []
    # --chunk 8: studies of two files are not small enough to be packed together.
    args: list[str | Path | int] = ["submit", "--no-check", "--jobs", "2", "--chunk", "8"]
    args += ["--report", report]
    args += _peer(scp)
    args += _files(studies)
    thread = threading.Thread(target=lambda: runs.append(run_cli(*args)))
    thread.start()
    try:
        # One association is held at its first store while the other sends the two
        # other studies: two associations run at once.
        scp.wait_until_stalled(1, timeout_s=30)
        scp.wait_for_stores(5, timeout_s=30)
    finally:
        scp.release_stall()
        thread.join(60)
    (run,) = runs
    assert run.code == 0, run.stderr
    assert ": completed" in run.stdout
    assert "files: 6 (stored 6, failed 0, not sent 0)" in run.stdout
    assert scp.max_concurrent == 2
    assert len(scp.associations) == 3  # one per study
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert sorted(item["path"] for item in lines) == sorted(map(str, _files(studies)))
    assert {item["outcome"] for item in lines} == {"stored"}
    counts = Counter(s.sop_instance_uid for s in scp.stores)
    assert set(counts.values()) == {1} and len(counts) == 6


def test_embedded_mode_halts_on_0xC000_with_exit_192(scp: StorageScp, tmp_path: Path) -> None:
    study = make_study(tmp_path / "s", images=3)
    scp.respond(0xC000)
    run = run_cli("submit", "--jobs", "1", *_peer(scp), *study.files)
    assert run.code == 192
    assert f"halted at {study.files[0]}: {C000}" in run.stdout
    assert len(scp.stores) == 1


def test_embedded_no_halt_exit_codes_follow_storescu(scp: StorageScp, tmp_path: Path) -> None:
    study = make_study(tmp_path / "s", images=2)
    # Every store answered with a failure: the job "failed", yet storescu -nh exits 0.
    scp.default_status = 0xC000
    run = run_cli("submit", "--no-halt", *_peer(scp), *study.files)
    assert (run.code, len(scp.stores)) == (0, 2), run.stderr
    assert ": failed" in run.stdout
    # The peer refuses the association: nothing reached it, exit 1 as storescu.
    scp.reset()
    scp.reject_associations()
    run = run_cli("submit", "--no-check", "--no-halt", *_peer(scp), *study.files)
    assert run.code == 1
    assert "files: 2 (stored 0, failed 0, not sent 2)" in run.stdout


def test_embedded_jobs_beyond_the_association_limit_are_announced(
    scp: StorageScp, tmp_path: Path
) -> None:
    study = make_study(tmp_path / "s", images=1)
    run = run_cli("submit", "--jobs", "3", "--max-associations", "1", *_peer(scp), *study.files)
    assert run.code == 0
    assert "W: --jobs 3: at most 1 associations to this peer at once" in run.stderr


def test_embedded_retries_0_gives_up_at_once_counting_no_retry(tmp_path: Path) -> None:
    study = make_study(tmp_path / "s", images=2)
    # --no-check: the job itself meets the peer that is down.
    run = run_cli(
        "submit", "--no-check", "--retries", "0", "--retry-for", "0s", "127.0.0.1", free_port(),
        *study.files,
    )  # fmt: skip
    assert run.code == 1
    assert "files: 2 (stored 0, failed 0, not sent 2)" in run.stdout
    assert "retries:" not in run.stdout


def test_embedded_internal_error_ends_the_job_with_exit_1(
    scp: StorageScp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dispatch.jobs.embedded, "run_chunk", run_chunk_with_a_fault)
    study = make_study(tmp_path / "s", images=3)
    report = tmp_path / "report.jsonl"
    run = run_cli("submit", "--no-halt", "--report", report, *_peer(scp), *study.files)
    assert run.code == 1, run.stderr
    assert "files: 3 (stored 0, failed 1, not sent 2)" in run.stdout
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert sorted((item["path"], item["outcome"], item["reason"]) for item in lines) == [
        (str(study.files[0]), "failed", INTERNAL_ERROR),
        (str(study.files[1]), "not_sent", INTERNAL_ERROR),
        (str(study.files[2]), "not_sent", INTERNAL_ERROR),
    ]


def test_report_without_wait_is_refused_before_submitting(scp: StorageScp, tmp_path: Path) -> None:
    study = make_study(tmp_path / "s", images=1)
    report = tmp_path / "report.jsonl"
    run = run_cli(
        "submit", "--broker", "redis://127.0.0.1:1/0", "--no-wait", "--report", report,
        *_peer(scp), *study.files,
    )  # fmt: skip
    assert run.code == 1
    assert run.stderr.startswith("F: --report needs --wait with a broker")
    assert not report.exists() and scp.stores == []


# -- through Redis and the workers -------------------------------------------------------


def test_submit_and_wait_through_the_workers_delivers_every_file_once(
    scp: StorageScp, workers: list[Worker], redis_url: str, tmp_path: Path
) -> None:
    studies = _studies(tmp_path, 3, 3)
    run = run_cli(
        "submit", "--broker", redis_url, "--wait", "--chunk", "2", *_peer(scp), *_files(studies)
    )
    assert run.code == 0, run.stderr
    _job_id(run.stdout)
    assert "files: 9 (stored 9, failed 0, not sent 0)" in run.stdout
    counts = Counter(s.sop_instance_uid for s in scp.stores)
    assert counts == Counter(uid for s in studies for uid in s.sop_instance_uids)
    assert set(counts.values()) == {1}


def test_0xC000_halts_the_job_with_exit_192_naming_the_file(
    scp: StorageScp,
    workers: list[Worker],
    redis_url: str,
    job_store: RedisJobStore,
    tmp_path: Path,
) -> None:
    studies = _studies(tmp_path, 2, 2)
    by_uid = {u: str(f) for s in studies for u, f in zip(s.sop_instance_uids, s.files, strict=True)}
    scp.respond(0xC000)
    run = run_cli("submit", "--broker", redis_url, "--wait", *_peer(scp), *_files(studies))
    assert run.code == 192, run.stdout + run.stderr
    failed = by_uid[scp.stores[0].sop_instance_uid]
    final = job_store.progress(_job_id(run.stdout))
    assert (final.state, final.halted_path, final.halt_reason) == (JobState.HALTED, failed, C000)
    assert f"halted at {failed}: {C000}" in run.stdout


def test_no_halt_completes_with_failures_and_exit_0(
    scp: StorageScp, workers: list[Worker], redis_url: str, tmp_path: Path
) -> None:
    studies = _studies(tmp_path, 2, 2)
    scp.respond(0xC000)
    run = run_cli(
        "submit", "--broker", redis_url, "--wait", "--no-halt", *_peer(scp), *_files(studies)
    )
    assert run.code == 0, run.stderr
    assert ": completed with failures" in run.stdout
    assert "files: 4 (stored 3, failed 1, not sent 0)" in run.stdout
    assert f"1 × {C000}" in run.stdout
    assert len(scp.stores) == 4


def _bad_files(root: Path) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    garbage = root / "garbage.dcm"
    garbage.write_bytes(b"this is not DICOM at all" * 10)
    empty = root / "empty.dcm"
    empty.write_bytes(b"")
    return [garbage, empty]


def test_bad_file_with_halt_halts_the_job_naming_it(
    scp: StorageScp,
    workers: list[Worker],
    redis_url: str,
    job_store: RedisJobStore,
    tmp_path: Path,
) -> None:
    # --chunk 1: the first file is handed to the workers before the bad one is found.
    study = make_study(tmp_path / "s", images=2)
    garbage, empty = _bad_files(tmp_path / "bad")
    run = run_cli(
        "submit", "--broker", redis_url, "--wait", "--chunk", "1", *_peer(scp),
        study.files[0], garbage, empty, study.files[1],
    )  # fmt: skip
    assert run.code == 1, run.stdout + run.stderr
    assert f"not sent: {garbage}: " in run.stderr
    assert f"halted: {garbage} cannot be sent" in run.stderr
    final = job_store.progress(_job_id(run.stdout))
    assert (final.state, final.halted_path) == (JobState.HALTED, str(garbage))
    assert f"halted at {garbage}: not a DICOM file" in run.stdout
    outcomes = {o.path: o for o in job_store.report(final.job_id)}
    # The scan stopped at the bad file: the files after it are not part of the job.
    assert set(outcomes) == {str(study.files[0]), str(garbage)}
    assert outcomes[str(garbage)].outcome is Outcome.NOT_SENT
    assert final.total_files == final.done == 2
    # The first file went out before the halt, or was stopped by it: never both.
    stored = [s.sop_instance_uid for s in scp.stores]
    assert stored in ([], [study.sop_instance_uids[0]])
    first = outcomes[str(study.files[0])].outcome
    assert first is (Outcome.STORED if stored else Outcome.NOT_SENT)


def test_embedded_bad_file_with_halt_sends_nothing_after_it(
    scp: StorageScp, tmp_path: Path
) -> None:
    study = make_study(tmp_path / "s", images=2)
    garbage, _empty = _bad_files(tmp_path / "bad")
    report = tmp_path / "report.jsonl"
    run = run_cli(
        "submit", "--report", report, *_peer(scp), study.files[0], garbage, study.files[1]
    )
    assert run.code == 1, run.stderr
    assert f"halted at {garbage}: not a DICOM file" in run.stdout
    lines = {json.loads(line)["path"]: json.loads(line) for line in report.read_text().splitlines()}
    assert set(lines) == {str(study.files[0]), str(garbage)}
    assert lines[str(garbage)]["outcome"] == "not_sent"
    assert study.sop_instance_uids[1] not in {s.sop_instance_uid for s in scp.stores}


def test_bad_files_with_no_halt_are_recorded_and_the_rest_delivered(
    scp: StorageScp,
    workers: list[Worker],
    redis_url: str,
    job_store: RedisJobStore,
    tmp_path: Path,
) -> None:
    study = make_study(tmp_path / "s", images=2)
    bad = _bad_files(tmp_path / "bad")
    report = tmp_path / "report.jsonl"
    run = run_cli(
        "submit", "--broker", redis_url, "--wait", "--no-halt", "--report", report,
        *_peer(scp), study.files[0], *bad, study.files[1],
    )  # fmt: skip
    assert run.code == 0, run.stderr
    for path in bad:
        assert f"not sent: {path}: " in run.stderr
    assert "files: 4 (stored 2, failed 0, not sent 2)" in run.stdout
    outcomes = {o.path: o for o in job_store.report(_job_id(run.stdout))}
    assert {p: outcomes[str(p)].outcome for p in bad} == {p: Outcome.NOT_SENT for p in bad}
    assert all(outcomes[str(p)].reason for p in bad)
    assert {json.loads(line)["path"] for line in report.read_text().splitlines()} == set(outcomes)
    assert sorted(s.sop_instance_uid for s in scp.stores) == sorted(study.sop_instance_uids)


# -- dispatch worker ---------------------------------------------------------------------


def test_dispatch_worker_runs_a_worker_that_takes_jobs(
    scp: StorageScp,
    redis_url: str,
    job_store: RedisJobStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    queue, node = "cli-worker", "cli-worker@test"
    log_path = tmp_path / "worker.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_")}
    command = [*dispatch_program(), "worker", "--broker", redis_url, "--queues", queue]
    command += ["--concurrency", "1", "--hostname", node]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env={**env, **WORKER_ENV},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        # The worker's reaper announces it in Redis once celery is ready.
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not job_store.client.exists(f"dispatch:worker:{node}"):
            assert process.poll() is None, log_path.read_text(errors="replace")
            assert time.monotonic() < deadline, "dispatch worker did not start"
            time.sleep(0.05)
        study = make_study(tmp_path / "s", images=2)
        monkeypatch.setenv("DISPATCH_QUEUE", queue)
        run = run_cli("submit", "--broker", redis_url, "--wait", *_peer(scp), *study.files)
        assert run.code == 0, run.stderr
        # Only this worker consumes that queue.
        assert job_store.spec(_job_id(run.stdout)).queue == queue
        assert sorted(s.sop_instance_uid for s in scp.stores) == sorted(study.sop_instance_uids)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0, log_path.read_text(errors="replace")


def test_embedded_a_file_that_shrinks_while_sent_fails_alone(
    scp: StorageScp, tmp_path: Path
) -> None:
    import pydicom

    study = make_study(tmp_path / "s", images=3)
    middle = study.files[1]
    large = pydicom.dcmread(middle)
    large.Rows = large.Columns = 4096
    large.PixelData = bytes(32 << 20)
    large.save_as(middle)
    cut: list[int] = []

    def shrink(received: int) -> None:
        # Cut once the peer has 4 MB of the 32 MB: long after the runner checked the
        # file's size and time, long before it has read the file through.
        if received > 4 << 20 and not cut:
            cut.append(received)
            os.truncate(middle, 1 << 20)

    scp.on_data_received(shrink)
    report = tmp_path / "report.jsonl"
    # --no-check: the associations counted are the job's own.
    run = run_cli("submit", "--no-check", "--no-halt", "--jobs", "1", "--report", report,
                  *_peer(scp), *study.files)  # fmt: skip
    assert run.code == 0, run.stderr
    outcomes = {item["path"]: item for item in map(json.loads, report.read_text().splitlines())}
    assert [outcomes[str(p)]["outcome"] for p in study.files] == ["stored", "failed", "stored"]
    assert outcomes[str(middle)]["reason"].startswith("file changed while being sent: ")
    records = scp.wait_for_associations(2)
    assert [s.association for s in scp.stores] == [records[0], records[1]]


def _claim_syntax(path: Path, syntax: str) -> Path:
    """Make the meta header of an explicit VR little endian file claim ``syntax`` (as
    long as the UID it replaces, padded), its data set left as it is."""
    explicit = b"1.2.840.10008.1.2.1\0"
    assert len(syntax) <= len(explicit)
    data = path.read_bytes()
    path.write_bytes(data.replace(explicit, syntax.encode().ljust(len(explicit), b"\0"), 1))
    return path


def test_embedded_every_file_not_sent_for_its_own_reason_is_named(
    scp: StorageScp, tmp_path: Path
) -> None:
    study = make_study(tmp_path / "s", images=4)
    rle = _claim_syntax(study.files[1], "1.2.840.10008.1.2.5")
    unknown = _claim_syntax(study.files[2], "1.2.3.4.5.6.7.8.9")
    odd = tmp_path / "odd\nname.dcm"
    odd.write_bytes(b"not DICOM at all")
    run = run_cli("submit", "--no-halt", "--jobs", "1", *_peer(scp), *study.files, odd)
    assert run.code == 0, run.stderr
    assert "files: 5 (stored 2, failed 0, not sent 3)" in run.stdout
    named = [line for line in run.stderr.splitlines() if "not sent: " in line]
    assert len(named) == 3, run.stderr
    assert sum(f"not sent: {rle}: " in line for line in named) == 1
    assert sum(f"not sent: {unknown}: " in line for line in named) == 1
    assert sum(f"not sent: {tmp_path}/odd\\nname.dcm: " in line for line in named) == 1
    for stored in (study.files[0], study.files[3]):
        assert str(stored) not in run.stderr


def test_embedded_progress_of_a_completed_job_compares_like_with_like(
    scp: StorageScp, tmp_path: Path
) -> None:
    study = make_study(tmp_path / "s", images=3)
    run = run_cli("submit", "--jobs", "1", *_peer(scp), *study.files)
    assert run.code == 0, run.stderr
    (last,) = [line for line in run.stderr.splitlines() if line.startswith("completed: ")]
    files, data = last.split(", ")[:2]
    assert files == "completed: 3/3 files"
    done, total = data.split("/")
    assert done == total, last  # stored data-set bytes of all the data-set bytes
    assert last.endswith(", 0 failed, 0 not sent")
