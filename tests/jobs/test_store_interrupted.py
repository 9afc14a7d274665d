"""The submitter's lease on an open job, and the closing of a job whose submitter died
while scanning, on both job stores (memory and real Redis)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from dispatch.errors import UnknownJob
from dispatch.jobs.backends.memory import MemoryJobStore
from dispatch.jobs.backends.redis import RedisJobStore
from dispatch.jobs.model import Chunk, FileRef, JobState
from dispatch.jobs.store import JobStore
from dispatch.outcome import FileOutcome, Outcome
from tests.jobs.support import make_spec

LEASE_S = 10.0


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> JobStore:
    if request.param == "memory":
        return MemoryJobStore()
    client: Any = request.getfixturevalue("redis_client")
    return RedisJobStore(client, prefix="t", ttl_s=3600)


def _later(seconds: float = 2 * LEASE_S) -> float:
    """A reaper's clock this long from now (no test waits for a lease)."""
    return time.time() + seconds


def _open_job(store: JobStore, job_id: str = "sub1") -> str:
    store.create_job(make_spec("127.0.0.1", 104, job_id=job_id), [], open=True)
    store.add_chunks(job_id, [Chunk("c00001", "1.2.3", (FileRef("/a/1", 100, 1),
                                                        FileRef("/a/2", 100, 2)))])  # fmt: skip
    return job_id


def test_a_held_submission_is_left_alone_until_its_lease_runs_out(store: JobStore) -> None:
    job = _open_job(store)
    assert store.hold_submission(job, LEASE_S)
    assert store.close_interrupted() == []
    assert store.progress(job).open
    assert store.close_interrupted(now=_later()) == [job]
    assert store.close_interrupted(now=_later()) == []  # each once
    p = store.progress(job)
    assert not p.open and not p.is_finished
    assert p.interrupted == "submission interrupted after 2 files"


def test_an_interrupted_job_ends_interrupted_with_its_last_chunk(store: JobStore) -> None:
    job = _open_job(store)
    store.hold_submission(job, LEASE_S)
    store.close_interrupted(now=_later())
    for path in ("/a/1", "/a/2"):
        store.record(job, FileOutcome(path, Outcome.STORED, status=0, bytes=100))
    assert store.finish_chunk(job, "c00001")
    p = store.progress(job)
    assert (p.state, p.stored, p.total_files) == (JobState.INTERRUPTED, 2, 2)


def test_an_interrupted_job_whose_chunks_are_done_ends_at_once(store: JobStore) -> None:
    job = _open_job(store)
    store.hold_submission(job, LEASE_S)
    store.finish_chunk(job, "c00001")
    assert not store.progress(job).is_finished  # open: more chunks may come
    store.close_interrupted(now=_later())
    assert store.progress(job).state is JobState.INTERRUPTED
    assert store.progress(job).is_finished


def test_a_job_closed_by_its_submitter_is_never_interrupted(store: JobStore) -> None:
    job = _open_job(store)
    store.hold_submission(job, LEASE_S)
    store.close_job(job)
    assert store.close_interrupted(now=_later()) == []
    assert store.progress(job).interrupted == ""
    assert not store.hold_submission(job, LEASE_S)  # closed: nothing more to hold


def test_a_lease_given_up_is_due_at_once(store: JobStore) -> None:
    job = _open_job(store)
    store.hold_submission(job, LEASE_S)
    store.hold_submission(job, 0.0)  # the submitter broke off
    assert store.close_interrupted(now=_later(0.1)) == [job]
    assert not store.hold_submission(job, LEASE_S)  # closed as interrupted


def test_an_open_job_without_a_lease_is_not_closed(store: JobStore) -> None:
    # The embedded mode's jobs (and jobs of older submitters) hold no lease.
    job = _open_job(store)
    assert store.close_interrupted(now=_later()) == []
    assert store.progress(job).open


def test_holding_an_unknown_job_raises(store: JobStore) -> None:
    with pytest.raises(UnknownJob):
        store.hold_submission("nope", LEASE_S)
