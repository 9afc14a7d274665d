"""Per-file outcomes and the summary of a run.

Every file given to a sender ends in exactly one :class:`FileOutcome`: stored (the peer
confirmed it, possibly with a warning), failed (the peer answered with a failure
status, or the exchange broke while the file was in flight), or not sent (the reason).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from dispatch.logtext import printable
from dispatch.status import describe

__all__ = ["FileOutcome", "Outcome", "RunSummary", "human_bytes"]


def human_bytes(count: float) -> str:
    """``10.8 kB``, ``17.1 MB``, ``2.15 GB``: decimal units, three significant digits."""
    units = ("B", "kB", "MB", "GB", "TB", "PB")
    for unit in units[:-1]:
        if count < 999.5:
            return f"{count:.0f} B" if unit == "B" else f"{count:.3g} {unit}"
        count /= 1000
    return f"{count:.0f} {units[-1]}"


class Outcome(StrEnum):
    STORED = "stored"
    FAILED = "failed"
    NOT_SENT = "not_sent"


@dataclass(frozen=True)
class FileOutcome:
    """What happened to one file (one repetition of it with --repeat)."""

    path: str
    outcome: Outcome
    status: int | None = None
    """The C-STORE response status, when the peer answered."""
    reason: str = ""
    """Why the file failed or was not sent, or the warning's meaning."""
    bytes: int = 0
    """Data set bytes sent for a stored file."""
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    transfer_syntax: str = ""
    """The transfer syntax the data set was sent in."""
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; the status as ``0xNNNN`` text."""
        # Spelled out rather than dataclasses.asdict, which deep-copies: this runs once
        # per file recorded. tests/test_outcome.py keeps the two in step.
        return {
            "path": self.path,
            "outcome": self.outcome.value,
            "status": None if self.status is None else f"0x{self.status:04X}",
            "reason": self.reason,
            "bytes": self.bytes,
            "sop_class_uid": self.sop_class_uid,
            "sop_instance_uid": self.sop_instance_uid,
            "transfer_syntax": self.transfer_syntax,
            "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FileOutcome:
        """Inverse of :meth:`to_json` (the status comes back as an int); fields other
        than ``path`` and ``outcome`` may be missing, and unknown ones are ignored."""
        status = data.get("status")
        return cls(
            path=str(data["path"]),
            outcome=Outcome(data["outcome"]),
            status=None if status is None else int(str(status), 16),
            reason=str(data.get("reason", "")),
            bytes=int(data.get("bytes", 0)),
            sop_class_uid=str(data.get("sop_class_uid", "")),
            sop_instance_uid=str(data.get("sop_instance_uid", "")),
            transfer_syntax=str(data.get("transfer_syntax", "")),
            seconds=float(data.get("seconds", 0.0)),
        )


@dataclass
class RunSummary:
    """Counts that close a run: files, bytes, elapsed, rates, failures by status."""

    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    stored: int = 0
    failed: int = 0
    not_sent: int = 0
    warnings: int = 0
    bytes: int = 0
    failures: Counter[str] = field(default_factory=Counter)

    def add(self, item: FileOutcome) -> None:
        if item.outcome is Outcome.STORED:
            self.stored += 1
            self.bytes += item.bytes
            if item.status:
                self.warnings += 1
        elif item.outcome is Outcome.FAILED:
            self.failed += 1
            key = describe(item.status) if item.status is not None else item.reason
            self.failures[key] += 1
        else:
            self.not_sent += 1
            self.failures[f"not sent: {item.reason}"] += 1

    def finish(self) -> None:
        self.finished = time.monotonic()

    @property
    def files(self) -> int:
        return self.stored + self.failed + self.not_sent

    @property
    def elapsed_s(self) -> float:
        end = self.finished if self.finished is not None else time.monotonic()
        return max(end - self.started, 1e-9)

    def lines(self) -> list[str]:
        """The summary as printed at the end of a run."""
        secs = self.elapsed_s
        mb = self.bytes / 1e6
        out = [
            f"files: {self.files} (stored {self.stored}"
            + (f", {self.warnings} with warnings" if self.warnings else "")
            + f", failed {self.failed}, not sent {self.not_sent})",
            f"bytes: {self.bytes} ({human_bytes(self.bytes)}) in {secs:.2f} s:"
            f" {self.stored / secs:.1f} files/s, {mb / secs:.1f} MB/s",
        ]
        for key, count in sorted(self.failures.items(), key=lambda kv: -kv[1]):
            # A reason may name a file (halted after ...): kept to one line.
            out.append(f"  {count} × {printable(key)}")
        return out
