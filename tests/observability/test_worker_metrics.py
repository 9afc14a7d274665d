"""A real Prometheus scrapes a real two-process worker during a job against a real peer:
the dashboard's queries return data, and the numbers are the job's."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import CollectorRegistry

from dispatch.jobs.enqueue import wait_for_job
from dispatch.jobs.model import JobState
from dispatch.jobs.redis_store import RedisJobStore
from dispatch.status import StatusCategory, category
from tests.jobs.support import chunks_of, make_spec
from tests.observability.conftest import QUEUE, MetricsWorker, PrometheusFactory
from tests.observability.dashboard import expressions, load_dashboard
from tests.support.dicom_files import make_study
from tests.support.jobs import enqueue_job
from tests.support.scp import StorageScp

WAIT_S = 30.0


def _per_process_stored(multiproc_dir: Path, scratch: Path) -> dict[int, float]:
    """Files stored as counted by each pool process alone (its own counter file)."""
    counts: dict[int, float] = {}
    for path in multiproc_dir.glob("counter_*.db"):
        pid = int(re.findall(r"\d+", path.name)[-1])
        alone = scratch / str(pid)
        alone.mkdir(parents=True)
        shutil.copy(path, alone / path.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, str(alone))
        total = sum(
            sample.value
            for metric in registry.collect()
            for sample in metric.samples
            if sample.name == "dispatch_files_total" and sample.labels["outcome"] == "stored"
        )
        if total:
            counts[pid] = total
    return counts


def test_prometheus_scrapes_a_worker_during_a_job_and_the_numbers_match(
    scp: StorageScp,
    metrics_worker: MetricsWorker,
    prometheus: PrometheusFactory,
    redis_url: str,
    job_store: RedisJobStore,
    tmp_path: Path,
) -> None:
    studies = [make_study(tmp_path / f"study{n}", images=3) for n in range(4)]
    files = [f for s in studies for f in s.files]
    spec = make_spec(
        scp.host, scp.port, job_id="obs1", halt=False, retries=5, max_associations=2,
        queue=QUEUE,
    )  # fmt: skip
    destination = spec.destination
    # The first store is held, so one pool process keeps its association open while the
    # other sends the rest: an out-of-resources answer (0xA700: its chunk is retried)
    # then a failure status (0xC000: recorded, not retried) among them.
    scp.stall_on_store(1)
    scp.respond(0x0000, 0xA700, 0x0000, 0x0000, 0xC000)
    prom = prometheus([metrics_worker.target])
    enqueue_job(redis_url, spec, chunks_of(files, 3), store=job_store)
    scp.wait_until_stalled(1, timeout_s=WAIT_S)

    # While the job runs: everything but the held chunk is through, and scraped.
    prom.wait_for("sum(dispatch_files_total)", lambda v: v is not None and v >= 9, WAIT_S)
    prom.wait_for("max(dispatch_jobs_running)", lambda v: v == 1, WAIT_S)
    prom.wait_for("sum(dispatch_associations_open)", lambda v: v is not None and v >= 1, WAIT_S)
    prom.wait_for("count_over_time(up[1m])", lambda v: v is not None and v >= 2, WAIT_S)
    for title, expr in expressions(load_dashboard()):
        assert prom.query(expr), f"panel {title!r}: no data for {expr}"

    scp.release_stall()
    final = wait_for_job(job_store, spec.job_id, poll_s=0.1, timeout_s=WAIT_S)
    assert final.state is JobState.COMPLETED_WITH_FAILURES
    assert (final.stored, final.failed, final.not_sent) == (11, 1, 0)
    prom.wait_for('sum(dispatch_files_total{outcome="stored"})', lambda v: v == 11, WAIT_S)
    prom.wait_for("sum(dispatch_associations_open)", lambda v: v == 0, WAIT_S)

    # Stored as the peer saw it: distinct instances it answered with success/warning.
    confirmed = {
        s.sop_instance_uid
        for s in scp.stores
        if s.status is not None and category(s.status) is not StatusCategory.FAILURE
    }
    assert len(confirmed) == 11
    labels = f'destination="{destination}"'
    assert prom.value(f'sum(dispatch_files_total{{{labels},outcome="stored"}})') == len(confirmed)
    failed = f'dispatch_files_total{{{labels},outcome="failed",status_class="0xCxxx"}}'
    assert prom.value(failed) == 1
    assert prom.value(f"dispatch_bytes_sent_total{{{labels}}}") == final.bytes_stored
    retries = f'dispatch_retries_total{{{labels},reason="out_of_resources"}}'
    assert prom.value(retries) == 1
    # Every file got an answer: one C-STORE duration each (the retried attempt is not
    # an outcome).
    assert prom.value(f"dispatch_store_duration_seconds_count{{{labels}}}") == 12
    assert prom.value(f"dispatch_association_setup_seconds_count{{{labels}}}") == len(
        scp.associations
    )
    assert prom.value(f"max(dispatch_association_limit{{{labels}}})") == 2
    assert prom.value('dispatch_tasks_total{state="done"}') == 4
    assert prom.value('dispatch_tasks_total{state="retry"}') == 1
    assert prom.value("sum(dispatch_tasks_active)") == 0
    assert prom.value(f'dispatch_queue_depth{{queue="{QUEUE}"}}') == 0

    # Multiprocess mode: each of the two pool processes stored some files, and the
    # worker's one endpoint reports their sum.
    per_process = _per_process_stored(metrics_worker.multiproc_dir, tmp_path / "alone")
    assert len(per_process) == 2 and all(count > 0 for count in per_process.values())
    assert sum(per_process.values()) == 11


def test_a_worker_serves_its_metrics_over_http(metrics_worker: MetricsWorker) -> None:
    text = metrics_worker.scrape()
    assert "dispatch_tasks_active 0.0" in text
    assert f'dispatch_queue_depth{{queue="{QUEUE}"}} 0.0' in text
    assert "dispatch_jobs_running" in text
