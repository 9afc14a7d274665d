"""The one progress line of ``dispatch send``, ``dispatch submit --wait`` and
``dispatch watch``/``status``, its live display, and the summary that closes a job.

Every view of a run shows the same counters in the same words (:func:`progress_line`)::

    running: 120/200 files, 18.3 MB/25.3 MB, 40 files/s, 6.10 MB/s, ETA 0:02, 1 failed, 2 not sent

Bytes are data-set bytes (what the peer receives, without the file meta header): those
of the stored files and of the file in flight, against those of every file when the
total is known (a job; ``dispatch send`` reads its files as it goes, and shows no
total). Rates are of stored files over the time elapsed, and not shown before one was
stored; failed and not sent are counted apart, as the summary counts them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TextIO

from dispatch.jobs.store import JobProgress
from dispatch.logtext import counted, printable
from dispatch.outcome import RunSummary, human_bytes


@dataclass(frozen=True)
class Progress:
    """What one progress line shows, from a job's snapshot (:meth:`of_job`) or a
    ``dispatch send`` run (:meth:`of_run`)."""

    state: str
    total_files: int
    stored: int
    failed: int
    not_sent: int
    bytes_done: int
    """Data-set bytes of the stored files, and of the file in flight so far."""
    total_bytes: int | None
    """Data-set bytes of every file; None when not known."""
    elapsed_s: float
    scanning: bool = False
    """The inputs are still being scanned: the totals are those found so far."""
    finished: bool = False
    retries: int = 0

    @property
    def done(self) -> int:
        return self.stored + self.failed + self.not_sent

    @classmethod
    def of_job(cls, p: JobProgress, in_flight: int = 0) -> Progress:
        """A job's snapshot; ``in_flight``: bytes of files being sent, not yet stored."""
        return cls(
            state=p.state.value,
            total_files=p.total_files,
            stored=p.stored,
            failed=p.failed,
            not_sent=p.not_sent,
            bytes_done=p.bytes_stored + in_flight,
            total_bytes=p.total_bytes,
            elapsed_s=p.elapsed_s,
            scanning=p.open and not p.is_finished,
            finished=p.is_finished,
            retries=p.retries,
        )

    @classmethod
    def of_run(cls, s: RunSummary, total_files: int, in_flight: int = 0) -> Progress:
        """A ``dispatch send`` run so far: ``in_flight`` bytes of the file being sent."""
        return cls(
            state="finished" if s.finished is not None else "sending",
            total_files=total_files,
            stored=s.stored,
            failed=s.failed,
            not_sent=s.not_sent,
            bytes_done=s.bytes + in_flight,
            total_bytes=None,
            elapsed_s=s.elapsed_s,
            finished=s.finished is not None,
        )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def progress_line(p: Progress | JobProgress) -> str:
    """The one progress line (see the module). While a submission still scans, the
    totals are those found so far and no ETA is given."""
    committed = ""
    if isinstance(p, JobProgress):
        if p.commit:
            # Stored files wait for their commitment before the job ends: say so.
            committed = f", committed {p.committed}/{p.stored}"
            if p.commit_failed or p.commit_pending:
                committed += f" ({p.commit_failed} failed, {p.commit_pending} pending)"
        p = Progress.of_job(p, p.bytes_in_flight)
    found = "+ (scanning)" if p.scanning else ""
    parts = [f"{p.state}: {p.done}/{p.total_files}{found} files"]
    total = "" if p.total_bytes is None else f"/{human_bytes(p.total_bytes)}"
    parts.append(f"{human_bytes(p.bytes_done)}{total}")
    secs = p.elapsed_s
    if p.stored and secs > 0:
        parts.append(f"{p.stored / secs:.0f} files/s, {p.bytes_done / 1e6 / secs:.2f} MB/s")
    if not p.finished:
        if p.scanning:
            eta = "--:-- (scanning)"
        else:
            rate = p.done / secs if secs > 0 else 0.0
            eta = _duration(max(p.total_files - p.done, 0) / rate if rate > 0 else None)
        parts.append(f"ETA {eta}")
    parts.append(f"{p.failed} failed, {p.not_sent} not sent")
    if p.retries:
        parts.append(counted(p.retries, "retry", "retries"))
    return ", ".join(parts) + committed


def summary_lines(p: JobProgress) -> list[str]:
    """The summary that closes a job: state, counts, bytes, rates, failures by status.
    Its counts and rates are those of :func:`progress_line`."""
    secs = p.elapsed_s
    rate = ""
    if p.stored and secs > 0:
        rate = f": {p.stored / secs:.1f} files/s, {p.bytes_stored / 1e6 / secs:.1f} MB/s"
    lines = [
        f"job {p.job_id} ({printable(p.name)}) to {p.destination}: {p.state.value}",
        f"files: {p.total_files} (stored {p.stored}, failed {p.failed}, not sent {p.not_sent})",
        f"bytes: {p.bytes_stored} ({human_bytes(p.bytes_stored)}) in {secs:.2f} s{rate}",
    ]
    if p.retries:
        lines.append(f"retries: {p.retries}")
    if p.halted_path:
        lines.append(f"halted at {printable(p.halted_path)}: {printable(p.halt_reason)}")
    if p.interrupted:
        lines.append(f"{p.interrupted}: inputs not scanned by then are not part of the job")
    for key, count in sorted(p.failures.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {count} × {printable(key)}")
    if p.commit:
        lines.append(
            f"commitment: {p.committed} committed, {p.commit_failed} failed,"
            f" {p.commit_pending} pending"
        )
    return lines


class ProgressDisplay:
    """Shows progress lines: rewritten in place on a terminal, one line every
    ``interval_s`` otherwise (logs and pipes get a readable history). Takes job
    snapshots (:class:`JobProgress`) or ready :class:`Progress` values."""

    def __init__(self, stream: TextIO, interactive: bool, interval_s: float = 5.0) -> None:
        self._stream = stream
        self._interactive = interactive
        self._interval_s = 0.2 if interactive else interval_s
        self._shown = 0.0
        self._width = 0
        self._lock = threading.Lock()

    def due(self) -> bool:
        """Whether a new snapshot would be shown now (snapshots cost a store query)."""
        return time.monotonic() - self._shown >= self._interval_s

    def __call__(self, snapshot: JobProgress | Progress) -> None:
        finished = snapshot.is_finished if isinstance(snapshot, JobProgress) else snapshot.finished
        with self._lock:
            if not self.due() and not finished:
                return
            self._shown = time.monotonic()
            self._show(progress_line(snapshot))

    def _show(self, line: str) -> None:
        if self._interactive:
            pad = max(self._width - len(line), 0)
            self._stream.write("\r" + line + " " * pad)
            self._width = len(line)
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def close(self, clear: bool = False) -> None:
        """End the display: on a terminal, move past its line (``clear``: erase it)."""
        if self._interactive and self._width:
            self._stream.write("\r\033[K" if clear else "\n")
            self._stream.flush()
            self._width = 0
