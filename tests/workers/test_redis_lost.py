"""Redis restarted without persistence while ``dispatch submit --wait`` follows its job:
the submit reports the job lost with the last counts it saw (exit 1), never as an
unknown job; the worker that was sending it stops with one line, no traceback."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dispatch.jobs.backends.redis import RedisJobStore
from tests.cli.conftest import dispatch_program
from tests.support.cluster import Worker
from tests.support.dicom_files import make_study
from tests.support.own_redis import OwnRedis
from tests.support.scp import StorageScp

QUEUE = "lost"
TIMEOUT_S = 30.0


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path / "redis").start(appendonly=False)
    yield server
    server.stop()


def _read_until(fd: int, text: str, seen: bytearray) -> None:
    """Read the terminal ``fd`` into ``seen`` until ``text`` shows (or fail)."""
    deadline = time.monotonic() + TIMEOUT_S
    while text.encode() not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {text!r} within {TIMEOUT_S} s: {seen.decode(errors='replace')}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            seen += os.read(fd, 4096)


def test_submit_reports_a_job_lost_with_redis_restarted_empty(
    scp: StorageScp, own_redis: OwnRedis, tmp_path: Path
) -> None:
    worker = Worker("lost1", own_redis.url(), tmp_path, QUEUE)
    master, terminal = pty.openpty()
    submit: subprocess.Popen[str] | None = None
    try:
        worker.wait_ready(RedisJobStore.from_url(own_redis.url()))
        study = make_study(tmp_path / "s", images=6)
        scp.stall_on_store(3)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_")}
        env["DISPATCH_QUEUE"] = QUEUE
        command = [*dispatch_program(), "submit", "--broker", own_redis.url(), "--wait"]
        command += [scp.host, str(scp.port), *map(str, study.files)]
        # The progress goes to a terminal: shown every 0.2 s, so the test sees what the
        # submit saw.
        submit = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=terminal, env=env, text=True
        )
        seen = bytearray()
        _read_until(master, "2/6 files", seen)
        assert submit.stdout is not None
        job_id = submit.stdout.readline().strip()
        own_redis.stop()
        own_redis.start(appendonly=False)
        scp.release_stall()
        code = submit.wait(TIMEOUT_S)
        _read_until(master, "lost", seen)
        _read_until(master, "files\r\n", seen)
    finally:
        scp.release_stall()
        if submit is not None:
            if submit.poll() is None:
                submit.kill()
                submit.wait()
            if submit.stdout is not None:
                submit.stdout.close()
        os.close(master)
        os.close(terminal)
        worker.stop()
    text = seen.decode(errors="replace")
    assert code == 1, text
    assert f"job {job_id} lost" in text
    assert "last seen: 2 stored, 0 failed, 4 not sent of 6 files" in text
    assert "is away since" in text and "unknown" not in text and "Traceback" not in text
    log = worker.log()
    assert f"job {job_id} chunk" in log and "vanished" in log, log
    assert "Traceback" not in log, log
