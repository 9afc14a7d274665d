"""Whole-process sending benchmark: ``dispatch send`` and ``dispatch submit`` against
DCMTK's ``storescu``.

Both senders send the same corpus to one DCMTK ``storescp --ignore`` (started with
``TCP_NODELAY=1``, and with ``--fork`` for the rows with parallel associations) on a
free loopback port, alternately, for several rounds. Each run is a whole process, timed
with ``time.perf_counter`` around it; its CPU time comes from the kernel's ``wait4``
accounting and its peak resident set size from GNU time when present (see
:func:`run_process`).

The ``submit-redis-*`` rows need a Redis server and Celery workers: :class:`Cluster`
starts them once (on free loopback ports), waits until every worker has registered,
keeps them across rounds and stops them at the end. Only the ``dispatch submit``
process is timed (from its start until it exits after the job ended), as a user waits.

A run that exits non-zero, or whose job did not store every file, invalidates its round
for that case. Results are reported as the median, over valid rounds, of each sender's
figure and of the ratio dispatch / DCMTK; the targets are checked against those medians.

Usage: ``python benchmarks/bench_send.py [--rounds N] [--quick] [--case NAME ...]
[--workers N] [--worker-concurrency C] [--json FILE]``. Run it with the project's
virtualenv Python: the ``dispatch`` console script is looked up next to
``sys.executable``.

New rows (TLS, other peers) are new :class:`Case` entries in :func:`default_cases`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

# The corpus module is a sibling script, not part of an installed package.
import corpus as corpora

STORESCU = "/usr/bin/storescu"
BASH = "/bin/bash"
STORESCP = "/usr/bin/storescp"
GNU_TIME = "/usr/bin/time"
HOST = "127.0.0.1"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
REDIS_SERVER = "redis-server"
RUN_TIMEOUT_S = 600.0
PEER_START_TIMEOUT_S = 10.0
WORKER_START_TIMEOUT_S = 60.0
# DCMTK's senders and receivers wait for delayed ACKs unless told otherwise.
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}
# dispatch runs with the shipped settings plus its command line: no settings file or
# DISPATCH_* variable of the caller's (a DISPATCH_BROKER_URL would turn the embedded
# rows into broker runs).
#
# Nor PYTHONDONTWRITEBYTECODE: an installed package carries its bytecode (pip compiles it
# on install), and :func:`compile_project` gives a checkout's the same, so no run pays
# for compiling the sources (about 0.15 s of every process's start-up).
DISPATCH_ENV = {
    k: v
    for k, v in os.environ.items()
    if not k.startswith("DISPATCH_") and k != "PYTHONDONTWRITEBYTECODE"
}
# The key prefix of the job records with the shipped settings.
KEY_PREFIX = "dispatch"


def compile_project() -> None:
    """Write the bytecode of the project's packages, as installing them does (an
    editable install, as in a checkout, leaves it to the first run)."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "dispatch", "workers"],
        cwd=PROJECT_ROOT,
        check=True,
        env=DISPATCH_ENV,
    )


def dispatch_executable() -> Path:
    """The project's console script from the same virtualenv as this Python."""
    return Path(sys.executable).parent / "dispatch"


# --- measuring one process -------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One finished process: wall time, kernel accounting and exit code."""

    seconds: float
    max_rss_kb: int
    cpu_seconds: float
    returncode: int
    output_tail: str
    problem: str = ""
    """Set by a case's check when the run exited 0 but did not do the whole job."""
    worker_cpu_seconds: float | None = None
    """For runs through the workers: their processes' user + system CPU during the run."""

    @property
    def ok(self) -> bool:
        """True when the process exited with status 0 and its check found nothing."""
        return self.returncode == 0 and not self.problem


def run_process(argv: Sequence[str], env: dict[str, str] | None = None) -> Run:
    """Run ``argv`` to completion and measure it.

    Output goes to a temporary file (a pipe could fill and stall the sender); its tail
    is kept for diagnosing failures. The child is reaped with ``os.wait4``, which gives
    its CPU time (and that of any descendants it waited for).

    Peak RSS needs care: Linux carries a process's peak RSS across ``exec``, so a child
    forked from this Python process would report at least this process's own RSS. When
    GNU time is available the command runs under it, whose small footprint is what the
    command inherits, and its ``%M`` is the command's own peak; otherwise the ``wait4``
    figure is reported, an upper bound.
    """
    with tempfile.TemporaryFile() as output, tempfile.NamedTemporaryFile("r") as rss:
        command = list(argv)
        if Path(GNU_TIME).exists():
            command = [GNU_TIME, "-f", "%M", "-o", rss.name, *command]
        started = time.perf_counter()
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            return Run(0.0, 0, 0.0, 127, f"cannot start {command[0]}: {exc}")
        status, usage = _wait(process)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        output.seek(max(0, output.seek(0, os.SEEK_END) - 4000))
        tail = output.read().decode("utf-8", "replace")
        max_rss_kb = _last_int(rss.read()) or usage.ru_maxrss
    return Run(
        seconds=seconds,
        max_rss_kb=max_rss_kb,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        returncode=process.returncode,
        output_tail=tail,
    )


