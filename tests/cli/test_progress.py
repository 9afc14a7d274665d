"""The progress line and the summary of a job."""

from __future__ import annotations

import time

from dispatch.cli.progress import progress_line, summary_lines
from dispatch.jobs.model import JobState
from dispatch.jobs.store import JobProgress


def _progress(**changes: object) -> JobProgress:
    now = time.time()
    values: dict[str, object] = {
        "job_id": "j1",
        "name": "study",
        "destination": "ANY-SCP@127.0.0.1:104",
        "state": JobState.RUNNING,
        "total_files": 10,
        "total_bytes": 20_000,
        "chunks": 2,
        "chunks_done": 1,
        "stored": 4,
        "failed": 1,
        "bytes_stored": 8_000,
        "failures": {"0xC000 (Error: cannot understand)": 1},
        "started": now - 2,
        "updated": now,
    }
    values.update(changes)
    return JobProgress(**values)  # type: ignore[arg-type]


def test_progress_line_counts_rate_eta_and_failures() -> None:
    line = progress_line(_progress())
    assert line.startswith("running: 5/10 files, 8 kB/20 kB,")
    assert "files/s" in line and "MB/s" in line
    assert "ETA 0:0" in line and "1 failed" in line
    assert "scanning" not in line


def test_progress_line_while_the_submission_still_scans() -> None:
    line = progress_line(_progress(open=True))
    assert "5/10+ (scanning) files" in line
    assert "ETA --:-- (scanning)" in line


def test_summary_names_the_state_counts_and_failures() -> None:
    lines = summary_lines(
        _progress(
            state=JobState.HALTED,
            finished=time.time(),
            halted_path="/a/b.dcm",
            halt_reason="0xC000 (Error: cannot understand)",
        )
    )
    assert lines[0] == "job j1 (study) to ANY-SCP@127.0.0.1:104: halted"
    assert lines[1] == "files: 10 (stored 4, failed 1, not sent 0)"
    assert "halted at /a/b.dcm: 0xC000 (Error: cannot understand)" in lines
    assert "  1 × 0xC000 (Error: cannot understand)" in lines
