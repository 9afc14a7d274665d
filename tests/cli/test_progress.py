"""The progress line and the summary of a job."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

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


def test_failed_and_not_sent_are_counted_apart_as_in_the_summary() -> None:
    p = _progress(failed=2, not_sent=3, stored=5, state=JobState.COMPLETED_WITH_FAILURES)
    line = progress_line(p)
    assert line.startswith("completed with failures: 10/10 files,")
    assert line.endswith("2 failed, 3 not sent")
    assert summary_lines(p)[1] == "files: 10 (stored 5, failed 2, not sent 3)"


def test_no_rate_for_a_job_that_stored_nothing() -> None:
    p = _progress(stored=0, failed=0, not_sent=4, bytes_stored=0, finished=time.time())
    assert "/s" not in progress_line(p)
    assert "/s" not in " ".join(summary_lines(p))
    assert "ETA" not in progress_line(p)  # finished


def test_retries_are_counted_in_words() -> None:
    assert progress_line(_progress(retries=1)).endswith(", 1 retry")
    assert progress_line(_progress(retries=3)).endswith(", 3 retries")


def test_send_and_submit_share_one_line() -> None:
    from dispatch.cli.progress import Progress
    from dispatch.outcome import FileOutcome, Outcome, RunSummary

    summary = RunSummary(started=time.monotonic() - 2)
    for outcome in (
        FileOutcome("a", Outcome.STORED, status=0, bytes=4_000),
        FileOutcome("b", Outcome.STORED, status=0, bytes=4_000),
        FileOutcome("c", Outcome.FAILED, status=0xC000),
        FileOutcome("d", Outcome.NOT_SENT, reason="bad"),
    ):
        summary.add(outcome)
    sent = progress_line(Progress.of_run(summary, 10, in_flight=1_500_000))
    job = progress_line(_progress(stored=2, failed=1, not_sent=1, bytes_stored=1_508_000))
    # The same words in the same order; a send run knows no total of bytes.
    assert sent.startswith("sending: 4/10 files, 1.51 MB, ")
    assert job.startswith("running: 4/10 files, 1.51 MB/20 kB, ")
    for line in (sent, job):
        assert " files/s, " in line and " MB/s, ETA " in line
        assert line.endswith(", 1 failed, 1 not sent")


def test_chunk_bytes_are_data_set_bytes_as_stored_outcomes_count_them(tmp_path: Path) -> None:
    from dispatch.dicomfile import read_info
    from dispatch.jobs.model import Chunk, FileRef
    from tests.support.dicom_files import make_file

    path = make_file(tmp_path / "a.dcm")
    info = read_info(str(path))
    size = path.stat().st_size
    ref = FileRef(str(path), size, path.stat().st_mtime_ns, info=info)
    assert Chunk("c1", "1.2", (ref,)).bytes == info.dataset_length < size
    assert Chunk("c2", "1.2", (FileRef(str(path), size, 0),)).bytes == size  # not read


def test_send_shows_the_bytes_of_a_file_in_flight(capsys: pytest.CaptureFixture[str]) -> None:
    from dispatch.cli.send import Recorder

    recorder = Recorder(None, total=3, progress=True)
    recorder.in_flight(2_000_000)
    recorder.close()
    shown = capsys.readouterr().err
    assert "\rsending: 0/3 files, 2 MB, ETA --:--, 0 failed, 0 not sent" in shown
    assert shown.endswith("\r\033[K")  # the line is gone before the summary
