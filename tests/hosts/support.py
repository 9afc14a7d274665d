"""The pieces of a multi-host site: Redis, the DICOM peer, workers, a submission.

Each runs in a host of :mod:`tests.support.netns` and is used the way an operator
uses it: ``dispatch worker``, ``dispatch submit``, ``dispatch status`` and ``dispatch
report`` as programs, DCMTK's storescp as the peer.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
import redis

from dispatch.jobs.backends.redis import RedisJobStore
from tests.cli.conftest import dispatch_program
from tests.support.cluster import REPO, WORKER_ENV, Worker
from tests.support.netns import Host, Network, connected, listening, stop_process, wait_until
from tests.support.programs import require_program
from tests.support.storescp import START_TIMEOUT_S, Storescp

REDIS_PORT = 6379
PEER_PORT = 11112
"""Where the peer's host accepts associations (the delay proxy)."""
STORESCP_PORT = 11113
"""Where storescp listens in the peer's host, behind the proxy."""
PEER_RTT_MS = 20.0
"""Round trip added to every connection to the peer: a chunk takes long enough to be
interrupted, and an answer long enough that the runner records what it holds first."""
READY_TIMEOUT_S = 30.0


def _environment(**settings: str) -> dict[str, str]:
    """This process's environment with the short test settings of the workers, and
    ``settings`` as ``DISPATCH_<NAME>`` variables; no settings file."""
    env = {**os.environ, **WORKER_ENV, "TCP_NODELAY": "1"}
    env.pop("DISPATCH_CONFIG", None)
    env.update({f"DISPATCH_{name.upper()}": value for name, value in settings.items()})
    return env


class HostRedis:
    """A redis-server listening on its host's address only."""

    def __init__(
        self, host: Host, workdir: Path, port: int = REDIS_PORT, appendonly: bool = False
    ) -> None:
        self.host = host
        self.port = port
        self.workdir = workdir
        self.appendonly = appendonly
        self.process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host.address}:{self.port}/0"

    def start(self) -> HostRedis:
        """Start it (again, from its append-only file if it has one); return once it
        answers."""
        program = require_program("redis-server")
        self.workdir.mkdir(parents=True, exist_ok=True)
        command: list[str | Path] = [program, "--bind", self.host.address, "--port", str(self.port)]
        # Protected mode refuses every client but loopback ones without a password; this
        # one listens on the private test network only.
        command += ["--protected-mode", "no", "--save", "", "--dir", self.workdir]
        command += ["--appendonly", "yes" if self.appendonly else "no"]
        self.process = self.host.popen(command, log=self.workdir / "redis.log")
        client = redis.Redis.from_url(self.url, socket_timeout=1)

        def answers() -> bool:
            assert self.process is not None and self.process.poll() is None, self.log()
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_until(answers, "redis-server to answer", START_TIMEOUT_S, poll_s=0.02)
        client.close()
        return self

    def stop(self) -> None:
        """SIGTERM: redis-server writes its append-only file and exits."""
        if self.process is not None:
            stop_process(self.process)

    def log(self) -> str:
        return (self.workdir / "redis.log").read_text(errors="replace")


class HostStorescp(Storescp):
    """storescp in a host, on a fixed port (each host has its own ports)."""

    def __init__(self, host: Host, options: Sequence[str], workdir: Path, port: int) -> None:
        super().__init__(require_program("storescp"), options, workdir)
        self.host = host
        self.port = port

    def start(self) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.process = self.host.popen(
            self.command(), env={**os.environ, "TCP_NODELAY": "1"}, log=self.log_path
        )
        process = self.process
        assert process is not None

        def ready() -> bool:
            assert process.poll() is None, f"storescp ended:\n{self.log()}"
            return listening(process.pid, self.port)

        wait_until(ready, "storescp to listen", START_TIMEOUT_S, poll_s=0.02)


class Peer:
    """The DICOM peer's host: storescp (``--fork``, every file under a name of its own,
    so that a file received twice is stored twice) behind a
    :mod:`~tests.support.delay_proxy` on the host's address, port :data:`PEER_PORT`.

    storescp cannot be given an address: it listens on every address of the peer's
    host (its loopback, where the proxy reaches it, and its own), none elsewhere."""

    def __init__(self, host: Host, workdir: Path, rtt_ms: float = PEER_RTT_MS) -> None:
        self.host = host
        self.workdir = workdir
        self.rtt_ms = rtt_ms
        self.storescp = HostStorescp(host, ["--fork", "+uf"], workdir, STORESCP_PORT)
        self.proxy: subprocess.Popen[str] | None = None

    @property
    def arguments(self) -> list[str]:
        """The ``peer port`` arguments of ``dispatch submit``."""
        return [self.host.address, str(PEER_PORT)]

    def start(self) -> Peer:
        self.storescp.start()
        command = [sys.executable, "-m", "tests.support.delay_proxy"]
        command += ["--listen", f"{self.host.address}:{PEER_PORT}"]
        command += ["--target", f"127.0.0.1:{STORESCP_PORT}", "--rtt-ms", str(self.rtt_ms)]
        self.proxy = self.host.popen(
            command,
            cwd=REPO,
            stdout=subprocess.PIPE,
            log=self.workdir / "proxy.log",
        )
        line = _read_line(self.proxy, START_TIMEOUT_S)
        assert line.startswith("listening"), f"delay proxy: {line!r}"
        return self

    def stop(self) -> None:
        if self.proxy is not None:
            stop_process(self.proxy)
        self.storescp.stop()

    def received(self) -> Counter[str]:
        """How often each SOP instance was stored."""
        counts: Counter[str] = Counter()
        for path in self.storescp.files():
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
            counts[str(ds.SOPInstanceUID)] += 1
        return counts


