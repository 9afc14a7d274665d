"""``dispatch submit --commit`` without a broker: the chunks' storage commitment in
this process, the report taken on the requesting association or by the listener of
``--commit-port``, the report fields, summary and exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cluster import CliRun, run_cli
from tests.support.commitment_scp import CommitmentScp
from tests.support.dicom_files import Study, make_study
from tests.support.storescp import free_port


@pytest.fixture
def three(tmp_path: Path) -> Study:
    return make_study(tmp_path / "s", images=3)


def _submit(scp: CommitmentScp, study: Study, report: Path, *options: str | int) -> CliRun:
    return run_cli("submit", "--commit", "--report", report, "--chunk", "2", *options,
                   scp.host, scp.port, *study.files)  # fmt: skip


def test_embedded_job_commits_on_the_requesting_association(
    commitment_scp: CommitmentScp, three: Study, tmp_path: Path
) -> None:
    report = tmp_path / "r.jsonl"
    run = _submit(commitment_scp, three, report)
    assert run.code == 0, run.stderr
    assert "commitment: 3 committed, 0 failed, 0 pending" in run.stdout
    records = [json.loads(line) for line in report.read_text().splitlines()]
    assert [(r["commitment"], r["commitment_reason"]) for r in records] == [("committed", "")] * 3


def test_embedded_job_takes_the_report_on_its_listener(
    commitment_scp: CommitmentScp, three: Study, tmp_path: Path
) -> None:
    port = free_port()
    commitment_scp.mode = "new"
    commitment_scp.report_to = ("127.0.0.1", port, "MIGRATOR")
    commitment_scp.fail = {three.sop_instance_uids[0]: 0x0110}
    report = tmp_path / "r.jsonl"
    run = _submit(commitment_scp, three, report, "-aet", "MIGRATOR", "-nh",
                  "--commit-port", f"127.0.0.1:{port}")  # fmt: skip
    assert run.code == 1
    assert "commitment: 2 committed, 1 failed, 0 pending" in run.stdout
    records = {r["path"]: r for r in map(json.loads, report.read_text().splitlines())}
    failed = records[str(three.files[0])]
    assert (failed["commitment"], failed["commitment_reason"]) == (
        "commit_failed", "0x0110 (processing failure)")  # fmt: skip


def test_no_report_is_pending_after_the_timeout_and_exits_1(
    commitment_scp: CommitmentScp, three: Study, tmp_path: Path
) -> None:
    commitment_scp.mode = "never"
    run = _submit(commitment_scp, three, tmp_path / "r.jsonl", "--commit-timeout", "0.3")
    assert run.code == 1
    assert "commitment: 0 committed, 0 failed, 3 pending" in run.stdout


@pytest.mark.parametrize(("resends", "code", "summary"), [
    ((), 0, "commitment: 3 committed, 0 failed, 0 pending"),
    (("--commit-resends", "0"), 1, "commitment: 2 committed, 1 failed, 0 pending"),
])  # fmt: skip
def test_commit_resends_sets_how_often_a_failed_file_is_sent_again(
    commitment_scp: CommitmentScp,
    three: Study,
    tmp_path: Path,
    resends: tuple[str, ...],
    code: int,
    summary: str,
) -> None:
    failing = three.sop_instance_uids[1]
    commitment_scp.fail = {failing: 0x0110}
    commitment_scp.fail_once = True  # committed when asked again
    port = free_port()
    commitment_scp.mode = "new"
    commitment_scp.report_to = ("127.0.0.1", port, "MIGRATOR")
    run = _submit(commitment_scp, three, tmp_path / "r.jsonl", "-nh", "-aet", "MIGRATOR",
                  "--commit-port", f"127.0.0.1:{port}", "--commit-timeout", "60",
                  *resends)  # fmt: skip
    assert run.code == code, run.stderr
    assert summary in run.stdout
    assert commitment_scp.stored.count(failing) == (2 if code == 0 else 1)


def test_commit_resends_needs_commit_and_is_submits_alone() -> None:
    run = run_cli("submit", "--commit-resends", "2", "localhost", "104", "x.dcm")
    assert run.code == 1
    assert "--commit-resends only allowed with --commit" in run.stderr
    run = run_cli("send", "--commit", "--commit-resends", "2", "localhost", "104", "x.dcm")
    assert run.code == 1
    assert "--commit-resends" in run.stderr
