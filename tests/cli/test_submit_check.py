"""``dispatch submit`` checks the destination before it scans: a peer that is down or
refuses fails the submission at once, with the reason and no job; ``--no-check`` skips
the check."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.cluster import run_cli
from tests.support.dicom_files import make_study
from tests.support.scp import REJECTED_TRANSIENT, StorageScp
from tests.support.storescp import free_port


def test_an_unreachable_destination_fails_before_the_scan(tmp_path: Path) -> None:
    study = make_study(tmp_path / "s", images=2)
    started = time.monotonic()
    run = run_cli("submit", "--jobs", "1", "127.0.0.1", free_port(), *study.files)
    assert time.monotonic() - started < 10
    assert run.code == 1
    assert run.stdout == ""  # no job id: nothing was scanned or recorded
    (line,) = run.stderr.splitlines()
    assert line.startswith("F: destination check failed: cannot connect to 127.0.0.1:")
    assert "connection refused" in line and "--no-check" in line


def test_a_refusing_destination_fails_with_its_reason(scp: StorageScp, tmp_path: Path) -> None:
    study = make_study(tmp_path / "s", images=1)
    scp.reject_associations(REJECTED_TRANSIENT, 3, 2)
    run = run_cli("submit", "--jobs", "1", scp.host, scp.port, *study.files)
    assert run.code == 1
    assert run.stdout == ""
    assert "destination check failed: association rejected (rejected-transient)" in run.stderr
    assert "local limit exceeded" in run.stderr
    assert scp.stores == []


def test_the_check_is_one_association_with_the_jobs_contexts(
    scp: StorageScp, tmp_path: Path
) -> None:
    study = make_study(tmp_path / "s", images=2)
    run = run_cli("submit", "--jobs", "1", "-aet", "MIGRATOR", scp.host, scp.port, *study.files)
    assert run.code == 0, run.stderr
    check, job = scp.wait_for_associations(2)
    assert check.calling_ae == job.calling_ae == "MIGRATOR"
    assert check.proposed == job.proposed
    assert len(scp.stores) == 2


def test_no_check_lets_the_job_meet_the_peer_itself(tmp_path: Path) -> None:
    study = make_study(tmp_path / "s", images=2)
    run = run_cli(
        "submit", "--no-check", "--retries", "0", "--retry-for", "0s", "127.0.0.1", free_port(),
        *study.files,
    )  # fmt: skip
    assert run.code == 1
    assert "destination check failed" not in run.stderr
    assert "files: 2 (stored 0, failed 0, not sent 2)" in run.stdout