def _last_int(text: str) -> int | None:
    """The last line of GNU time's output file as an integer (it may add a note above)."""
    lines = text.strip().splitlines()
    return int(lines[-1]) if lines and lines[-1].isdigit() else None


def _wait(process: subprocess.Popen[bytes]) -> tuple[int, resource.struct_rusage]:
    """Reap ``process`` with a blocking ``wait4``; kill its group after the run timeout."""

    def kill() -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    timer = threading.Timer(RUN_TIMEOUT_S, kill)
    timer.start()
    try:
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        timer.cancel()
    return status, usage


# --- the receiving peer ----------------------------------------------------------


def _terminate(process: subprocess.Popen[Any] | None) -> None:
    """SIGTERM ``process`` if it still runs, SIGKILL it after 5 s; reap it."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _listening(port: int) -> bool:
    """Whether something listens on TCP ``port`` (read from the kernel, no connect)."""
    wanted = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[1].endswith(wanted) and fields[3] == "0A":  # 0A: LISTEN
                return True
    return False


@dataclass
class Peer:
    """A DCMTK ``storescp --ignore`` restarted on demand if it dies."""

    options: tuple[str, ...] = ()
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0

    def ensure(self) -> int:
        """Start the peer if it is not running; return its port."""
        if self.process is not None and self.process.poll() is None:
            return self.port
        if self.process is not None:
            self.restarts += 1
        self.port = free_port()
        self.process = subprocess.Popen(
            [STORESCP, "--ignore", *self.options, str(self.port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=DCMTK_ENV,
        )
        deadline = time.monotonic() + PEER_START_TIMEOUT_S
        while not _listening(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"storescp did not start on port {self.port}")
            time.sleep(0.01)
        return self.port

    def alive(self) -> bool:
        """Whether the peer process is still running."""
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """Terminate the peer (only the process this object started)."""
        _terminate(self.process)


# --- the Redis server and the workers --------------------------------------------


@dataclass
class Cluster:
    """A ``redis-server`` and ``workers`` ``dispatch worker`` processes of
    ``concurrency`` each, on a free loopback port, for the ``submit-redis-*`` rows.

    Redis runs without persistence (``--save "" --appendonly no``): a benchmark's job
    records are disposable. Each worker is named ``benchN@%h`` and is ready once its
    ``<prefix>:worker:<name>`` key (kept alive by its reaper thread after Celery's
    ``worker_ready``) is in Redis. Workers log to temporary files, shown if they fail.
    """

    workers: int = 2
    concurrency: int = 1
    port: int = 0
    redis: subprocess.Popen[bytes] | None = None
    worker_processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    _logdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        """The broker URL the workers and ``dispatch submit`` share."""
        return f"redis://{HOST}:{self.port}/0"

    def client(self) -> Any:
        """A redis-py client (decoded strings) on the cluster's Redis."""
        import redis  # only the submit rows need it

        return redis.Redis(host=HOST, port=self.port, decode_responses=True)

    def start(self) -> None:
        """Start Redis and the workers; return once every worker has registered."""
        self._logdir = tempfile.TemporaryDirectory(prefix="dispatch-bench-")
        self.port = free_port()
        self.redis = subprocess.Popen(
            [REDIS_SERVER, "--bind", HOST, "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--daemonize", "no"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + PEER_START_TIMEOUT_S
        while not _listening(self.port):
            if self.redis.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.01)
        for n in range(1, self.workers + 1):
            log = Path(self._logdir.name) / f"worker{n}.log"
            self.logs.append(log)
            with log.open("wb") as out:
                self.worker_processes.append(
                    subprocess.Popen(
                        [str(dispatch_executable()), "worker", "--broker", self.url,
                         "--concurrency", str(self.concurrency), "--hostname", f"bench{n}@%h"],
                        stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                        env=DISPATCH_ENV, start_new_session=True,
                    )
                )  # fmt: skip
        self._wait_ready()

    def _wait_ready(self) -> None:
        client = self.client()
        deadline = time.monotonic() + WORKER_START_TIMEOUT_S
        while len(client.keys(f"{KEY_PREFIX}:worker:bench*")) < self.workers:
            dead = [w for w in self.worker_processes if w.poll() is not None]
            if dead or time.monotonic() > deadline:
                tail = "\n".join(log.read_text(errors="replace")[-1500:] for log in self.logs)
                self.stop()
                raise RuntimeError(f"the workers did not become ready:\n{tail}")
            time.sleep(0.05)

    def cpu_seconds(self) -> float:
        """User + system CPU used so far by the workers: every process of their trees,
        with the children they reaped (a pool process replaced)."""
        return sum(tree_cpu_seconds(w.pid) for w in self.worker_processes)

    def alive(self) -> bool:
        """Whether Redis and every worker still run."""
        procs = [self.redis, *self.worker_processes]
        return all(p is not None and p.poll() is None for p in procs)

    def job(self, job_id: str) -> dict[str, str]:
        """The job record's counters (empty when there is no such job)."""
        fields = ("state", "total_files", "stored", "failed", "not_sent")
        values = self.client().hmget(f"{KEY_PREFIX}:job:{job_id}:meta", list(fields))
        return {k: v for k, v in zip(fields, values, strict=True) if v is not None}

    def stop(self) -> None:
        """Stop the workers (warm shutdown, then kill) and Redis: only what we started."""
        for worker in self.worker_processes:
            if worker.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(worker.pid, signal.SIGTERM)
        for worker in self.worker_processes:
            try:
                worker.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        self.worker_processes.clear()
        if self.redis is not None and self.redis.poll() is None:
            self.redis.terminate()
            try:
                self.redis.wait(5)
            except subprocess.TimeoutExpired:
                self.redis.kill()
                self.redis.wait()
        if self._logdir is not None:
            self._logdir.cleanup()
            self._logdir = None
        self.logs.clear()


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU of ``root`` and its live descendants, from ``/proc``, with that
    of the children they reaped. Processes that vanish meanwhile count as nothing."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name (field 2) may hold spaces: the fields after it are counted
        # from its closing parenthesis.
        fields = stat[stat.rindex(")") + 2 :].split()
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        times[pid] = sum(int(v) for v in fields[11:15]) / tick  # utime stime cutime cstime
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in tree:
                tree.add(pid)
                frontier.append(pid)
    return sum(times.get(pid, 0.0) for pid in tree)


# --- the link with a round trip ------------------------------------------------------


@dataclass
class Link:
    """A delaying TCP proxy (``tests.support.delay_proxy``) in front of a peer: a link
    with a round trip of ``rtt_ms``, restarted on demand."""

    rtt_ms: float
    target_port: int = 0
    port: int = 0
    process: subprocess.Popen[str] | None = None

    def ensure(self, target_port: int) -> int:
        """The proxy's port, started (again) when not running or its peer moved."""
        if self.process is not None and self.process.poll() is None:
            if self.target_port == target_port:
                return self.port
            self.stop()
        self.target_port = target_port
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.delay_proxy", "--listen", f"{HOST}:0",
             "--target", f"{HOST}:{target_port}", "--rtt-ms", f"{self.rtt_ms:g}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, cwd=PROJECT_ROOT,
        )  # fmt: skip
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("listening "):
            self.stop()
            raise RuntimeError("the delay proxy did not start")
        self.port = int(line.rsplit(":", 1)[1])
        return self.port

    def stop(self) -> None:
        """Stop the proxy (only the process this object started)."""
        _terminate(self.process)
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None


