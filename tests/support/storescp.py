"""DCMTK's storescp as a test peer: a real receiver in its own process."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from tests.support.processes import end_group

#: How long storescp gets to start listening, and to stop.
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def is_listening(port: int) -> bool:
    """True when some socket listens on TCP `port`.

    Reads the kernel's socket tables where there are some, so that checking does not
    open a connection the peer would log as a failed association; elsewhere it
    connects to 127.0.0.1.
    """
    tables = [Path("/proc/net/tcp"), Path("/proc/net/tcp6")]
    if not any(table.exists() for table in tables):
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return True
        return False
    wanted = f":{port:04X}"
    for table in tables:
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            # fields[1] is local "ADDR:PORT" in hex, fields[3] the state; 0A is LISTEN.
            if fields[1].endswith(wanted) and fields[3] == "0A":
                return True
    return False


class Storescp:
    """One storescp process on a free port, started by :meth:`start`.

    Files arrive in :attr:`output_dir` (passed as ``-od`` unless the options name an
    output directory themselves); everything storescp prints goes to :attr:`log_path`.
    The process runs in a session of its own so that :meth:`stop` also ends the
    children of ``--fork``.
    """

    def __init__(self, program: Path, options: Sequence[str], workdir: Path) -> None:
        self.program = program
        self.options = list(options)
        self.workdir = workdir
        self.output_dir = workdir / "received"
        self.log_path = workdir / "storescp.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        """The command line for the current port."""
        options = list(self.options)
        if not {"-od", "--output-directory"} & set(options):
            options = ["-od", str(self.output_dir), *options]
        return [str(self.program), *options, str(self.port)]

    def start(self) -> None:
        """Start storescp and return once it listens; raise RuntimeError if it won't."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "TCP_NODELAY": "1"}
        for _attempt in range(3):
            self.port = free_port()
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    self.command(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
            deadline = time.monotonic() + START_TIMEOUT_S
            while self.process.poll() is None and time.monotonic() < deadline:
                if is_listening(self.port):
                    return
                # Nothing signals that storescp is ready: poll, briefly and bounded.
                time.sleep(0.02)
            if self.process.poll() is None:
                self.stop()
                raise RuntimeError(f"storescp did not listen within {START_TIMEOUT_S} s")
            # It exited: most likely someone took the port in the meantime; try another.
        raise RuntimeError(f"storescp failed to start:\n{self.log()}")

    def log(self) -> str:
        """Everything storescp printed so far."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def files(self) -> list[Path]:
        """The files storescp stored, sorted by name."""
        return sorted(p for p in self.output_dir.rglob("*") if p.is_file())

    def stop(self) -> None:
        """End storescp (and its forked children); idempotent."""
        process = self.process
        if process is None:
            return
        end_group(process, STOP_TIMEOUT_S)
