"""Every Prometheus metric of dicom-dispatch, declared here and nowhere else.

Imported only when metrics are asked for (``--metrics-port``), and in a prefork worker
only after ``PROMETHEUS_MULTIPROC_DIR`` is set: prometheus_client picks its
multiprocess mode when it is first imported. Gauges name how the values of several
processes combine (``multiprocess_mode``); outside multiprocess mode that is ignored.

Labels are bounded: ``destination`` (``AE@host:port``), ``outcome``, ``status_class``
(:func:`dispatch.status.status_class`, or ``none`` when the peer gave no status),
``reason`` (:data:`dispatch.observe.RETRY_REASONS`), ``state`` and ``queue``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from dispatch.observe import COMMIT_RESULTS, RETRY_REASONS, parse_listen_address
from dispatch.outcome import FileOutcome, Outcome
from dispatch.status import status_class

# C-STORE round trips run from milliseconds (small files, local peer) to minutes (a
# gigabyte over a WAN); association set-up from milliseconds to the ACSE timeout.
_STORE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_SETUP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

FILES = Counter(
    "dispatch_files",
    "Files with an outcome, by destination, outcome and status class.",
    ["destination", "outcome", "status_class"],
)
BYTES = Counter(
    "dispatch_bytes_sent",
    "Data set bytes of the files the destination confirmed.",
    ["destination"],
)
STORE_SECONDS = Histogram(
    "dispatch_store_duration_seconds",
    "C-STORE duration: from sending the request to its response.",
    ["destination"],
    buckets=_STORE_BUCKETS,
)
SETUP_SECONDS = Histogram(
    "dispatch_association_setup_seconds",
    "Association set-up: connect and negotiate, until accepted.",
    ["destination"],
    buckets=_SETUP_BUCKETS,
)
ASSOCIATIONS_OPEN = Gauge(
    "dispatch_associations_open",
    "Associations open now.",
    ["destination"],
    multiprocess_mode="livesum",
)
ASSOCIATION_LIMIT = Gauge(
    "dispatch_association_limit",
    "Configured limit of simultaneous associations to the destination.",
    ["destination"],
    multiprocess_mode="livemax",
)
RETRIES = Counter(
    "dispatch_retries",
    "Transient failures that were retried, by reason.",
    ["destination", "reason"],
)
COMMITTED = Counter(
    "dispatch_files_committed",
    "Stored files whose storage commitment ended, by result.",
    ["destination", "result"],
)
TASKS = Counter(
    "dispatch_tasks",
    "Send tasks (chunks) run, by how the run ended.",
    ["state"],
)
TASKS_ACTIVE = Gauge(
    "dispatch_tasks_active",
    "Send tasks running now.",
    multiprocess_mode="livesum",
)

QUEUE_DEPTH = "dispatch_queue_depth"
"""Gauge (collected at scrape time): messages waiting in the broker queue."""
JOBS_RUNNING = "dispatch_jobs_running"
"""Gauge (collected at scrape time): jobs in the running state."""
DESTINATION_WAITING = "dispatch_destination_waiting_since_seconds"
"""Gauge (collected at scrape time): since when each destination of the live jobs is
unreachable (Unix time), 0 while it is not."""


def _declare(destination: str) -> None:
    """Create a destination's labelled series at zero, so that a panel shows 0, not "no
    data", before the first failure or retry (an outcome without a status: ``none``)."""
    for outcome in Outcome:
        klass = status_class(0) if outcome is Outcome.STORED else "none"
        FILES.labels(destination, outcome.value, klass)
    for reason in RETRY_REASONS:
        RETRIES.labels(destination, reason)
    for result in COMMIT_RESULTS:
        COMMITTED.labels(destination, result)
    BYTES.labels(destination)
    STORE_SECONDS.labels(destination)
    SETUP_SECONDS.labels(destination)