# --- cases -----------------------------------------------------------------------


class Metric(Enum):
    """What a case reports per run, and whether more is better."""

    FILES_PER_S = ("files/s", True)
    MB_PER_S = ("MB/s", True)
    PEAK_RSS_MB = ("MB peak RSS", False)
    WALL_S = ("s wall", False)

    @property
    def unit(self) -> str:
        """Unit printed after values."""
        return self.value[0]

    @property
    def higher_is_better(self) -> bool:
        """True for throughputs, False for costs."""
        return self.value[1]

    def of(self, run: Run, corpus: corpora.Corpus) -> float:
        """This metric's value for ``run`` over ``corpus``."""
        if self is Metric.FILES_PER_S:
            return corpus.files / run.seconds
        if self is Metric.MB_PER_S:
            return corpus.total_bytes / 1e6 / run.seconds
        if self is Metric.PEAK_RSS_MB:
            return run.max_rss_kb / 1024
        return run.seconds


@dataclass(frozen=True)
class Target:
    """A pass mark: on the ratio dispatch / DCMTK, or on dispatch's own value."""

    threshold: float
    on_ratio: bool
    at_least: bool

    def passed(self, ours: float, ratio: float) -> bool:
        """Whether the medians meet the target."""
        value = ratio if self.on_ratio else ours
        return value >= self.threshold if self.at_least else value < self.threshold

    def describe(self, unit: str) -> str:
        """The target as printed, e.g. ``ratio >= 1.3x`` or ``< 150 MB peak RSS``."""
        if self.on_ratio:
            return f"ratio {'>=' if self.at_least else '<'} {self.threshold:g}x"
        return f"{'>=' if self.at_least else '<'} {self.threshold:g} {unit}"


@dataclass(frozen=True)
class Where:
    """Where a run sends: the peer's port, and the broker URL ("" without a cluster)."""

    port: int
    broker: str = ""


# Builds a command line from where to send and the corpus.
CommandBuilder = Callable[[Where, corpora.Corpus], list[str]]
# Looks at a finished dispatch run that exited 0; returns what is wrong ("" if nothing).
RunCheck = Callable[[Run, corpora.Corpus, "Cluster | None"], str]


