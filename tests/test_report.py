"""The per-file report: one record per outcome, JSON lines or CSV, the same for every
command that writes one."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from dispatch.errors import UsageError
from dispatch.outcome import FileOutcome, Outcome
from dispatch.report import FIELDS, ReportWriter, write_report

OUTCOMES = [
    FileOutcome("a.dcm", Outcome.STORED, status=0, bytes=10, seconds=0.1),
    FileOutcome("b,\n.dcm", Outcome.NOT_SENT, reason="cannot access file"),
]


def test_json_lines_read_back_as_the_outcomes(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write_report(str(path), OUTCOMES)
    lines = path.read_text().splitlines()
    assert [FileOutcome.from_json(json.loads(line)) for line in lines] == OUTCOMES


def test_csv_has_a_column_per_field(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    writer = ReportWriter(str(path), "csv")
    for outcome in OUTCOMES:
        writer.write(outcome)
    writer.close()
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == FIELDS
    assert [row["path"] for row in rows] == [o.path for o in OUTCOMES]


def test_a_report_that_cannot_be_written_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot write report"):
        ReportWriter(str(tmp_path / "missing" / "r.jsonl"))
