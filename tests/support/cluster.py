"""The distributed sender's test cluster: real redis-server, real Celery worker processes.

Its fixtures are registered once for the whole suite by ``tests/conftest.py``, so
every test module shares one Redis and one pair of workers.

- ``redis_url``: a session-scoped redis-server (the broker and the job records).
- ``worker_factory``: ``worker_factory(name, queue="dispatch")`` starts
  ``celery -A workers worker`` (prefork, one process) in a session of its own and
  returns once it is ready; every worker it started is stopped at teardown. Keywords
  ``app`` (another Celery app module) and ``cwd`` (its working directory) go to
  :class:`Worker`.
- ``workers``: two such workers shared by the whole session.
- ``job_store``: a RedisJobStore on ``redis_url``.
- ``run_cli(*args)``: ``dispatch *args`` in this process, its output captured.

Workers get short leases and backoff (through the environment, as in production) so
that recovery and retries happen within seconds.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dispatch.jobs.redis_store import RedisJobStore
from tests.jobs.support import RedisServer

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 30.0

#: Settings of the test workers (seconds).
WORKER_ENV = {
    "DISPATCH_LEASE_S": "3",
    "DISPATCH_REAPER_INTERVAL_S": "0.5",
    "DISPATCH_RETRY_BASE_S": "0.3",
    "DISPATCH_RETRY_CAP_S": "1.0",
    "DISPATCH_SLOT_POLL_CAP_S": "0.2",
}


class Worker:
    """One ``celery -A workers worker`` process group."""

    def __init__(
        self,
        name: str,
        broker_url: str,
        logdir: Path,
        queue: str = "dispatch",
        *,
        app: str = "workers",
        cwd: Path = REPO,
    ) -> None:
        self.name = f"{name}@test"
        self.log_path = logdir / f"worker-{name}.log"
        env = {**os.environ, **WORKER_ENV, "DISPATCH_BROKER_URL": broker_url}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env.pop("DISPATCH_CONFIG", None)
        cmd = [sys.executable, "-m", "celery", "-A", app, "worker", "--pool", "prefork"]
        cmd += ["-c", "1", "-Q", queue, "-n", self.name, "-l", "info"]
        cmd += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                cmd,
                cwd=cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, store: RedisJobStore) -> None:
        # The worker's reaper announces it in Redis once Celery says it is ready.
        key = f"dispatch:worker:{self.name}"
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not store.client.exists(key):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {self.name} did not start:\n{self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def owns(self, pid: int) -> bool:
        """True when process ``pid`` belongs to this worker (its group)."""
        try:
            return os.getpgid(pid) == self.process.pid
        except ProcessLookupError:
            return False

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool), as a host crash would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()


@pytest.fixture(scope="session")
def _redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(Path(tmp_path_factory.mktemp("redis-workers"))).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(_redis: RedisServer) -> str:
    return _redis.url(0)


@pytest.fixture(scope="session")
def job_store(redis_url: str) -> RedisJobStore:
    return RedisJobStore.from_url(redis_url)


WorkerFactory = Callable[..., Worker]


def _factory(
    redis_url: str, store: RedisJobStore, logdir: Path
) -> tuple[WorkerFactory, list[Worker]]:
    started: list[Worker] = []

    def start(name: str, queue: str = "dispatch", **options: Any) -> Worker:
        worker = Worker(name, redis_url, logdir, queue, **options)
        started.append(worker)
        worker.wait_ready(store)
        return worker

    return start, started


@pytest.fixture
def worker_factory(
    redis_url: str, job_store: RedisJobStore, tmp_path: Path
) -> Iterator[WorkerFactory]:
    start, started = _factory(redis_url, job_store, tmp_path)
    yield start
    for worker in started:
        worker.stop()


@pytest.fixture(scope="session")
def workers(
    redis_url: str, job_store: RedisJobStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Worker]]:
    """Two workers for the whole session."""
    start, started = _factory(redis_url, job_store, Path(tmp_path_factory.mktemp("workers")))
    pair = [start("w1"), start("w2")]
    yield pair
    for worker in started:
        worker.stop()


# -- the dispatch command line in this process (tests of `dispatch submit` and the job
# commands) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CliRun:
    """One ``dispatch`` run in this process: its exit code and captured output."""

    code: int
    stdout: str
    stderr: str


def run_cli(*args: str | Path | int) -> CliRun:
    """Run ``dispatch *args`` through :func:`dispatch.cli.main.main` in this process,
    standard output and error captured; fail the test on a traceback."""
    from dispatch.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    run = CliRun(code, out.getvalue(), err.getvalue())
    assert "Traceback" not in run.stderr, run.stderr
    return run
