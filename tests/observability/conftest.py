"""Fixtures of the observability tests: a real Prometheus server and metric workers.

- ``prometheus``: ``prometheus(targets)`` starts Debian's ``prometheus`` on 127.0.0.1
  scraping ``targets`` (``host:port``) every second, with a temporary store; stopped at
  teardown. Its :class:`Prometheus` answers PromQL through the HTTP query API.
- ``metrics_worker``: ``dispatch worker --concurrency 2 --metrics-port 127.0.0.1:P``
  (through ``python -m workers``, i.e. the real command line) on a queue of its own.
- ``redis_url`` / ``job_store``: the worker tests' real redis-server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from dispatch.jobs.redis_store import RedisJobStore
from tests.support.cluster import REPO, WORKER_ENV, Worker
from tests.support.processes import end_group
from tests.support.programs import require_program
from tests.support.storescp import free_port

# Re-exported fixtures of the worker tests (one redis-server for the session).

PROMETHEUS_START_S = 20.0
SCRAPE_INTERVAL = "1s"
QUEUE = "observability"


class Prometheus:
    """A prometheus server on 127.0.0.1 with a temporary store."""

    def __init__(self, workdir: Path, targets: Sequence[str]) -> None:
        program = require_program("prometheus")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "prometheus.yml"
        scrape = {
            "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": "1s"},
            "scrape_configs": [
                {"job_name": "dispatch-workers", "static_configs": [{"targets": list(targets)}]}
            ],
        }
        config.write_text(json.dumps(scrape))  # YAML is a superset of JSON
        cmd = [
            str(program),
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]
        self.log_path = workdir / "prometheus.log"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_ready(self) -> Prometheus:
        deadline = time.monotonic() + PROMETHEUS_START_S
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as reply:
                    if reply.status == 200:
                        return self
            except OSError:
                pass
            # Nothing announces readiness across processes: poll, bounded.
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prometheus did not start:\n{self.log_path.read_text()}")
            time.sleep(0.1)

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The result vector of an instant query now (raises on a PromQL error)."""
        data = urllib.parse.urlencode({"query": expr}).encode()
        with urllib.request.urlopen(f"{self.url}/api/v1/query", data, timeout=10) as reply:
            body = json.load(reply)
        assert body["status"] == "success", body
        assert body["data"]["resultType"] == "vector", body
        return list(body["data"]["result"])

    def value(self, expr: str) -> float | None:
        """The single value of ``expr`` now, or None without a result."""
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, expr: str, ok: Callable[[float | None], bool], timeout_s: float) -> float:
        """Poll ``expr`` until ``ok(value)``; a scrape comes every second, no sooner."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = self.value(expr)
            if ok(value):
                assert value is not None
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"{expr} is {value} after {timeout_s} s")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        end_group(self.process, 10)


PrometheusFactory = Callable[[Sequence[str]], Prometheus]


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[PrometheusFactory]:
    started: list[Prometheus] = []

    def start(targets: Sequence[str]) -> Prometheus:
        server = Prometheus(tmp_path / f"prometheus{len(started)}", targets)
        started.append(server)
        return server.wait_ready()

    yield start
    for server in started:
        server.stop()


class MetricsWorker(Worker):
    """``dispatch worker -c N --metrics-port 127.0.0.1:P``, multiprocess files in a
    directory of the test."""

    def __init__(
        self, name: str, broker_url: str, logdir: Path, concurrency: int, queue: str = QUEUE
    ) -> None:
        self.name = f"{name}@test"
        self.log_path = logdir / f"worker-{name}.log"
        self.metrics_port = free_port()
        self.multiproc_dir = logdir / f"metrics-{name}"
        env = {**os.environ, **WORKER_ENV, "PROMETHEUS_MULTIPROC_DIR": str(self.multiproc_dir)}
        env.pop("DISPATCH_CONFIG", None)
        cmd = [sys.executable, "-m", "workers", "-c", str(concurrency), "-Q", queue]
        cmd += ["-n", self.name, "-l", "info", "--broker", broker_url]
        cmd += ["--metrics-port", f"127.0.0.1:{self.metrics_port}"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.metrics_port}"

    def scrape(self) -> str:
        url = f"http://{self.target}/metrics"
        with urllib.request.urlopen(url, timeout=10) as reply:
            return str(reply.read().decode())


@pytest.fixture
def metrics_worker(
    redis_url: str,
    job_store: RedisJobStore,
    tmp_path: Path,
) -> Iterator[MetricsWorker]:
    # A name of its own: the previous test's worker stays announced in Redis a moment.
    worker = MetricsWorker(f"metrics-{uuid.uuid4().hex[:8]}", redis_url, tmp_path, 2)
    try:
        worker.wait_ready(job_store)
        yield worker
    finally:
        worker.stop()
