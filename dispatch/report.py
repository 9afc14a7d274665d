"""The per-file report of a run: one record per outcome, as JSON lines or CSV.

Every report, whoever writes it (``dispatch send`` as it goes, ``dispatch submit`` and
``dispatch report`` once a job ended), has the same records: the JSON form of
:meth:`FileOutcome.to_json`, one object per line, or those fields as CSV columns.
Records are written as they come (:func:`write_report` takes any iterable), so that a
report streamed from a job store never holds the job in memory.

A job store keeps a file stored as its scan described it as its time alone (see
:mod:`dispatch.jobs.backends.redis`) and reports it whole: status ``0x0000``, no reason,
the data set's bytes, the file's SOP class and instance UIDs, its own transfer syntax,
and the C-STORE time to the microsecond.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable
from typing import IO

from dispatch.errors import UsageError
from dispatch.outcome import FileOutcome

__all__ = ["COMMIT_FIELDS", "FIELDS", "FORMATS", "ReportWriter", "write_report"]

FIELDS = (
    "path", "outcome", "status", "reason", "bytes", "sop_class_uid", "sop_instance_uid",
    "transfer_syntax", "seconds",
)  # fmt: skip
"""The fields of a record, in their order (the CSV columns)."""

FORMATS = ("jsonl", "csv")

COMMIT_FIELDS = ("commitment", "commitment_reason")
"""Fields a report of ``dispatch send --commit`` adds to each record: the file's
storage commitment state (``committed``, ``commit_failed``, ``commit_pending``; "" for
a file not stored) and its reason."""


class ReportWriter:
    """A report open for writing: ``path`` ("-": standard output) in ``fmt`` (one of
    :data:`FORMATS`). Raises :class:`UsageError` when the file cannot be written."""

    def __init__(self, path: str, fmt: str = "jsonl", commitment: bool = False) -> None:
        self._handle: IO[str] = sys.stdout
        try:
            if path != "-":
                # Closed by close().
                self._handle = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115
        except OSError as exc:
            raise UsageError(f"cannot write report {path}: {exc.strerror}") from exc
        self._csv: csv.DictWriter[str] | None = None
        if fmt == "csv":
            fields = FIELDS + COMMIT_FIELDS if commitment else FIELDS
            self._csv = csv.DictWriter(self._handle, fieldnames=fields)
            self._csv.writeheader()

    def write(self, outcome: FileOutcome, commitment: tuple[str, str] | None = None) -> None:
        """Add the record of ``outcome`` (with ``commitment``: its state and reason, see
        :data:`COMMIT_FIELDS`)."""
        record = outcome.to_json()
        if commitment is not None:
            record.update(zip(COMMIT_FIELDS, commitment, strict=True))
        if self._csv is not None:
            self._csv.writerow(record)
        else:
            self._handle.write(json.dumps(record) + "\n")

    def close(self) -> None:
        if self._handle is not sys.stdout:
            self._handle.close()


def write_report(path: str, outcomes: Iterable[FileOutcome], fmt: str = "jsonl") -> None:
    """Write every outcome to ``path`` ("-": standard output) as JSON lines or CSV."""
    writer = ReportWriter(path, fmt)
    try:
        for outcome in outcomes:
            writer.write(outcome)
    finally:
        writer.close()