@dataclass(frozen=True)
class Case:
    """One benchmark row: the same input sent by dispatch and by DCMTK."""

    name: str
    corpus: str
    ours: CommandBuilder
    theirs: CommandBuilder
    metric: Metric
    target: Target
    runs_per_round: int = 1
    peer_options: tuple[str, ...] = ()
    description: str = ""
    needs_cluster: bool = False
    """The Redis server and workers must run (see :class:`Cluster`)."""
    cluster_shape: tuple[int, int] | None = None
    """(workers, concurrency) of its cluster; None: the ``--workers`` and
    ``--worker-concurrency`` of the command line."""
    rtt_ms: float = 0.0
    """Both senders reach the peer through a :class:`Link` with this round trip."""
    worker_us_target: float | None = None
    """Also a target: the workers' CPU per file (median, microseconds) at most this."""
    check: RunCheck | None = None
    """Applied to every dispatch run that exited 0."""
    sanity: CommandBuilder | None = None
    """An extra, unmeasured dispatch run made once before the rounds, whose printed job
    summary must say that every file was stored (for commands that print none)."""


def _dirs(c: corpora.Corpus) -> list[str]:
    """The options naming the corpus's directory (recursively when it has subdirectories)."""
    return ["+sd", *(["+r"] if c.recursive else []), str(c.directory)]


def _dispatch_dir(where: Where, c: corpora.Corpus) -> list[str]:
    return [str(dispatch_executable()), "send", HOST, str(where.port), *_dirs(c)]


def _storescu_dir(where: Where, c: corpora.Corpus) -> list[str]:
    return [STORESCU, HOST, str(where.port), *_dirs(c)]


def _dispatch_file(where: Where, c: corpora.Corpus) -> list[str]:
    return [str(dispatch_executable()), "send", HOST, str(where.port), str(c.first_file())]


def _storescu_file(where: Where, c: corpora.Corpus) -> list[str]:
    return [STORESCU, HOST, str(where.port), str(c.first_file())]


_SPLIT_STORESCU = """
n=$1; shift; storescu=$1; shift; host=$1; shift; port=$1; shift
files=("$@"); per=$(( (${#files[@]} + n - 1) / n )); pids=()
for ((i = 0; i < n; i++)); do
  part=("${files[@]:i*per:per}")
  (( ${#part[@]} )) && { "$storescu" "$host" "$port" "${part[@]}" & pids+=($!); }
done
rc=0; for pid in "${pids[@]}"; do wait "$pid" || rc=1; done; exit $rc
"""


def _storescu_split(senders: int) -> CommandBuilder:
    """``senders`` storescu processes at once, each sending its share of the corpus's
    files (cut in name order into equal runs): DCMTK parallelised by hand, as a
    reference. Run by bash, whose start-up is a millisecond or two; it exits 1 if any
    storescu failed."""

    def build(where: Where, c: corpora.Corpus) -> list[str]:
        files = [str(path) for path in c.paths()]
        return [BASH, "-c", _SPLIT_STORESCU, "bash", str(senders), STORESCU, HOST,
                str(where.port), *files]  # fmt: skip

    return build


def _submit_redis(associations: int) -> CommandBuilder:
    def build(where: Where, c: corpora.Corpus) -> list[str]:
        return [
            str(dispatch_executable()), "submit", "--broker", where.broker, "--wait", "-q",
            "--max-associations", str(associations), HOST, str(where.port), *_dirs(c),
        ]  # fmt: skip

    return build


def _submit_embedded(jobs: int, quiet: bool = True) -> CommandBuilder:
    """``quiet`` False: without ``-q``, so that it prints the job summary."""

    def build(where: Where, c: corpora.Corpus) -> list[str]:
        return [
            str(dispatch_executable()), "submit", "--jobs", str(jobs), *(["-q"] if quiet else []),
            HOST, str(where.port), *_dirs(c),
        ]  # fmt: skip

    return build


_JOB_ID = re.compile(r"^([0-9a-f]{12})$", re.MULTILINE)
_SUMMARY_FILES = re.compile(r"^files: (\d+) \(stored (\d+), failed (\d+), not sent (\d+)\)$",
                            re.MULTILINE)  # fmt: skip


def _job_stored_everything(run: Run, c: corpora.Corpus, cluster: Cluster | None) -> str:
    """The job id ``dispatch submit`` printed names a completed job that stored every
    file of the corpus (read from its record in Redis, after the run: not timed)."""
    found = _JOB_ID.findall(run.output_tail)
    if not found or cluster is None:
        return "no job id in the output"
    job = cluster.job(found[-1])
    expected = {"state": "completed", "total_files": str(c.files), "stored": str(c.files)}
    if any(job.get(k) != v for k, v in expected.items()):
        return f"job {found[-1]}: {job}, expected {expected}"
    return ""


def summary_problem(output: str, c: corpora.Corpus) -> str:
    """What is wrong with a printed job summary ("" when it says every file was stored)."""
    match = _SUMMARY_FILES.search(output)
    if match is None:
        return "no job summary in the output"
    total, stored, failed, not_sent = (int(g) for g in match.groups())
    if (total, stored, failed, not_sent) != (c.files, c.files, 0, 0):
        return f"summary says {match.group(0)!r}, expected {c.files} stored"
    return ""


