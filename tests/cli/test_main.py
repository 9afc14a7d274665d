"""The ``dispatch`` command in scripts and pipes: a reader that stops early, and broker
URLs that are not Redis."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dispatch.jobs.backends.redis import RedisJobStore
from dispatch.outcome import FileOutcome, Outcome
from tests.cli.conftest import dispatch_program
from tests.jobs.support import chunks_of, make_spec
from tests.support.cluster import run_cli
from tests.support.dicom_files import make_study


def _piped_into_true(*args: str) -> subprocess.CompletedProcess[str]:
    """``dispatch ARGS | true``: the reader exits without reading a byte."""
    command = " ".join([*dispatch_program(), *args]) + ' | true; exit "${PIPESTATUS[0]}"'
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60)


def test_help_into_a_reader_that_stops_is_no_traceback() -> None:
    run = _piped_into_true("send", "--help")
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr and "BrokenPipe" not in run.stderr


def test_a_report_into_a_reader_that_stops_is_no_traceback(
    redis_url: str, job_store: RedisJobStore, tmp_path: Path
) -> None:
    study = make_study(tmp_path / "s", images=200)
    spec = make_spec("127.0.0.1", 104, job_id="piped")
    job_store.create_job(spec, chunks_of(study.files, 50))
    job_store.record_many("piped", [FileOutcome(str(p), Outcome.NOT_SENT, reason="x" * 200)
                                    for p in study.files])  # fmt: skip
    run = _piped_into_true("report", "piped", "--broker", redis_url)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr and "BrokenPipe" not in run.stderr


@pytest.mark.parametrize("url", ["http://archive.example/", "amqp://guest:secret@mq//"])
def test_a_broker_url_that_is_not_redis_is_one_line_naming_the_schemes(url: str) -> None:
    run = run_cli("status", "anyjob", "--broker", url)
    assert run.code == 1
    (line,) = run.stderr.strip().splitlines()
    assert "redis://, rediss:// or unix://" in line
    assert "secret" not in line
