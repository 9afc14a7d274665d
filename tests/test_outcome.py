"""Per-file outcomes: the JSON form names every field once, in declaration order."""

from __future__ import annotations

import dataclasses
import json

from dispatch.outcome import FileOutcome, Outcome, RunSummary


def test_json_form_holds_every_field_with_status_as_hex_text() -> None:
    outcome = FileOutcome(
        "/data/a.dcm",
        Outcome.FAILED,
        status=0xC000,
        reason="cannot understand",
        bytes=0,
        sop_class_uid="1.2.840.10008.5.1.4.1.1.7",
        sop_instance_uid="1.2.3",
        transfer_syntax="1.2.840.10008.1.2.1",
        seconds=0.25,
    )
    data = outcome.to_json()
    assert list(data) == [f.name for f in dataclasses.fields(FileOutcome)]
    assert data == {**dataclasses.asdict(outcome), "outcome": "failed", "status": "0xC000"}
    assert FileOutcome(path="b", outcome=Outcome.STORED).to_json()["status"] is None


def test_json_form_reads_back_as_the_same_outcome() -> None:
    outcome = FileOutcome(
        "/data/a\nb.dcm",
        Outcome.STORED,
        status=0xB000,
        reason="coercion of data elements",
        bytes=1234,
        sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
        sop_instance_uid="1.2.3",
        transfer_syntax="1.2.840.10008.1.2",
        seconds=0.5,
    )
    assert FileOutcome.from_json(json.loads(json.dumps(outcome.to_json()))) == outcome
    assert FileOutcome.from_json({"path": "b", "outcome": "not_sent"}) == FileOutcome(
        "b", Outcome.NOT_SENT
    )


def test_summary_lines_keep_a_file_name_to_its_line() -> None:
    summary = RunSummary()
    summary.add(FileOutcome("x", Outcome.NOT_SENT, reason="halted after a\nb.dcm"))
    summary.finish()
    assert summary.lines()[-1] == "  1 × not sent: halted after a\\nb.dcm"