def default_cases() -> list[Case]:
    """The rows of the benchmark, in the order they are run and printed."""
    return [
        Case(
            "tiny",
            "tiny",
            _dispatch_dir,
            _storescu_dir,
            Metric.FILES_PER_S,
            Target(0.95, on_ratio=True, at_least=True),
            description="10,000 files of 2 KB, one association",
        ),
        Case(
            "ct",
            "ct",
            _dispatch_dir,
            _storescu_dir,
            Metric.MB_PER_S,
            Target(1.3, on_ratio=True, at_least=True),
            description="4,096 CT slices of 0.5 MB (2.1 GB), one association",
        ),
        Case(
            "memory",
            "big",
            _dispatch_file,
            _storescu_file,
            Metric.PEAK_RSS_MB,
            Target(150, on_ratio=False, at_least=False),
            description="one 1 GiB object",
        ),
        Case(
            "one-file",
            "tiny",
            _dispatch_file,
            _storescu_file,
            Metric.WALL_S,
            Target(0.5, on_ratio=False, at_least=False),
            runs_per_round=3,
            description="one 2 KB file: start-up and one association",
        ),
        *_parallel_cases(),
    ]


LINK_RTT_MS = 10.0
LINK_ASSOCIATIONS = 8
LINK_CLUSTER = (2, 4)
"""The link rows: a 10 ms round trip, 8 associations, two workers of 4 processes."""


def _parallel_cases() -> list[Case]:
    """The rows of the distributed sender: parallel associations against a forking
    peer, through Redis and workers or in-process, on loopback and over a link with a
    round trip; ``dispatch send`` against the same peer for reference."""
    fork = ("--fork",)
    tiny, ct = Metric.FILES_PER_S, Metric.MB_PER_S
    rows: list[Case] = []
    for name, corpus, metric, size, ratio in (
        ("flat", "tiny-flat", tiny, "10,000 files of 2 KB, 50 studies interleaved", 1.3),
        ("dirs", "tiny-dirs", tiny, "10,000 files of 2 KB, a directory per study (50)", 1.3),
        ("ct", "ct", ct, "4,096 CT slices of 0.5 MB (2.1 GB)", 1.75),
    ):
        rows.append(
            Case(
                f"submit-redis-{name}",
                corpus,
                _submit_redis(2),
                _storescu_dir,
                metric,
                Target(ratio, on_ratio=True, at_least=True),
                peer_options=fork,
                description=f"{size}: submit --wait through Redis to two workers, 2 associations",
                needs_cluster=True,
                worker_us_target=100.0 if metric is tiny else None,
                check=_job_stored_everything,
            )
        )
    for name, corpus, metric, size, ratio in (
        ("flat", "tiny-flat", tiny, "10,000 files of 2 KB, 50 studies interleaved", 1.5),
        ("dirs", "tiny-dirs", tiny, "10,000 files of 2 KB, a directory per study (50)", 1.5),
        ("ct", "ct", ct, "4,096 CT slices of 0.5 MB (2.1 GB)", 1.75),
    ):
        rows.append(
            Case(
                f"submit-embedded-{name}",
                corpus,
                _submit_embedded(2),
                _storescu_dir,
                metric,
                Target(ratio, on_ratio=True, at_least=True),
                peer_options=fork,
                description=f"{size}: submit --jobs 2 in-process, 2 associations",
                sanity=_submit_embedded(2, quiet=False),
            )
        )
    for corpus, metric, size in (
        ("tiny", tiny, "10,000 files of 2 KB in 20 studies"),
        ("ct", ct, "4,096 CT slices of 0.5 MB (2.1 GB)"),
    ):
        rows.append(
            Case(
                f"send-fork-{corpus}",
                corpus,
                _dispatch_dir,
                _storescu_dir,
                metric,
                Target(0.95 if corpus == "tiny" else 1.3, on_ratio=True, at_least=True),
                peer_options=fork,
                description=f"{size}: dispatch send, one association, forking peer (reference)",
            )
        )
    n = LINK_ASSOCIATIONS
    for name, corpus, metric, size, ratio in (
        ("tiny", "link", tiny, "600 files of 2 KB in 100 studies", 6.0),
        ("ct", "ct", ct, "4,096 CT slices of 0.5 MB (2.1 GB)", 1.0),
    ):
        rows += [
            Case(
                f"link-redis-{name}",
                corpus,
                _submit_redis(n),
                _storescu_dir,
                metric,
                Target(ratio, on_ratio=True, at_least=True),
                peer_options=fork,
                description=f"{size}, 10 ms round trip: submit through Redis to two workers"
                f" of 4, {n} associations",
                needs_cluster=True,
                cluster_shape=LINK_CLUSTER,
                rtt_ms=LINK_RTT_MS,
                check=_job_stored_everything,
            ),
            Case(
                f"link-embedded-{name}",
                corpus,
                _submit_embedded(n),
                _storescu_dir,
                metric,
                Target(ratio, on_ratio=True, at_least=True),
                peer_options=fork,
                description=f"{size}, 10 ms round trip: submit --jobs {n} in-process",
                rtt_ms=LINK_RTT_MS,
                sanity=_submit_embedded(n, quiet=False),
            ),
        ]
    rows.append(
        Case(
            "link-split-tiny",
            "link",
            _submit_embedded(n),
            _storescu_split(n),
            tiny,
            Target(1.0, on_ratio=True, at_least=True),
            peer_options=fork,
            description=f"600 files of 2 KB in 100 studies, 10 ms round trip: submit --jobs"
            f" {n} in-process against {n} storescu at once, each a share of the files"
            " (reference)",
            rtt_ms=LINK_RTT_MS,
        )
    )
    return rows


