"""Worker-side metrics: ``celery -A workers worker --metrics-port [HOST:]PORT``.

With the option, the worker's main process serves ``/metrics`` over HTTP and every
pool process counts into prometheus_client's multiprocess files, so one scrape returns
the sum of all the worker's processes:

- at start (main process, before the pool forks): ``PROMETHEUS_MULTIPROC_DIR`` is
  created, or emptied when it exists (a previous worker's files would be counted
  again); without one in the environment, a directory per metrics port under the
  system's temporary directory;
- in each pool process: the Prometheus observer is installed for the engine, and its
  gauge files are dropped when it exits (``mark_process_dead``); those of a process
  that was killed are dropped at the next scrape;
- at each scrape the main process also reads the queue depth (``LLEN`` of each
  consumed queue on the broker) and the number of running jobs from Redis.

Without the option nothing here imports prometheus_client.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from celery import bootsteps  # type: ignore[import-untyped]
from celery.signals import (  # type: ignore[import-untyped]
    worker_process_init,
    worker_process_shutdown,
)

from workers.app import app

log = logging.getLogger("dispatch.workers")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
RUNNING_JOBS_SCANNED = 100
"""Jobs running are counted among the most recent this many jobs (a bounded scrape)."""

_enabled = False
"""Set in the main process before the pool forks, so every pool process inherits it."""


def enabled() -> bool:
    """True in a worker process whose worker serves metrics."""
    return _enabled


def task_started() -> None:
    """A send task begins (no-op without metrics)."""
    if _enabled:
        from dispatch import metrics

        metrics.TASKS_ACTIVE.inc()


def task_ended(state: str) -> None:
    """A send task ended as ``state`` (a chunk status, ``unknown`` or ``error``)."""
    if _enabled:
        from dispatch import metrics

        metrics.TASKS_ACTIVE.dec()
        metrics.TASKS.labels(state).inc()


def prepare_multiproc_dir(port: str) -> Path:
    """Create or empty the multiprocess directory; put it in the environment for
    prometheus_client (which reads it at import) and for the pool processes."""
    configured = os.environ.get(MULTIPROC_ENV)
    safe = re.sub(r"[^0-9A-Za-z.-]", "_", port)
    default = Path(tempfile.gettempdir()) / f"dispatch-metrics-{safe}"
    path = Path(configured) if configured else default
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(path)
    return path


class _LiveProcesses:
    """The multiprocess collector, after dropping the files of processes that died
    without saying so (killed): their live gauges must not count."""

    def __init__(self, path: Path) -> None:
        from prometheus_client.multiprocess import MultiProcessCollector

        self._path = path
        self._inner = MultiProcessCollector(None, str(path))  # type: ignore[no-untyped-call]

    def collect(self) -> Iterator[Any]:
        from prometheus_client.multiprocess import mark_process_dead

        pids = {
            int(m.group(1))
            for f in self._path.glob("gauge_live*_*.db")
            if (m := re.search(r"_(\d+)\.db$", f.name))
        }
        for pid in pids:
            if not _alive(pid):
                mark_process_dead(pid, str(self._path))  # type: ignore[no-untyped-call]
        yield from self._inner.collect()  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _QueueDepths:
    """``LLEN`` of each queue the worker consumes, on the broker (the Redis transport
    keeps a queue's waiting messages in a list named after it)."""

    def __init__(self, worker: Any) -> None:
        self._worker = worker
        self._client: Any = None

    def __call__(self) -> dict[str, int]:
        from workers.app import DEFAULT_BROKER_URL, config

        if self._client is None:
            import redis

            self._client = redis.Redis.from_url(config.broker_url or DEFAULT_BROKER_URL)
        names = list(self._worker.app.amqp.queues.consume_from or [config.queue])
        prefix = config.broker_key_prefix  # kombu's global_keyprefix, on every queue's key
        return {name: int(self._client.llen(prefix + name)) for name in names}


def _jobs_running() -> int:
    from dispatch.jobs.model import JobState
    from workers.context import context

    jobs = context().store.jobs(limit=RUNNING_JOBS_SCANNED)
    return sum(1 for job in jobs if job.state is JobState.RUNNING)


def _destinations_waiting() -> dict[str, float]:
    """Since when each destination of the running jobs is waited for (0: it is not)."""
    from dispatch.jobs.model import JobState
    from workers.context import context

    store = context().store
    jobs = store.jobs(limit=RUNNING_JOBS_SCANNED)
    live = {job.destination for job in jobs if job.state in (JobState.QUEUED, JobState.RUNNING)}
    return {name: store.destination(name).since for name in live}


def _multiprocess_values() -> None:
    """Make prometheus_client count into the multiprocess files from now on.

    prometheus_client picks how metrics keep their values when it is imported; another
    package may import it before the directory is set (Flower does, as a celery
    command plugin loaded with every ``celery`` command). The choice only matters for
    metrics created afterwards, so it is made again here, before dispatch's own metrics
    exist; if they already do, the worker stops with one line saying what to set.
    """
    from prometheus_client import values

    if values.ValueClass is not values.MutexValue:
        return
    if "dispatch.metrics" in sys.modules:
        raise SystemExit(
            f"dispatch worker: --metrics-port needs {MULTIPROC_ENV} set to an empty"
            " directory before the worker starts"
        )
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


class MetricsStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """Sets up multiprocess mode when the worker is built, serves on start."""

    def __init__(self, worker: Any, metrics_port: str | None = None, **options: Any) -> None:
        global _enabled
        super().__init__(worker, **options)
        self.address = metrics_port
        self.server: Any = None
        if not metrics_port:
            return
        from dispatch.observe import parse_listen_address

        parse_listen_address(metrics_port)  # a bad value stops the worker here, not later
        self.path = prepare_multiproc_dir(metrics_port)
        _multiprocess_values()
        _enabled = True

    def start(self, worker: Any) -> None:
        if not self.address:
            return
        from prometheus_client import CollectorRegistry

        from dispatch.metrics import ScrapeTimeGauges, serve

        registry = CollectorRegistry()
        registry.register(_LiveProcesses(self.path))
        gauges = ScrapeTimeGauges(_QueueDepths(worker), _jobs_running, _destinations_waiting)
        self.server, _thread = serve(self.address, registry, gauges)
        log.info("metrics on %s (/metrics)", self.address)

    def stop(self, worker: Any) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


app.user_options["worker"].add(
    click.Option(
        ["--metrics-port"],
        default=None,
        help="Serve Prometheus metrics on [HOST:]PORT (HTTP /metrics).",
    )
)
app.steps["worker"].add(MetricsStep)


@worker_process_init.connect  # type: ignore[untyped-decorator]
def _install_observer(**_: Any) -> None:
    if _enabled:
        from dispatch import metrics, observe

        observe.install(metrics.PrometheusObserver())


@worker_process_shutdown.connect  # type: ignore[untyped-decorator]
def _process_gone(pid: int | None = None, **_: Any) -> None:
    if _enabled:
        from prometheus_client.multiprocess import mark_process_dead

        mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]
