"""Reading a job's inputs in a forked child (dispatch.jobs.reader)."""

from __future__ import annotations

import itertools
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from dispatch.errors import ScanFailed
from dispatch.jobs.reader import BATCH_ITEMS, ChildReader
from dispatch.jobs.scan import read_files
from dispatch.outcome import FileOutcome, Outcome
from dispatch.settings import ReadMode
from tests.support.dicom_files import make_study


def test_child_yields_what_reading_in_process_yields_in_the_same_order(tmp_path: Path) -> None:
    study = make_study(tmp_path / "s", images=BATCH_ITEMS + 5)
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"not DICOM")
    known = FileOutcome(str(tmp_path / "gone"), Outcome.NOT_SENT, reason="cannot access file")
    inputs: list[str | FileOutcome] = [str(study.files[0]), str(bad), known]
    inputs += [str(p) for p in study.files]  # the first file a second time: read once

    with ChildReader(lambda: inputs, ReadMode.FILE) as reader:
        got = list(reader)

    assert got == list(read_files(inputs, ReadMode.FILE))
    assert len(got) == 3 + len(study.files) - 1
    assert reader.pid is None  # reaped


def test_a_child_killed_mid_scan_is_an_error_not_the_end_of_the_inputs(tmp_path: Path) -> None:
    study = make_study(tmp_path / "s", images=3)

    def inputs() -> Iterator[str]:
        yield from map(str, study.files)
        os.kill(os.getpid(), signal.SIGKILL)  # runs in the child

    with (
        ChildReader(inputs, ReadMode.FILE) as reader,
        pytest.raises(ScanFailed, match="killed by signal 9"),
    ):
        list(reader)


def test_an_error_in_the_child_is_reported_with_its_reason() -> None:
    def inputs() -> Iterator[str]:
        raise PermissionError("listing refused")
        yield ""  # pragma: no cover

    with (
        ChildReader(inputs, ReadMode.FILE) as reader,
        pytest.raises(ScanFailed, match="PermissionError: listing refused"),
    ):
        list(reader)


def test_close_stops_a_child_still_reading(tmp_path: Path) -> None:
    endless = (str(tmp_path / f"missing{n}") for n in itertools.count())
    reader = ChildReader(lambda: endless, ReadMode.FILE)
    first = next(iter(reader))
    assert isinstance(first, FileOutcome) and first.reason == "cannot access file"
    pid = reader.pid
    assert pid is not None
    reader.close()
    assert reader.pid is None
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped: no such child any more
