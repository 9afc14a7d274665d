"""Celery's own tooling sees ``dispatch worker``: a real Flower lists the worker and
follows a submitted job's task from sent to done; the worker options reach the Celery
worker (``celery inspect``); a broker key prefix (kombu's ``global_keyprefix``) is
honoured by submitter and worker alike, and the submitter emits task-sent events."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dispatch.jobs.enqueue import celery_client, wait_for_job
from dispatch.jobs.model import JobState
from dispatch.jobs.redis_store import RedisJobStore
from tests.support.cluster import REPO, WORKER_ENV, Worker, run_cli
from tests.support.dicom_files import make_study
from tests.support.processes import end_group
from tests.support.scp import StorageScp
from tests.support.storescp import free_port

WAIT_S = 60.0


def _require_flower() -> None:
    try:
        import flower  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("flower is not installed (CI=true requires it)")
        pytest.skip("flower is not installed")


class DispatchWorker(Worker):
    """``dispatch worker ARGS`` (through ``python -m workers``, the real command line)."""

    def __init__(
        self, name: str, broker_url: str, logdir: Path, *args: str, env: dict[str, str]
    ) -> None:
        self.name = f"{name}@test"
        self.log_path = logdir / f"worker-{name}.log"
        full_env = {**os.environ, **WORKER_ENV, **env}
        for name in ("DISPATCH_CONFIG", "PROMETHEUS_MULTIPROC_DIR"):
            full_env.pop(name, None)
        cmd = [sys.executable, "-m", "workers", "-n", self.name, "--broker", broker_url, *args]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                cmd, cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip


@contextlib.contextmanager
def _worker(
    store: RedisJobStore, broker_url: str, logdir: Path, *args: str, **env: str
) -> Iterator[DispatchWorker]:
    worker = DispatchWorker(f"tool-{uuid.uuid4().hex[:6]}", broker_url, logdir, *args, env=env)
    try:
        worker.wait_ready(store)
        yield worker
    finally:
        worker.stop()


def _submit(scp: StorageScp, broker_url: str, queue: str, tmp_path: Path, images: int = 2) -> str:
    study = make_study(tmp_path / f"s-{uuid.uuid4().hex[:6]}", images=images)
    run = run_cli(
        "submit", "--no-check", "--broker", broker_url, "--no-wait",
        scp.host, scp.port, *study.files,
    )  # fmt: skip
    assert run.code == 0, run.stderr
    return run.stdout.split()[0]


class Flower:
    """``celery --broker URL flower`` on 127.0.0.1 with its HTTP API open."""

    def __init__(self, broker_url: str, logdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = logdir / "flower.log"
        env = {**os.environ, "FLOWER_UNAUTHENTICATED_API": "true"}
        cmd = [sys.executable, "-m", "celery", "--broker", broker_url, "flower"]
        cmd += ["--address=127.0.0.1", f"--port={self.port}"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as reply:
            return json.load(reply)

    def wait_for(self, path: str, ok: Any, what: str) -> Any:
        """Poll ``path`` until ``ok(answer)``: Flower announces nothing across processes."""
        deadline = time.monotonic() + WAIT_S
        answer: Any = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"flower ended:\n{self.log_path.read_text()}")
            with contextlib.suppress(OSError, ValueError):
                answer = self.get(path)
                if ok(answer):
                    return answer
            time.sleep(0.2)
        raise AssertionError(f"{what}: last answer {answer}\n{self.log_path.read_text()}")

    def stop(self) -> None:
        end_group(self.process, 10)


def test_flower_sees_a_dispatch_worker_and_a_task_from_sent_to_done(
    scp: StorageScp,
    redis_url: str,
    job_store: RedisJobStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _require_flower()
    queue = f"tooling-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("DISPATCH_QUEUE", queue)
    flower = Flower(redis_url, tmp_path)
    try:
        with _worker(job_store, redis_url, tmp_path, "-c", "1", "-Q", queue) as worker:
            # Online in Flower means its heartbeats arrive: Flower's event stream is live.
            flower.wait_for(
                "/api/workers?status=1",
                lambda a: a.get(worker.name) is True,
                "the worker is not online in Flower",
            )
            workers = flower.wait_for(
                "/api/workers?refresh=1",
                lambda a: "active_queues" in a.get(worker.name, {}),
                "Flower's inspection does not list the worker",
            )
            assert [q["name"] for q in workers[worker.name]["active_queues"]] == [queue]
            job_id = _submit(scp, redis_url, queue, tmp_path)
            final = wait_for_job(job_store, job_id, poll_s=0.1, timeout_s=WAIT_S)
            assert final.state is JobState.COMPLETED
            tasks = flower.wait_for(
                "/api/tasks",
                lambda a: any(
                    t.get("state") == "SUCCESS" and job_id in str(t.get("args")) for t in a.values()
                ),
                "no finished task of the job in Flower",
            )
    finally:
        flower.stop()
    (task,) = [t for t in tasks.values() if job_id in str(t.get("args"))]
    assert task["name"] == "dispatch.send_chunk"
    assert task["worker"] == worker.name
    # Each step was seen: sent (by the submitter), received, started, succeeded.
    # (Their times come from different processes' clocks: their order is not asserted.)
    assert task["sent"] and task["received"] and task["started"] and task["succeeded"]


def test_worker_options_reach_the_celery_worker(
    redis_url: str, job_store: RedisJobStore, tmp_path: Path
) -> None:
    queues = [f"opt-{uuid.uuid4().hex[:6]}", f"opt-{uuid.uuid4().hex[:6]}"]
    args = ["-Q", ",".join(queues), "--autoscale", "3,1", "--max-tasks-per-child", "5"]
    args += ["--prefetch-multiplier", "2", "--loglevel", "debug"]
    app = celery_client(redis_url)
    try:
        with _worker(job_store, redis_url, tmp_path, *args) as worker:
            inspect = app.control.inspect(destination=[worker.name], timeout=10)
            stats = inspect.stats()[worker.name]
            active = inspect.active_queues()[worker.name]
            log = worker.log()
    finally:
        app.close()
    assert sorted(q["name"] for q in active) == sorted(queues)
    assert stats["pool"]["max-tasks-per-child"] == 5
    assert (stats["autoscaler"]["max"], stats["autoscaler"]["min"]) == (3, 1)
    assert stats["prefetch_count"] == 2 * 3  # the multiplier times the most processes
    assert "DEBUG/MainProcess" in log


def test_a_broker_key_prefix_is_honoured_and_the_submitter_emits_task_sent(
    scp: StorageScp,
    redis_url: str,
    job_store: RedisJobStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prefix = f"shared-{uuid.uuid4().hex[:6]}:"
    queue = f"prefixed-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("DISPATCH_QUEUE", queue)
    monkeypatch.setenv("DISPATCH_BROKER_KEY_PREFIX", prefix)
    sent: list[dict[str, Any]] = []
    live = threading.Event()
    app = celery_client(redis_url, key_prefix=prefix)
    connection = app.connection_for_read()
    handlers = {"task-sent": sent.append, "worker-heartbeat": lambda _event: live.set()}
    receiver = app.events.Receiver(connection, handlers=handlers)
    thread = threading.Thread(
        target=lambda: receiver.capture(limit=None, timeout=None, wakeup=False), daemon=True
    )
    thread.start()
    try:
        with _worker(job_store, redis_url, tmp_path, "-c", "1", "-Q", queue):
            # A heartbeat of the worker arrived: the receiver is subscribed.
            assert live.wait(WAIT_S)
            job_id = _submit(scp, redis_url, queue, tmp_path)
            final = wait_for_job(job_store, job_id, poll_s=0.1, timeout_s=WAIT_S)
            keys = set(job_store.client.keys(f"{prefix}*"))
    finally:
        receiver.should_stop = True
        thread.join(10)
        connection.release()
        app.close()
    assert final.state is JobState.COMPLETED and final.stored == 2
    assert not job_store.client.exists(queue)  # the queue's key carries the prefix
    assert any(key.startswith(prefix) for key in keys)
    assert any(job_id in str(event.get("args")) for event in sent), sent


def test_a_metrics_worker_starts_beside_flower_without_a_multiprocess_directory(
    scp: StorageScp,
    redis_url: str,
    job_store: RedisJobStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Installed, Flower is loaded by every celery command and imports prometheus_client
    # before the worker sets PROMETHEUS_MULTIPROC_DIR (unset here, as by default).
    _require_flower()
    queue = f"metrics-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("DISPATCH_QUEUE", queue)
    port = free_port()
    args = ["-c", "2", "-Q", queue, "--metrics-port", f"127.0.0.1:{port}"]
    with _worker(job_store, redis_url, tmp_path, *args):
        job_id = _submit(scp, redis_url, queue, tmp_path)
        final = wait_for_job(job_store, job_id, poll_s=0.1, timeout_s=WAIT_S)
        # The task counts itself done just after it finished the job: scrape until then.
        done = 'dispatch_tasks_total{state="done"} 1.0'
        deadline = time.monotonic() + WAIT_S
        scraped = ""
        while done not in scraped and time.monotonic() < deadline:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
                scraped = reply.read().decode()
            time.sleep(0.1)
    assert final.state is JobState.COMPLETED
    # Counted in a pool process, summed by the main process: multiprocess mode works.
    assert done in scraped, scraped
    assert "dispatch_files_total{destination=" in scraped


def _files_total(scraped: str) -> dict[str, float]:
    """``dispatch_files_total`` of a scrape, summed by outcome (those above 0: the series
    exist at 0 from the start)."""
    found: dict[str, float] = {}
    for line in scraped.splitlines():
        if line.startswith("dispatch_files_total{"):
            labels, value = line.rsplit(" ", 1)
            outcome = labels.split('outcome="')[1].split('"')[0]
            found[outcome] = found.get(outcome, 0.0) + float(value)
    return {outcome: total for outcome, total in found.items() if total}


def test_a_halted_jobs_metrics_count_what_its_status_counts(
    scp: StorageScp,
    redis_url: str,
    job_store: RedisJobStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    queue = f"halted-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("DISPATCH_QUEUE", queue)
    port = free_port()
    scp.respond(0xC000)  # the first file fails: the job halts, the others are not sent
    args = ["-c", "1", "-Q", queue, "--metrics-port", f"127.0.0.1:{port}"]
    with _worker(job_store, redis_url, tmp_path, *args):
        job_id = _submit(scp, redis_url, queue, tmp_path, images=3)
        final = wait_for_job(job_store, job_id, poll_s=0.1, timeout_s=WAIT_S)
        expected = {"failed": float(final.failed), "not_sent": float(final.not_sent)}
        # The task counts its outcomes as it records them; scrape until all are in.
        deadline = time.monotonic() + WAIT_S
        counted: dict[str, float] = {}
        while counted != expected and time.monotonic() < deadline:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
                counted = _files_total(reply.read().decode())
            time.sleep(0.1)
    assert final.state is JobState.HALTED
    assert (final.stored, final.failed, final.not_sent) == (0, 1, 2)
    assert counted == expected