class PrometheusObserver:
    """The :class:`~dispatch.observe.SendObserver` that counts into the metrics above.

    Every destination's series exist from the first event that names it."""

    def __init__(self) -> None:
        self._declared: set[str] = set()

    def _seen(self, destination: str) -> None:
        if destination not in self._declared:
            self._declared.add(destination)
            _declare(destination)

    def association_opened(self, destination: str, setup_s: float) -> None:
        self._seen(destination)
        SETUP_SECONDS.labels(destination).observe(setup_s)
        ASSOCIATIONS_OPEN.labels(destination).inc()

    def association_closed(self, destination: str) -> None:
        ASSOCIATIONS_OPEN.labels(destination).dec()

    def association_limit(self, destination: str, limit: int) -> None:
        self._seen(destination)
        ASSOCIATION_LIMIT.labels(destination).set(limit)

    def file_done(self, destination: str, outcome: FileOutcome) -> None:
        self._seen(destination)
        klass = "none" if outcome.status is None else status_class(outcome.status)
        FILES.labels(destination, outcome.outcome.value, klass).inc()
        if outcome.bytes:
            BYTES.labels(destination).inc(outcome.bytes)
        if outcome.status is not None and outcome.seconds > 0:
            STORE_SECONDS.labels(destination).observe(outcome.seconds)

    def retry(self, destination: str, reason: str) -> None:
        self._seen(destination)
        RETRIES.labels(destination, reason).inc()

    def file_committed(self, destination: str, result: str) -> None:
        self._seen(destination)
        COMMITTED.labels(destination, result).inc()


class ScrapeTimeGauges:
    """A collector of the gauges read when Prometheus scrapes: queue depth (per queue)
    and jobs running. Each reader may raise (Redis away for a moment): that gauge is
    left out of this scrape rather than failing it."""

    def __init__(
        self,
        queue_depths: Callable[[], dict[str, int]] | None = None,
        jobs_running: Callable[[], int] | None = None,
        destinations_waiting: Callable[[], dict[str, float]] | None = None,
    ) -> None:
        self._queue_depths = queue_depths
        self._jobs_running = jobs_running
        self._destinations_waiting = destinations_waiting

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self._queue_depths is not None:
            try:
                depths = self._queue_depths()
            except Exception:  # the scrape must not fail because the broker is away
                depths = None
            if depths is not None:
                family = GaugeMetricFamily(
                    QUEUE_DEPTH, "Send tasks waiting in the broker queue.", labels=["queue"]
                )
                for queue, depth in sorted(depths.items()):
                    family.add_metric([queue], depth)
                yield family
        if self._jobs_running is not None:
            try:
                running = self._jobs_running()
            except Exception:  # as above
                running = None
            if running is not None:
                yield GaugeMetricFamily(JOBS_RUNNING, "Jobs in the running state.", value=running)
        yield from self._waiting()

    def _waiting(self) -> Iterator[GaugeMetricFamily]:
        if self._destinations_waiting is None:
            return
        try:
            waiting = self._destinations_waiting()
        except Exception:  # as above
            return
        family = GaugeMetricFamily(
            DESTINATION_WAITING,
            "When the destination became unreachable (Unix time), 0 while it is not waited for.",
            labels=["destination"],
        )
        for destination, since in sorted(waiting.items()):
            family.add_metric([destination], since)
        yield family


def start_observing(address: str, extra: Collector | None = None) -> PrometheusObserver:
    """For a single process (``dispatch send``, in-process ``submit``): serve this
    process's metrics on ``address`` and install the Prometheus observer. Raises
    :class:`~dispatch.errors.UsageError` as :func:`serve` does."""
    from dispatch.observe import install

    serve(address, extra=extra)
    observer = PrometheusObserver()
    install(observer)
    return observer


def serve(
    address: str,
    registry: CollectorRegistry | None = None,
    extra: Collector | None = None,
) -> tuple[Any, threading.Thread]:
    """Serve ``registry`` (default: this process's) on ``address`` (``[HOST:]PORT``)
    at ``/metrics`` from a daemon thread; ``extra`` is registered on it first. Raises
    :class:`~dispatch.errors.UsageError` for a bad address or a port in use."""
    from prometheus_client import start_http_server

    from dispatch.errors import UsageError

    host, port = parse_listen_address(address)
    registry = REGISTRY if registry is None else registry
    if extra is not None:
        registry.register(extra)
    try:
        return start_http_server(port, host, registry=registry)
    except OSError as exc:
        raise UsageError(f"cannot serve metrics on {address}: {exc.strerror or exc}") from exc
