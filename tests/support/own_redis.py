"""A redis-server of a test's own, stopped and started again by the test on the same
port: with an append-only file (a restart keeps everything) or without persistence (a
restart loses everything)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from tests.support.netns import wait_until
from tests.support.programs import require_program
from tests.support.storescp import free_port


class OwnRedis:
    """A redis-server of the test's own on a port that stays the same across restarts,
    with an append-only file or without persistence."""

    def __init__(self, workdir: Path) -> None:
        self.program = require_program("redis-server")
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *, appendonly: bool) -> OwnRedis:
        import redis

        self.workdir.mkdir(parents=True, exist_ok=True)
        cmd = [str(self.program), "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        cmd += ["--appendonly", "yes" if appendonly else "no", "--dir", str(self.workdir)]
        with (self.workdir / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        client = redis.Redis.from_url(self.url())

        def answers() -> bool:
            assert self.process is not None and self.process.poll() is None, "redis-server ended"
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_until(answers, "redis-server to answer", 10.0, poll_s=0.02)
        client.close()
        return self

    def stop(self) -> None:
        """SIGTERM (it writes its append-only file, if it has one, and exits)."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(10)
