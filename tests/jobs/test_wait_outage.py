"""Following a job while its Redis goes away: the wait outlasts the outage (one line when
Redis goes, one when it is back), and a job whose records vanished (Redis restarted
without persistence) is reported lost with the last counts seen, never as unknown."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dispatch.errors import JobLost
from dispatch.jobs.backends.redis import RedisJobStore
from dispatch.jobs.enqueue import wait_for_job
from dispatch.jobs.store import JobProgress
from dispatch.outcome import FileOutcome, Outcome
from tests.cli.conftest import dispatch_program
from tests.jobs.support import chunks_of, make_spec
from tests.support.dicom_files import make_study
from tests.support.netns import wait_until
from tests.support.own_redis import OwnRedis

WAIT_S = 30.0


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path / "redis")
    yield server
    server.stop()


def _job(store: RedisJobStore, tmp_path: Path, job_id: str, images: int) -> list[str]:
    """A job of ``images`` files in one chunk; returns its paths."""
    study = make_study(tmp_path / "study", images=images)
    chunks = chunks_of(study.files, 10)
    store.create_job(make_spec("127.0.0.1", 1, job_id=job_id), chunks)
    return [str(p) for p in study.files]


class Waiter(threading.Thread):
    """``wait_for_job`` on a thread: its result, or what it raised."""

    def __init__(self, store: RedisJobStore, job_id: str) -> None:
        super().__init__(daemon=True)
        self.store = store
        self.job_id = job_id
        self.seen = threading.Event()
        self.final: JobProgress | None = None
        self.error: Exception | None = None

    def run(self) -> None:
        def on_progress(_snapshot: JobProgress) -> None:
            self.seen.set()

        try:
            self.final = wait_for_job(self.store, self.job_id, on_progress, timeout_s=WAIT_S)
        except Exception as exc:  # handed to the test
            self.error = exc


def test_the_wait_outlasts_a_redis_restart(
    own_redis: OwnRedis, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="dispatch.jobs")
    store = RedisJobStore.from_url(own_redis.start(appendonly=True).url())
    _job(store, tmp_path, "blink1", images=2)
    waiter = Waiter(store, "blink1")
    waiter.start()
    assert waiter.seen.wait(WAIT_S)
    own_redis.stop()
    wait_until(lambda: "is away since" in caplog.text, "the outage to be noticed", WAIT_S)
    own_redis.start(appendonly=True)
    (chunk_id,) = store.client.hkeys("dispatch:job:blink1:chunks")  # kept by the AOF
    assert store.finish_chunk("blink1", chunk_id)
    waiter.join(WAIT_S)
    assert waiter.error is None and waiter.final is not None, waiter.error
    assert waiter.final.is_finished
    away = [r.getMessage() for r in caplog.records if "Redis at" in r.getMessage()]
    address = f"127.0.0.1:{own_redis.port}"
    assert len(away) == 2, away
    assert away[0].startswith(f"Redis at {address} is away since ")
    assert away[0].endswith("; waiting for it")
    assert away[1].startswith(f"Redis at {address} is back after ")


def test_a_job_whose_records_vanished_is_lost_with_the_last_counts(
    own_redis: OwnRedis, tmp_path: Path
) -> None:
    store = RedisJobStore.from_url(own_redis.start(appendonly=False).url())
    paths = _job(store, tmp_path, "gone1", images=3)
    store.record("gone1", FileOutcome(paths[0], Outcome.STORED, status=0))
    waiter = Waiter(store, "gone1")
    waiter.start()
    assert waiter.seen.wait(WAIT_S)
    own_redis.stop()
    own_redis.start(appendonly=False)
    waiter.join(WAIT_S)
    assert isinstance(waiter.error, JobLost), waiter.error
    assert (waiter.error.stored, waiter.error.failed, waiter.error.not_sent) == (1, 0, 2)
    assert "job gone1 lost" in str(waiter.error)
    assert "last seen: 1 stored, 0 failed, 2 not sent of 3 files" in str(waiter.error)


def _interruptible() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _watch(url: str, job_id: str, tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    """``dispatch watch`` in a process of its own; returns once it has shown the job."""
    err = tmp_path / "watch.err"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_")}
    with err.open("w") as stream:
        process = subprocess.Popen(
            [*dispatch_program(), "watch", job_id, "--broker", url],
            stdout=subprocess.DEVNULL,
            stderr=stream,
            env=env,
            text=True,
            # A shell's background job inherits SIGINT ignored; Ctrl-C at a terminal is not.
            preexec_fn=_interruptible,
        )
    wait_until(lambda: "queued" in err.read_text(), "the watch to show the job", WAIT_S)
    return process, err


def test_dispatch_watch_reports_a_lost_job_and_exits_1(own_redis: OwnRedis, tmp_path: Path) -> None:
    store = RedisJobStore.from_url(own_redis.start(appendonly=False).url())
    _job(store, tmp_path, "gone2", images=2)
    process, err = _watch(own_redis.url(), "gone2", tmp_path)
    try:
        own_redis.stop()
        own_redis.start(appendonly=False)
        code = process.wait(WAIT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = err.read_text()
    assert code == 1, text
    assert "job gone2 lost" in text and "0 stored, 0 failed, 2 not sent of 2 files" in text
    assert "unknown" not in text and "Traceback" not in text


def test_ctrl_c_stops_watching_and_says_how_to_follow_the_job(
    own_redis: OwnRedis, tmp_path: Path
) -> None:
    store = RedisJobStore.from_url(own_redis.start(appendonly=False).url())
    _job(store, tmp_path, "goes1", images=1)
    process, err = _watch(own_redis.url(), "goes1", tmp_path)
    process.send_signal(signal.SIGINT)
    code = process.wait(WAIT_S)
    text = err.read_text()
    assert code == 130, text
    assert "job goes1 goes on" in text and "dispatch watch goes1" in text, text
    assert "dispatch cancel goes1" in text and "Traceback" not in text
