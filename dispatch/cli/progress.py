"""The live progress display of a job (``dispatch submit --wait``, ``dispatch watch``)
and the closing summary."""

from __future__ import annotations

import threading
import time
from typing import TextIO

from dispatch.jobs.store import JobProgress
from dispatch.outcome import human_bytes


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def progress_line(p: JobProgress) -> str:
    """One line: files and bytes done of total, rate, ETA, failures so far. While the
    submission is still scanning, the totals are those found so far and no ETA is given."""
    problems = p.failed + p.not_sent
    scanning = p.open and not p.is_finished
    found = "+ (scanning)" if scanning else ""
    eta = "--:-- (scanning)" if scanning else _duration(p.eta_s)
    return (
        f"{p.state.value}: {p.done}/{p.total_files}{found} files,"
        f" {human_bytes(p.bytes_stored)}/{human_bytes(p.total_bytes)},"
        f" {p.files_per_s:.0f} files/s, {p.bytes_per_s / 1e6:.1f} MB/s,"
        f" ETA {eta}, {problems} failed" + (f", {p.retries} retries" if p.retries else "")
    )


def summary_lines(p: JobProgress) -> list[str]:
    """The summary that closes a job: state, counts, bytes, rates, failures by status."""
    secs = max(p.elapsed_s, 1e-9)
    lines = [
        f"job {p.job_id} ({p.name}) to {p.destination}: {p.state.value}",
        f"files: {p.total_files} (stored {p.stored}, failed {p.failed}, not sent {p.not_sent})",
        f"bytes: {p.bytes_stored} ({human_bytes(p.bytes_stored)}) in {p.elapsed_s:.2f} s:"
        f" {p.stored / secs:.1f} files/s, {p.bytes_stored / 1e6 / secs:.1f} MB/s",
    ]
    if p.retries:
        lines.append(f"retries: {p.retries}")
    if p.halted_path:
        lines.append(f"halted at {p.halted_path}: {p.halt_reason}")
    if p.interrupted:
        lines.append(f"{p.interrupted}: inputs not scanned by then are not part of the job")
    for key, count in sorted(p.failures.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {count} × {key}")
    return lines


class ProgressDisplay:
    """Shows job snapshots: rewritten in place on a terminal, one line every
    ``interval_s`` otherwise (logs and pipes get a readable history)."""

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

    def __call__(self, snapshot: JobProgress) -> None:
        with self._lock:
            if not self.due() and not snapshot.is_finished:
                return
            self._shown = time.monotonic()
            self._show(snapshot)

    def _show(self, snapshot: JobProgress) -> None:
        line = progress_line(snapshot)
        if self._interactive:
            pad = max(self._width - len(line), 0)
            self._stream.write("\r" + line + " " * pad)
            self._width = len(line)
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._interactive and self._width:
            self._stream.write("\n")
            self._stream.flush()
