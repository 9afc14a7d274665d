"""``dispatch submit`` without a broker waits out a peer that cannot be reached: the same
decision as the workers', the destination's state in the memory store."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import run_cli
from tests.support.delay_proxy import DelayProxy
from tests.support.dicom_files import make_study
from tests.support.scp import StorageScp
from tests.support.storescp import free_port

OUTAGE_S = 2.0


@pytest.fixture
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The waits of the test workers (see tests.support.cluster)."""
    monkeypatch.delenv("DISPATCH_CONFIG", raising=False)
    monkeypatch.setenv("DISPATCH_RETRY_BASE_S", "0.3")
    monkeypatch.setenv("DISPATCH_RETRY_CAP_S", "1.0")


@pytest.fixture
def late_peer(scp: StorageScp) -> Iterator[tuple[str, int]]:
    """The address of a peer that listens only after :data:`OUTAGE_S`: a relay to the
    session's SCP, started then."""
    port = free_port()
    proxy = DelayProxy(("127.0.0.1", port), (scp.host, scp.port), rtt_ms=0)
    # The outage itself: a length of time, not an awaited event.
    timer = threading.Timer(OUTAGE_S, proxy.start)
    timer.start()
    yield "127.0.0.1", port
    timer.cancel()
    timer.join()
    proxy.stop()


@pytest.mark.usefixtures("quick_backoff")
def test_a_peer_down_at_first_then_back_gets_every_file(
    scp: StorageScp, late_peer: tuple[str, int], tmp_path: Path
) -> None:
    study = make_study(tmp_path / "s", images=6)
    host, port = late_peer
    run = run_cli("submit", "--no-check", "--jobs", "2", "--chunk", "2", host, port, *study.files)
    assert run.code == 0, run.stderr
    assert "files: 6 (stored 6, failed 0, not sent 0)" in run.stdout
    stored = Counter(s.sop_instance_uid for s in scp.stores if s.status == 0)
    assert stored == Counter(study.sop_instance_uids)
    assert "connection refused" in run.stderr


@pytest.mark.usefixtures("quick_backoff")
@pytest.mark.parametrize("halt", [True, False])
def test_a_peer_that_never_comes_is_given_up_after_retry_for(tmp_path: Path, halt: bool) -> None:
    study = make_study(tmp_path / "s", images=3)
    report = tmp_path / "report.jsonl"
    options: list[str | Path] = ["--retry-for", "2s", "--report", report]
    options += [] if halt else ["--no-halt"]
    run = run_cli("submit", "--no-check", *options, "127.0.0.1", free_port(), *study.files)
    assert run.code == 1, run.stderr
    assert "files: 3 (stored 0, failed 0, not sent 3)" in run.stdout
    outcomes = [json.loads(line) for line in report.read_text().splitlines()]
    assert {o["outcome"] for o in outcomes} == {"not_sent"}
    for outcome in outcomes:
        assert outcome["reason"].startswith("association failed: cannot connect to 127.0.0.1")
        assert "connection refused" in outcome["reason"]
        assert outcome["reason"].endswith("(--retry-for 2s ran out)")


def test_a_bad_retry_for_is_a_usage_error(tmp_path: Path) -> None:
    study = make_study(tmp_path / "s", images=1)
    run = run_cli("submit", "--retry-for", "soon", "127.0.0.1", free_port(), *study.files)
    assert run.code == 1
    assert "bad --retry-for 'soon'" in run.stderr


def test_status_shows_the_destination_waited_for(redis_url: str, tmp_path: Path) -> None:
    from dispatch.jobs.redis_store import RedisJobStore
    from tests.jobs.support import chunks_of, make_spec

    store = RedisJobStore.from_url(redis_url)
    port = free_port()
    spec = make_spec("127.0.0.1", port, job_id=f"wait{port}")
    store.create_job(spec, chunks_of(make_study(tmp_path / "s", images=1).files, 10))
    store.destination_failed(spec.destination, "w1", "connection refused", 1e9, 2.0, 8.0, 0.0)
    run = run_cli("status", spec.job_id, "--broker", redis_url)
    assert run.code == 0, run.stderr
    line = run.stdout.splitlines()[1]
    assert line.startswith(f"waiting for {spec.destination} since ")
    assert line.endswith(": connection refused")
    store.destination_reached(spec.destination, "w1", 1e9 + 1)
    run = run_cli("status", spec.job_id, "--broker", redis_url)
    assert "waiting for" not in run.stdout


def test_a_loopback_peer_for_workers_is_warned_of(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISPATCH_QUEUE", f"nobody-{free_port()}")  # no worker takes it
    study = make_study(tmp_path / "s", images=1)
    run = run_cli(
        "submit", "--no-check", "--broker", redis_url, "--no-wait", "localhost", 104, *study.files
    )
    assert run.code == 0, run.stderr
    assert "peer localhost: each worker resolves it on its own host" in run.stderr
    run_cli("cancel", run.stdout.split()[0], "--broker", redis_url)