def _read_line(process: subprocess.Popen[str], timeout_s: float) -> str:
    """The next line ``process`` writes on its standard output ("" at its end)."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout_s)
    assert ready, f"no output within {timeout_s} s"
    return process.stdout.readline()


class HostWorker(Worker):
    """``dispatch worker`` (one process) in a host, started in ``cwd``."""

    def __init__(
        self, host: Host, name: str, broker_url: str, queue: str, logdir: Path, cwd: Path
    ) -> None:
        # Worker's own constructor starts a process in this one's namespace: not called.
        self.host = host
        self.name = f"{name}@{host.name}"
        self.log_path = logdir / f"worker-{name}.log"
        command = [*dispatch_program(), "worker", "--broker", broker_url, "--queues", queue]
        command += ["--concurrency", "1", "--hostname", self.name, "--loglevel", "info"]
        self.process = host.popen(command, cwd=cwd, env=_environment(), log=self.log_path)

    def connected_to(self, peer: Peer) -> bool:
        """True while this worker has a connection to the peer open (mid-chunk)."""
        return connected(self.process.pid, peer.host.address, PEER_PORT)

    def terminate(self) -> None:
        """SIGTERM to the worker's main process, as ``kill PID`` or ``docker stop``."""
        self.process.send_signal(signal.SIGTERM)


def start_workers(
    hosts: Sequence[Host], broker_url: str, queue: str, logdir: Path, cwd: Path
) -> list[HostWorker]:
    """One worker per host, started together; returns once all are ready."""
    cwd.mkdir(parents=True, exist_ok=True)
    workers = [
        HostWorker(host, f"w{n}", broker_url, queue, logdir, cwd)
        for n, host in enumerate(hosts, start=1)
    ]
    store = RedisJobStore.from_url(broker_url)
    for worker in workers:
        worker.wait_ready(store)
    return workers


class Submission:
    """``dispatch submit --wait`` running in a host; its first output line is the job id."""

    def __init__(
        self,
        host: Host,
        broker_url: str,
        queue: str,
        peer: Peer,
        inputs: Sequence[str],
        cwd: Path,
        logdir: Path,
        options: Sequence[str] = (),
    ) -> None:
        self.host = host
        self.broker_url = broker_url
        self.cwd = cwd
        self.log_path = logdir / "submit.log"
        # --no-check: the scenarios put the job itself, on its workers, before the network.
        command = [*dispatch_program(), "submit", "--broker", broker_url, "--wait", "--no-check"]
        command += options
        command += [*peer.arguments, *inputs]
        self.process = host.popen(
            command,
            cwd=cwd,
            env=_environment(queue=queue),
            stdout=subprocess.PIPE,
            log=self.log_path,
        )
        line = _read_line(self.process, READY_TIMEOUT_S).strip()
        assert len(line) == 12, f"no job id: {line!r}\n{self.log()}"
        self.job_id = line

    def wait(self, timeout_s: float) -> int:
        """The exit code, once it ended (the test fails if it has not by then)."""
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"submit still runs after {timeout_s} s:\n{self.log()}") from None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _dispatch(self, *args: str) -> str:
        done = self.host.run([*dispatch_program(), *args, "--broker", self.broker_url])
        assert done.returncode == 0, f"dispatch {args[0]}: {done.stderr}"
        return done.stdout

    def state(self) -> str:
        """The job's state, as ``dispatch status`` shows it."""
        return self._dispatch("status", self.job_id).splitlines()[0].split(":", 1)[0]

    def report(self) -> list[dict[str, Any]]:
        """Every outcome of the job, as ``dispatch report --format jsonl`` gives them."""
        text = self._dispatch("report", self.job_id, "--format", "jsonl")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def resolve(self, path: str) -> Path:
        """A path of the report as the file it names (relative: to submit's directory)."""
        return (self.cwd / path).resolve()


@dataclass
class Site:
    """One scenario's queue and directories; what it started is stopped at teardown.

    Workers run in ``elsewhere/``, a directory of their own; ``dispatch submit`` runs
    in ``data/`` (where :func:`studies` writes the files) on the ``submitter`` host.
    """

    network: Network
    tmp: Path
    queue: str = field(default_factory=lambda: f"hosts-{uuid.uuid4().hex[:8]}")
    workers: list[HostWorker] = field(default_factory=list)
    submissions: list[Submission] = field(default_factory=list)

    @property
    def data(self) -> Path:
        return self.tmp / "data"

    def start_workers(self, broker_url: str) -> list[HostWorker]:
        """A worker (one process) on each of ``worker1`` and ``worker2``."""
        hosts = [self.network.hosts["worker1"], self.network.hosts["worker2"]]
        started = start_workers(hosts, broker_url, self.queue, self.tmp, self.tmp / "elsewhere")
        self.workers += started
        return started

    def submit(
        self, broker_url: str, peer: Peer, inputs: Sequence[str | Path], *options: str
    ) -> Submission:
        """``dispatch submit --wait`` on the ``submitter`` host, in ``data/``."""
        submission = Submission(
            self.network.hosts["submitter"],
            broker_url,
            self.queue,
            peer,
            [str(p) for p in inputs],
            self.data,
            self.tmp,
            ["--chunk", "12", *options],
        )
        self.submissions.append(submission)
        return submission

    def logs(self) -> str:
        """The last lines of every log: the message of a failed scenario."""
        parts = []
        for path in sorted(self.tmp.glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-25:]
            parts.append(f"--- {path.name}\n" + "\n".join(tail))
        return "\n".join(parts)

    def close(self) -> None:
        for submission in self.submissions:
            stop_process(submission.process)
        for worker in self.workers:
            worker.kill()
