"""The job store's storage commitment records, against both implementations (memory
and real Redis): transactions found by UID from any store on the same records, states
counted in the progress, the rules of which state wins."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from dispatch.commitment import CommitmentReport, CommitState
from dispatch.jobs.backends.memory import MemoryJobStore
from dispatch.jobs.backends.redis import RedisJobStore
from dispatch.jobs.model import Chunk, FileRef
from dispatch.jobs.store import JobStore
from dispatch.outcome import FileOutcome, Outcome
from tests.jobs.support import make_spec

PATHS = ("/a/1", "/a/2", "/a/3")
UIDS = ("1.2.9.1", "1.2.9.2", "1.2.9.3")


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> JobStore:
    if request.param == "memory":
        return MemoryJobStore()
    client = request.getfixturevalue("redis_client")
    return RedisJobStore(client, prefix="tc", ttl_s=3600)


def _job(store: JobStore, commit: bool = True) -> str:
    spec = make_spec("127.0.0.1", 104, job_id="cj1")
    if commit:
        spec = dataclasses.replace(spec, commit_timeout_s=5.0)
    files = tuple(FileRef(p, 10, 1) for p in PATHS)
    store.create_job(spec, [Chunk("c1", "1.2.3", files)])
    ct = "1.2.840.10008.5.1.4.1.1.2"
    store.record_many(
        "cj1",
        [FileOutcome(p, Outcome.STORED, status=0, bytes=10, sop_class_uid=ct,
                     sop_instance_uid=u) for p, u in zip(PATHS, UIDS, strict=True)],
    )  # fmt: skip
    return "cj1"


def test_a_job_with_commit_says_so_and_counts_nothing_yet(store: JobStore) -> None:
    job = _job(store)
    p = store.progress(job)
    assert p.commit and (p.committed, p.commit_failed, p.commit_pending) == (0, 0, 0)
    assert not p.commit_settled
    assert [o.path for o in store.chunk_report(job, "c1")] == list(PATHS)


def test_a_job_without_commit_is_settled(store: JobStore) -> None:
    p = store.progress(_job(store, commit=False))
    assert not p.commit and p.commit_settled


def test_a_report_finds_its_job_and_files_by_transaction(store: JobStore) -> None:
    job = _job(store)
    store.commit_requested(job, "c1", "2.25.1", dict(zip(UIDS, PATHS, strict=True)))
    report = CommitmentReport("2.25.1", frozenset(UIDS[:2]), {UIDS[2]: 0x0112})
    assert store.commit_reported(report) == job
    assert store.wait_commit_report("2.25.1", 0.0) == report
    p = store.progress(job)
    assert (p.committed, p.commit_failed, p.commit_pending) == (2, 1, 0)
    assert p.commit_settled
    assert store.commitment(job, list(PATHS)) == {
        "/a/1": ("committed", ""),
        "/a/2": ("committed", ""),
        "/a/3": ("commit_failed", "0x0112 (no such object instance)"),
    }


def test_a_report_of_an_unknown_transaction_records_nothing(store: JobStore) -> None:
    job = _job(store)
    assert store.commit_reported(CommitmentReport("2.25.404", frozenset(UIDS))) is None
    assert store.progress(job).committed == 0


def test_a_waiting_runner_gets_the_report_when_it_comes(store: JobStore) -> None:
    job = _job(store)
    store.commit_requested(job, "c1", "2.25.2", dict(zip(UIDS, PATHS, strict=True)))
    assert store.wait_commit_report("2.25.2", 0.05) is None
    report = CommitmentReport("2.25.2", frozenset(UIDS))
    found: list[CommitmentReport | None] = []
    waiter = threading.Thread(target=lambda: found.append(store.wait_commit_report("2.25.2", 30)))
    waiter.start()
    store.commit_reported(report)
    waiter.join(30)
    assert found == [report]


def test_pending_never_replaces_what_the_same_transaction_reported(store: JobStore) -> None:
    job = _job(store)
    store.commit_requested(job, "c1", "2.25.3", dict(zip(UIDS, PATHS, strict=True)))
    store.commit_reported(CommitmentReport("2.25.3", frozenset(UIDS[:1]), {UIDS[1]: None}))
    pending = (CommitState.PENDING, "no storage commitment report in time")
    store.record_commitment(job, "2.25.3", dict.fromkeys(PATHS, pending))
    states = store.commitment(job, list(PATHS))
    assert [s for s, _ in (states[p] for p in PATHS)] == [
        "committed", "commit_failed", "commit_pending"]  # fmt: skip
    # A later transaction's answer replaces a failure, never a commitment.
    store.record_commitment(job, "2.25.4", dict.fromkeys(PATHS, (CommitState.FAILED, "x")))
    p = store.progress(job)
    assert (p.committed, p.commit_failed, p.commit_pending) == (1, 2, 0)