# --- running ---------------------------------------------------------------------


@dataclass
class Sample:
    """One measured pair (or an invalid one)."""

    round: int
    ours: Run
    theirs: Run
    load: float = 0.0
    """The 1-minute load average when the pair started (other work on the machine)."""

    @property
    def valid(self) -> bool:
        """Both runs exited with status 0."""
        return self.ours.ok and self.theirs.ok


@dataclass
class CaseResult:
    """Every sample of one case and the medians over the valid ones."""

    case: Case
    corpus: corpora.Corpus
    samples: list[Sample] = field(default_factory=list)
    sanity_problem: str = ""

    def _values(self, pick: Callable[[Sample], Run]) -> list[float]:
        return [self.case.metric.of(pick(s), self.corpus) for s in self.samples if s.valid]

    def ours(self) -> list[float]:
        """dispatch's metric, per valid sample."""
        return self._values(lambda s: s.ours)

    def theirs(self) -> list[float]:
        """DCMTK's metric over the valid samples (all its successful runs if none is)."""
        m = self.case.metric
        if any(s.valid for s in self.samples):
            return [m.of(s.theirs, self.corpus) for s in self.samples if s.valid]
        return [m.of(s.theirs, self.corpus) for s in self.samples if s.theirs.ok]

    def worker_us(self) -> list[float]:
        """The workers' CPU per file (microseconds), per valid sample that measured it."""
        return [
            s.ours.worker_cpu_seconds * 1e6 / self.corpus.files
            for s in self.samples
            if s.valid and s.ours.worker_cpu_seconds is not None
        ]

    def ratios(self) -> list[float]:
        """dispatch / DCMTK per valid sample."""
        m = self.case.metric
        return [
            m.of(s.ours, self.corpus) / m.of(s.theirs, self.corpus) for s in self.samples if s.valid
        ]

    def verdict(self) -> bool | None:
        """PASS (True), FAIL (False), or None when no sample was valid. A failed sanity
        run is a FAIL whatever the timings."""
        ours, ratios = self.ours(), self.ratios()
        if not ours:
            return None
        if self.sanity_problem:
            return False
        worker_us, limit = self.worker_us(), self.case.worker_us_target
        if limit is not None and (not worker_us or statistics.median(worker_us) > limit):
            return False
        return self.case.target.passed(statistics.median(ours), statistics.median(ratios))

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready summary with every run."""
        verdict = self.verdict()
        return {
            "case": self.case.name,
            "description": self.case.description,
            "corpus": {
                "name": self.corpus.spec.name,
                "files": self.corpus.files,
                "bytes": self.corpus.total_bytes,
            },
            "metric": self.case.metric.unit,
            "target": self.case.target.describe(self.case.metric.unit),
            "median_dispatch": _median(self.ours()),
            "median_dcmtk": _median(self.theirs()),
            "median_ratio": _median(self.ratios()),
            "median_worker_us_per_file": _median(self.worker_us()),
            "valid_samples": sum(s.valid for s in self.samples),
            "sanity_problem": self.sanity_problem,
            "samples": [
                {
                    "round": s.round,
                    "load_average_1m": s.load,
                    "dispatch": asdict(s.ours),
                    "dcmtk": asdict(s.theirs),
                }
                for s in self.samples
            ],
            "verdict": None if verdict is None else ("PASS" if verdict else "FAIL"),
        }


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


class Bench:
    """Runs cases against peers it starts (one per set of peer options) and stops, and
    the cluster (Redis and workers) when a case needs it."""

    def __init__(self, workers: int = 2, concurrency: int = 1) -> None:
        self._peers: dict[tuple[str, ...], Peer] = {}
        self._links: dict[float, Link] = {}
        self._default_shape = (workers, concurrency)
        self.clusters: dict[tuple[int, int], Cluster] = {}
        self.cluster_restarts = 0

    def ensure_cluster(self, case: Case) -> Cluster:
        """The Redis server and workers of ``case``'s shape, started (or restarted, if
        one died) on demand."""
        shape = case.cluster_shape or self._default_shape
        cluster = self.clusters.get(shape)
        if cluster is not None and cluster.alive():
            return cluster
        if cluster is not None:
            cluster.stop()
            self.cluster_restarts += 1
        workers, concurrency = shape
        cluster = self.clusters[shape] = Cluster(workers, concurrency)
        started = time.perf_counter()
        cluster.start()
        print(
            f"redis on port {cluster.port}, {workers} worker(s) x {concurrency} "
            f"ready in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        return cluster

    def peer(self, options: tuple[str, ...]) -> Peer:
        """The peer for ``options``, started if needed."""
        peer = self._peers.setdefault(options, Peer(options))
        peer.ensure()
        return peer

    @property
    def peer_restarts(self) -> int:
        """How many times a peer died and was started again."""
        return sum(p.restarts for p in self._peers.values())

    def close(self) -> None:
        """Stop every proxy, peer, Redis server and worker this bench started."""
        for cluster in self.clusters.values():
            cluster.stop()
        for link in self._links.values():
            link.stop()
        for peer in self._peers.values():
            peer.stop()

    def where(self, case: Case) -> Where:
        """The peer (through its link, if any) and broker of ``case``, started if needed."""
        port = self.peer(case.peer_options).port
        if case.rtt_ms:
            port = self._links.setdefault(case.rtt_ms, Link(case.rtt_ms)).ensure(port)
        broker = self.ensure_cluster(case).url if case.needs_cluster else ""
        return Where(port, broker)

    def run_ours(self, case: Case, c: corpora.Corpus) -> Run:
        """One dispatch run of ``case``, checked when it exited 0; through the workers,
        with their CPU time during the run."""
        where = self.where(case)
        cluster = self.ensure_cluster(case) if case.needs_cluster else None
        before = cluster.cpu_seconds() if cluster is not None else 0.0
        run = run_process(case.ours(where, c), DISPATCH_ENV)
        if cluster is not None:
            run = replace(run, worker_cpu_seconds=cluster.cpu_seconds() - before)
        if run.returncode == 0 and case.check is not None:
            problem = case.check(run, c, cluster)
            if problem:
                run = replace(run, problem=problem)
        return run

    def sanity(self, case: Case, c: corpora.Corpus) -> str:
        """Run the case's unmeasured sanity command; what is wrong ("" if nothing)."""
        if case.sanity is None:
            return ""
        run = run_process(case.sanity(self.where(case), c), DISPATCH_ENV)
        if run.returncode != 0:
            return f"exit {run.returncode}: {run.output_tail.strip()[-500:]}"
        return summary_problem(run.output_tail, c)

    def measure(self, case: Case, c: corpora.Corpus, round_: int) -> list[Sample]:
        """One round of ``case``: ``runs_per_round`` pairs, alternating who goes first."""
        samples = []
        for i in range(case.runs_per_round):
            dcmtk_first = (round_ + i) % 2 == 0
            order = ("theirs", "ours") if dcmtk_first else ("ours", "theirs")
            runs: dict[str, Run] = {}
            load = os.getloadavg()[0]
            for who in order:
                if who == "ours":
                    runs[who] = self.run_ours(case, c)
                else:
                    runs[who] = run_process(case.theirs(self.where(case), c), DCMTK_ENV)
            samples.append(Sample(round_, runs["ours"], runs["theirs"], load))
        return samples


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "n/a"
    text = f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
    return f"{text} {unit}".rstrip()


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _print_sample(case: Case, c: corpora.Corpus, s: Sample) -> None:
    m = case.metric

    def side(name: str, run: Run) -> str:
        if run.problem:
            return f"{name} FAILED ({run.problem})"
        if not run.ok:
            return f"{name} FAILED (exit {run.returncode})"
        return (
            f"{name} {run.seconds:.3f} s, {_fmt(m.of(run, c), m.unit)}, "
            f"cpu {run.cpu_seconds:.2f} s, rss {run.max_rss_kb / 1024:.0f} MB"
        )

    ratio = f"ratio {m.of(s.ours, c) / m.of(s.theirs, c):.2f}x" if s.valid else "invalid"
    workers = ""
    if s.ours.worker_cpu_seconds is not None:
        workers = f" | workers {s.ours.worker_cpu_seconds * 1e6 / c.files:.0f} us/file"
    print(
        f"  {case.name:20} round {s.round}: {side('dispatch', s.ours)} | "
        f"{side('storescu', s.theirs)} | {ratio}{workers} | load {s.load:.2f}",
        flush=True,
    )
    for who, run in (("dispatch", s.ours), ("storescu", s.theirs)):
        if not run.ok:
            tail = "\n".join(run.output_tail.strip().splitlines()[-5:])
            print(f"    {who} output (tail):\n      " + tail.replace("\n", "\n      "))


