"""``dispatch send --commit``: storage commitment after the files are stored, against a
pynetdicom commitment SCP that reports on the same association, on a new one, with
failures, or never."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from dispatch.commitment import (
    CommitmentReport,
    Reference,
    commitment_states,
    encode_action_information,
)
from dispatch.outcome import FileOutcome, Outcome
from dispatch.report import COMMIT_FIELDS, FIELDS, ReportWriter
from tests.support.cluster import run_cli
from tests.support.commitment_scp import CommitmentScp
from tests.support.dicom_files import Study, make_study
from tests.support.storescp import free_port


@pytest.fixture
def three(tmp_path: Path) -> Study:
    return make_study(tmp_path / "s", images=3)


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _send(scp: CommitmentScp, study: Study, report: Path, *options: str | int) -> Any:
    return run_cli("send", "--commit", "--report", report, *options, scp.host, scp.port,
                   *study.files)  # fmt: skip


def test_report_on_the_same_association_commits_every_file(
    commitment_scp: CommitmentScp, three: Study, tmp_path: Path
) -> None:
    report = tmp_path / "r.jsonl"
    run = _send(commitment_scp, three, report)
    assert run.code == 0, run.stderr
    (request,) = commitment_scp.requests
    assert request.instances == list(three.sop_instance_uids)
    assert request.transaction_uid.startswith("2.25.")
    records = _records(report)
    assert [r["commitment"] for r in records] == ["committed"] * 3
    assert [r["path"] for r in records] == [str(f) for f in three.files]
    assert "commitment: 3 committed, 0 failed, 0 pending" in run.stdout


def test_report_on_a_new_association_reaches_the_listener(
    commitment_scp: CommitmentScp, three: Study, tmp_path: Path
) -> None:
    port = free_port()
    commitment_scp.mode = "new"
    commitment_scp.report_to = ("127.0.0.1", port, "MIGRATOR")
    report = tmp_path / "r.jsonl"
    run = _send(commitment_scp, three, report, "-aet", "MIGRATOR",
                "--commit-port", f"127.0.0.1:{port}")  # fmt: skip
    assert run.code == 0, run.stderr
    assert commitment_scp.reports_sent.is_set()
    assert {r["commitment"] for r in _records(report)} == {"committed"}


def test_partial_failure_is_recorded_per_file_and_fails_the_run(
    commitment_scp: CommitmentScp, three: Study, tmp_path: Path
) -> None:
    commitment_scp.fail = {three.sop_instance_uids[1]: 0x0112}
    report = tmp_path / "r.jsonl"
    run = _send(commitment_scp, three, report)
    assert run.code == 1
    records = _records(report)
    assert [r["outcome"] for r in records] == ["stored"] * 3
    assert [r["commitment"] for r in records] == ["committed", "commit_failed", "committed"]
    assert records[1]["commitment_reason"] == "0x0112 (no such object instance)"
    assert "commitment: 2 committed, 1 failed, 0 pending" in run.stdout
    assert "1 × 0x0112 (no such object instance)" in run.stdout


def test_no_report_in_time_leaves_files_pending(
    commitment_scp: CommitmentScp, three: Study, tmp_path: Path
) -> None:
    commitment_scp.mode = "never"
    report = tmp_path / "r.jsonl"
    run = _send(commitment_scp, three, report, "--commit-timeout", "0.3")
    assert run.code == 1
    assert {r["commitment"] for r in _records(report)} == {"commit_pending"}
    assert "commitment: 0 committed, 0 failed, 3 pending" in run.stdout


def test_a_listener_waits_out_the_timeout_when_nothing_comes(
    commitment_scp: CommitmentScp, three: Study, tmp_path: Path
) -> None:
    commitment_scp.mode = "never"
    report = tmp_path / "r.jsonl"
    run = _send(commitment_scp, three, report, "--commit-timeout", "0.3",
                "--commit-port", str(free_port()))  # fmt: skip
    assert run.code == 1
    assert {r["commitment"] for r in _records(report)} == {"commit_pending"}


def test_a_peer_without_storage_commitment_fails_every_file(
    three: Study, tmp_path: Path, storescp: Any
) -> None:
    peer = storescp()
    report = tmp_path / "r.jsonl"
    run = run_cli("send", "--commit", "--report", report, "localhost", peer.port, *three.files)
    assert run.code == 1
    records = _records(report)
    assert {r["outcome"] for r in records} == {"stored"}
    assert {r["commitment"] for r in records} == {"commit_failed"}
    assert "does not accept storage commitment" in records[0]["commitment_reason"]
    assert "E: storage commitment request failed" in run.stderr


def test_commit_options_need_commit() -> None:
    run = run_cli("send", "--commit-timeout", "5", "localhost", "104", "x.dcm")
    assert run.code == 1
    assert "--commit-timeout only allowed with --commit" in run.stderr


def test_a_listener_port_in_use_fails_before_sending(
    commitment_scp: CommitmentScp, three: Study, tmp_path: Path
) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        run = _send(commitment_scp, three, tmp_path / "r.jsonl", "--commit-port",
                    f"127.0.0.1:{port}")  # fmt: skip
    assert run.code == 1
    assert "cannot listen for storage commitment reports on 127.0.0.1:" in run.stderr
    assert commitment_scp.requests == []


def test_action_information_is_what_pydicom_reads() -> None:
    from pydicom.filereader import read_dataset

    refs = [Reference("1.2.840.10008.5.1.4.1.1.2", "1.2.3"), Reference("1.2.4", "1.2.34")]
    data = encode_action_information("2.25.7", refs)
    ds = read_dataset(io.BytesIO(data), is_implicit_VR=True, is_little_endian=True)
    assert ds.TransactionUID == "2.25.7"
    items = [
        (i.ReferencedSOPClassUID, i.ReferencedSOPInstanceUID) for i in ds.ReferencedSOPSequence
    ]
    assert items == [(r.sop_class_uid, r.sop_instance_uid) for r in refs]


def test_an_instance_the_report_leaves_out_stays_pending() -> None:
    refs = [Reference("1.2", "1.1"), Reference("1.2", "1.3")]
    states = commitment_states(refs, CommitmentReport("2.25.1", frozenset({"1.1"})))
    assert states["1.1"][0].value == "committed"
    assert states["1.3"][0].value == "commit_pending"


def test_csv_report_has_the_commitment_columns(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    writer = ReportWriter(str(path), "csv", commitment=True)
    writer.write(FileOutcome("a.dcm", Outcome.STORED), commitment=("committed", ""))
    writer.close()
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == FIELDS + COMMIT_FIELDS
    assert rows[0]["commitment"] == "committed"
