"""``JobStore.reopen`` (what ``dispatch retry`` does), against both implementations."""

from __future__ import annotations

import pytest

from dispatch.errors import JobNotFinished, UnknownJob
from dispatch.jobs.backends.memory import MemoryJobStore
from dispatch.jobs.backends.redis import RedisJobStore
from dispatch.jobs.model import Chunk, FileRef, JobState
from dispatch.jobs.store import JobStore
from dispatch.outcome import FileOutcome, Outcome
from tests.jobs.support import confirmed, make_spec

C1, C2, C3 = "c00001", "c00002", "c00003"
PROBLEM = FileOutcome("/x/bad", Outcome.NOT_SENT, reason="bad DICOM file: empty file")
C000 = "0xC000 (Error: cannot understand)"


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> JobStore:
    if request.param == "memory":
        return MemoryJobStore()
    client = request.getfixturevalue("redis_client")
    return RedisJobStore(client, prefix="t", ttl_s=3600)


def _job(store: JobStore, *, halt: bool = False, job_id: str = "job1") -> str:
    chunks = [
        Chunk(C1, "1.2.3", (FileRef("/a/1", 100, 1), FileRef("/a/2", 200, 2))),
        Chunk(C2, "1.2.4", (FileRef("/b/1", 300, 3),)),
        Chunk(C3, "1.2.5", (FileRef("/c/1", 400, 4),)),
    ]
    store.create_job(make_spec("127.0.0.1", 104, job_id=job_id, halt=halt), chunks, [PROBLEM])
    return job_id


def _stored(path: str, size: int) -> FileOutcome:
    return FileOutcome(path, Outcome.STORED, status=0, bytes=size)


def _failed(path: str) -> FileOutcome:
    return FileOutcome(path, Outcome.FAILED, status=0xC000, reason="Error: cannot understand")


def _finish(store: JobStore, job: str, outcomes: list[FileOutcome]) -> None:
    for outcome in outcomes:
        store.record(job, outcome)
    for chunk_id in (C1, C2, C3):
        store.finish_chunk(job, chunk_id)
    assert store.progress(job).is_finished


def test_reopen_takes_back_only_the_unsuccessful_files_of_chunks(store: JobStore) -> None:
    job = _job(store)
    _finish(
        store,
        job,
        [
            _stored("/a/1", 100),
            _failed("/a/2"),
            _stored("/b/1", 300),
            FileOutcome("/c/1", Outcome.NOT_SENT, reason="changed since submission"),
        ],
    )
    assert store.progress(job).state is JobState.COMPLETED_WITH_FAILURES

    assert store.reopen(job) == [C1, C3]

    p = store.progress(job)
    assert (p.state, p.is_finished, p.chunks_done) == (JobState.QUEUED, False, 1)
    # The bad file found at submission keeps its outcome and stays counted.
    assert (p.total_files, p.stored, p.failed, p.not_sent, p.bytes_stored) == (5, 2, 0, 1, 400)
    assert p.failures == {"not sent: bad DICOM file: empty file": 1}
    assert sorted(o.path for o in store.report(job)) == ["/a/1", "/b/1", "/x/bad"]
    assert [store.chunk_done(job, c) for c in (C1, C2, C3)] == [False, True, False]
    assert confirmed(store, job, C1) == {"/a/1"}


def test_reopened_job_finishes_again_with_the_new_outcomes(store: JobStore) -> None:
    job = _job(store)
    _finish(store, job, [_stored("/a/1", 100), _failed("/a/2"), _stored("/b/1", 300)])
    store.record(job, _failed("/c/1"))
    assert store.reopen(job) == [C1, C3]
    assert store.claim_chunk(job, C1, "h", 10)
    assert store.progress(job).state is JobState.RUNNING
    store.record(job, _stored("/a/2", 200))
    store.record(job, _stored("/c/1", 400))
    assert not store.finish_chunk(job, C1)
    assert store.finish_chunk(job, C3)
    p = store.progress(job)
    assert (p.state, p.stored, p.failed, p.not_sent, p.bytes_stored) == (
        JobState.COMPLETED_WITH_FAILURES,  # the bad file is still not sent
        4,
        0,
        1,
        1000,
    )
    assert p.failures == {"not sent: bad DICOM file: empty file": 1}


def test_reopen_clears_the_halt(store: JobStore) -> None:
    job = _job(store, halt=True)
    store.record(job, _stored("/a/1", 100))
    store.record(job, _failed("/a/2"))
    assert store.halt(job, "/a/2", C000)
    halted = [FileOutcome(p, Outcome.NOT_SENT, reason="job halted") for p in ("/b/1", "/c/1")]
    _finish(store, job, halted)
    assert store.progress(job).state is JobState.HALTED

    assert store.reopen(job) == [C1, C2, C3]

    p = store.progress(job)
    assert (p.state, p.halted_path, p.halt_reason, p.finished) == (JobState.QUEUED, "", "", 0)
    assert (p.stored, p.failed, p.not_sent) == (1, 0, 1)
    assert store.stopped(job) is None
    # A new permanent failure halts it again ("first wins" starts over).
    assert store.halt(job, "/b/1", C000)
    assert store.progress(job).halted_path == "/b/1"


def test_reopen_clears_a_cancel(store: JobStore) -> None:
    job = _job(store)
    assert store.cancel(job)
    cancelled = [FileOutcome(p, Outcome.NOT_SENT, reason="job cancelled") for p in ("/b/1",)]
    _finish(store, job, [_stored("/a/1", 100), _stored("/a/2", 200), *cancelled])
    assert store.reopen(job) == [C2, C3]  # /c/1 never got an outcome: sent too
    assert store.stopped(job) is None
    assert store.progress(job).state is JobState.QUEUED


def test_reopen_restarts_the_retry_count_of_reopened_chunks(store: JobStore) -> None:
    job = _job(store)
    store.add_retry(job, C1)
    store.add_retry(job, C1)
    _finish(store, job, [_failed("/a/1"), _stored("/a/2", 200)])
    store.reopen(job)
    assert store.add_retry(job, C1) == 1
    assert store.progress(job).retries == 3


def test_nothing_to_reopen_leaves_the_job_as_it_was(store: JobStore) -> None:
    job = _job(store)
    _finish(
        store,
        job,
        [_stored("/a/1", 100), _stored("/a/2", 200), _stored("/b/1", 300), _stored("/c/1", 4)],
    )
    before = store.progress(job)
    assert store.reopen(job) == []
    after = store.progress(job)
    assert (after.state, after.finished, after.not_sent) == (before.state, before.finished, 1)


def test_reopen_refuses_a_running_job_and_an_unknown_one(store: JobStore) -> None:
    job = _job(store)
    store.record(job, _failed("/a/1"))
    store.finish_chunk(job, C1)
    with pytest.raises(JobNotFinished):
        store.reopen(job)
    assert store.chunk_done(job, C1)
    assert store.progress(job).failed == 1
    with pytest.raises(UnknownJob):
        store.reopen("nope")