def _print_summary(results: list[CaseResult]) -> None:
    print("\nsummary (medians over valid rounds)")
    for r in results:
        unit = r.case.metric.unit
        verdict = r.verdict()
        mark = "NO DATA" if verdict is None else ("PASS" if verdict else "FAIL")
        print(
            f"  {r.case.name:20} dispatch {_fmt(_median(r.ours()), unit):>16}  "
            f"storescu {_fmt(_median(r.theirs()), unit):>16}  "
            f"ratio {_ratio(_median(r.ratios()))}  "
            f"valid {sum(s.valid for s in r.samples)}/{len(r.samples)}  "
            f"target {r.case.target.describe(unit)}{_worker_target(r)}: {mark}"
        )


def _worker_target(r: CaseResult) -> str:
    """The workers' CPU per file and its target, for the summary ("" when not measured)."""
    us = _median(r.worker_us())
    if us is None:
        return ""
    limit = r.case.worker_us_target
    return f", workers {us:.0f} us/file" + (f" (<= {limit:g})" if limit is not None else "")


def run_cases(
    cases: list[Case], rounds: int, warmup: bool, workers: int = 2, concurrency: int = 1
) -> list[CaseResult]:
    """Run every case for ``rounds`` rounds, interleaved so drift hits all cases alike.

    Cases with a sanity command run it once first; if it fails, the case's rounds are
    still measured but the case is reported (its verdict is what the rounds say).
    """
    bench = Bench(workers, concurrency)
    try:
        results = [CaseResult(case, corpora.ensure(case.corpus)) for case in cases]
        for r in results:
            problem = bench.sanity(r.case, r.corpus)
            if r.case.sanity is not None:
                print(f"  {r.case.name}: sanity run {'FAILED: ' + problem if problem else 'ok'}")
            r.sanity_problem = problem
        if warmup:
            # Brings the corpus into the page cache and both programs into memory,
            # so round 1 is not the odd one out.
            for r in results:
                bench.measure(r.case, r.corpus, 0)
        for round_ in range(1, rounds + 1):
            for r in results:
                for sample in bench.measure(r.case, r.corpus, round_):
                    r.samples.append(sample)
                    _print_sample(r.case, r.corpus, sample)
        if bench.peer_restarts:
            print(f"note: storescp died and was restarted {bench.peer_restarts} time(s)")
        if bench.cluster_restarts:
            print(f"note: redis or a worker died; restarted {bench.cluster_restarts} time(s)")
        return results
    finally:
        bench.close()


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    names = [c.name for c in default_cases()]
    parser = argparse.ArgumentParser(
        description="Compare `dispatch send` with DCMTK storescu, whole process each."
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds per case (default 5)")
    parser.add_argument(
        "--quick", action="store_true", help="one round, no warm-up: a smoke run, not a figure"
    )
    parser.add_argument(
        "--case",
        action="append",
        metavar="NAME",
        help="run only this case, or every case whose name starts with NAME- "
        f"(e.g. submit, submit-redis, send-fork); repeatable. Cases: {', '.join(names)}",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="worker processes for submit-redis (default 2)"
    )
    parser.add_argument(
        "--worker-concurrency",
        type=int,
        default=1,
        metavar="C",
        help="--concurrency of each worker (default 1)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the results as JSON")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.workers < 1 or args.worker_concurrency < 1:
        parser.error("--workers and --worker-concurrency must be at least 1")
    for wanted in args.case or ():
        if not any(selected(name, [wanted]) for name in names):
            parser.error(f"no case matches {wanted!r} (cases: {', '.join(names)})")
    return args


def selected(name: str, wanted: Sequence[str] | None) -> bool:
    """Whether case ``name`` is chosen by ``--case`` values ``wanted`` (None: all)."""
    return wanted is None or any(name == w or name.startswith(w + "-") for w in wanted)


def _environment() -> dict[str, object]:
    return {
        "python": sys.version.split()[0],
        "dispatch": str(dispatch_executable()),
        "storescu": subprocess.run(
            [STORESCU, "--version"], capture_output=True, text=True, check=False
        ).stdout.splitlines()[0:1],
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; exit 0 when every target passed, 1 otherwise."""
    args = _parse(argv)
    rounds = 1 if args.quick else args.rounds
    cases = [c for c in default_cases() if selected(c.name, args.case)]
    for missing in (STORESCU, STORESCP):
        if not Path(missing).exists():
            print(f"error: {missing} not found (DCMTK is required)", file=sys.stderr)
            return 2
    if any(c.needs_cluster for c in cases) and shutil.which(REDIS_SERVER) is None:
        print(f"error: {REDIS_SERVER} not found (the submit-redis rows need it)", file=sys.stderr)
        return 2
    if not dispatch_executable().exists():
        print(f"error: no dispatch console script next to {sys.executable}", file=sys.stderr)
        return 2
    compile_project()
    environment = _environment()
    # Other work on the machine skews whole-process timings; say how busy it was.
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    results = run_cases(cases, rounds, not args.quick, args.workers, args.worker_concurrency)
    _print_summary(results)
    print("load average at end:   {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    if args.json:
        payload = {
            "environment": environment,
            "rounds": rounds,
            "results": [r.as_dict() for r in results],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload["load_average_at_end"] = os.getloadavg()
        payload["workers"] = {"workers": args.workers, "concurrency": args.worker_concurrency}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0 if all(r.verdict() for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
