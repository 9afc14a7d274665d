"""The JobStore contract, run against both implementations (memory and real Redis)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from dispatch.errors import UnknownJob
from dispatch.jobs.backends.memory import MemoryJobStore
from dispatch.jobs.backends.redis import RedisJobStore
from dispatch.jobs.model import Chunk, FileRef, JobState
from dispatch.jobs.store import JobStore
from dispatch.outcome import FileOutcome, Outcome
from tests.jobs.support import chunk_ids, confirmed, make_spec


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> JobStore:
    if request.param == "memory":
        return MemoryJobStore()
    client = request.getfixturevalue("redis_client")
    return RedisJobStore(client, prefix="t", ttl_s=3600)


def _chunks() -> list[Chunk]:
    a = (FileRef("/a/1", 100, 1), FileRef("/a/2", 200, 2))
    b = (FileRef("/b/1", 300, 3),)
    return [Chunk("c00001", "1.2.3", a), Chunk("c00002", "1.2.4", b)]


def _job(store: JobStore, job_id: str = "job1", halt: bool = True) -> str:
    store.create_job(make_spec("127.0.0.1", 104, job_id=job_id, halt=halt), _chunks())
    return job_id


def stored(path: str, size: int = 100) -> FileOutcome:
    return FileOutcome(path, Outcome.STORED, status=0, bytes=size)


def test_created_job_is_queued_with_totals(store: JobStore) -> None:
    job = _job(store)
    p = store.progress(job)
    assert (p.state, p.total_files, p.total_bytes, p.chunks, p.done) == (
        JobState.QUEUED,
        3,
        600,
        2,
        0,
    )
    assert store.spec(job).job_id == job
    assert store.chunk(job, "c00002") == _chunks()[1]
    assert chunk_ids(store, job) == ["c00001", "c00002"]


def test_unknown_job_raises(store: JobStore) -> None:
    with pytest.raises(UnknownJob):
        store.progress("nope")
    with pytest.raises(UnknownJob):
        store.spec("nope")


def test_record_counts_and_confirms(store: JobStore) -> None:
    job = _job(store)
    assert store.record(job, stored("/a/1", 100))
    failed = FileOutcome("/a/2", Outcome.FAILED, status=0xC000, reason="Error")
    assert store.record(job, failed)
    p = store.progress(job)
    assert (p.stored, p.failed, p.not_sent, p.bytes_stored) == (1, 1, 0, 100)
    assert p.failures == {"0xC000 (Error: cannot understand)": 1}
    assert confirmed(store, job, "c00001") == {"/a/1"}
    assert store.settled(job, ["/a/1", "/a/2", "/a/3"]) == {"/a/1", "/a/2"}
    assert store.settled(job, []) == set()


def test_stored_file_is_never_overwritten_nor_counted_twice(store: JobStore) -> None:
    job = _job(store)
    assert store.record(job, stored("/a/1", 100))
    assert not store.record(job, stored("/a/1", 100))
    assert not store.record(job, FileOutcome("/a/1", Outcome.FAILED, status=0xC000))
    p = store.progress(job)
    assert (p.stored, p.failed, p.bytes_stored) == (1, 0, 100)
    assert [o.outcome for o in store.report(job)] == [Outcome.STORED]


def test_record_many_records_in_order_as_record_does(store: JobStore) -> None:
    job = _job(store)
    assert store.record(job, stored("/a/1", 100))
    outcomes = [
        stored("/a/1", 100),  # already stored: nothing changes
        FileOutcome("/a/2", Outcome.FAILED, status=0xC000, reason="Error"),
        stored("/a/2", 200),  # a later success replaces the failure
        stored("/b/1", 300),
    ]
    assert store.record_many(job, outcomes) == [False, True, True, True]
    assert store.record_many(job, []) == []
    p = store.progress(job)
    assert (p.stored, p.failed, p.not_sent, p.bytes_stored, p.failures) == (3, 0, 0, 600, {})
    assert store.settled(job, ["/a/1", "/a/2"]) == {"/a/1", "/a/2"}
    assert store.record_many("nope", [stored("/x")]) == [False]


def test_later_success_replaces_a_failure_in_the_counters(store: JobStore) -> None:
    job = _job(store)
    store.record(job, FileOutcome("/a/2", Outcome.FAILED, status=0xC000))
    store.record(job, stored("/a/2", 200))
    p = store.progress(job)
    assert (p.stored, p.failed, p.failures) == (1, 0, {})


def test_report_round_trips_every_outcome(store: JobStore) -> None:
    job = _job(store)
    outcomes = [
        stored("/a/1"),
        FileOutcome("/a/2", Outcome.FAILED, status=0xA900, reason="mismatch"),
        FileOutcome("/b/1", Outcome.NOT_SENT, reason="bad DICOM file"),
    ]
    for outcome in outcomes:
        store.record(job, outcome)
    assert sorted(store.report(job), key=lambda o: o.path) == outcomes


def test_first_halt_wins_and_stops_the_job(store: JobStore) -> None:
    job = _job(store)
    assert store.stopped(job) is None
    assert store.halt(job, "/a/2", "0xC000 (Error: cannot understand)")
    assert not store.halt(job, "/b/1", "later")
    p = store.progress(job)
    assert (p.state, p.halted_path, p.halt_reason) == (
        JobState.HALTED,
        "/a/2",
        "0xC000 (Error: cannot understand)",
    )
    assert store.stopped(job) is JobState.HALTED


def test_cancel_stops_the_job_until_it_is_finished(store: JobStore) -> None:
    job = _job(store)
    assert store.cancel(job)
    assert store.stopped(job) is JobState.CANCELLED
    store.finish_chunk(job, "c00001")
    assert store.finish_chunk(job, "c00002")
    assert store.progress(job).state is JobState.CANCELLED
    assert not store.cancel(job)


@pytest.mark.parametrize(
    ("outcomes", "state"),
    [
        (["stored", "stored", "stored"], JobState.COMPLETED),
        (["stored", "failed", "stored"], JobState.COMPLETED_WITH_FAILURES),
        (["failed", "not_sent", "failed"], JobState.FAILED),
    ],
)
def test_state_machine_to_the_final_state(
    store: JobStore, outcomes: list[str], state: JobState
) -> None:
    job = _job(store)
    assert store.claim_chunk(job, "c00001", "h", 10)
    assert store.progress(job).state is JobState.RUNNING
    for path, kind in zip(["/a/1", "/a/2", "/b/1"], outcomes, strict=True):
        store.record(job, FileOutcome(path, Outcome(kind), status=0 if kind == "stored" else None))
    assert not store.finish_chunk(job, "c00001")
    assert not store.progress(job).is_finished
    assert store.finish_chunk(job, "c00002")
    assert not store.finish_chunk(job, "c00002")
    p = store.progress(job)
    assert p.state is state and p.is_finished and p.chunks_done == 2


def test_problems_are_counted_at_creation(store: JobStore) -> None:
    problem = FileOutcome("/x/bad", Outcome.NOT_SENT, reason="bad DICOM file: empty file")
    store.create_job(make_spec("127.0.0.1", 104, job_id="j2"), _chunks(), [problem])
    p = store.progress("j2")
    assert (p.total_files, p.not_sent) == (4, 1)
    assert list(store.report("j2")) == [problem]


def test_job_without_chunks_is_finished_at_once(store: JobStore) -> None:
    problem = FileOutcome("/x/bad", Outcome.NOT_SENT, reason="bad")
    store.create_job(make_spec("127.0.0.1", 104, job_id="j3"), [], [problem])
    p = store.progress("j3")
    assert p.is_finished and p.state is JobState.FAILED


def test_chunk_lock_admits_one_holder(store: JobStore) -> None:
    job = _job(store)
    assert store.claim_chunk(job, "c00001", "first", 10)
    assert not store.claim_chunk(job, "c00001", "second", 10)
    assert store.renew_chunk(job, "c00001", "first", 10)
    assert not store.renew_chunk(job, "c00001", "second", 10)
    store.release_chunk(job, "c00001", "second")
    assert not store.claim_chunk(job, "c00001", "second", 10)
    store.release_chunk(job, "c00001", "first")
    assert store.claim_chunk(job, "c00001", "second", 10)


def _wait(condition: Callable[[], Any], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.02)


def test_expired_lease_is_reaped_once_and_finished_chunks_never(store: JobStore) -> None:
    job = _job(store)
    assert store.claim_chunk(job, "c00001", "dead", 0.2)
    assert store.claim_chunk(job, "c00002", "alive", 0.2)
    store.finish_chunk(job, "c00002")
    assert store.reap() == []
    # A lease is time: the holder stops renewing and it runs out.
    reaped: list[tuple[str, str]] = []

    def reap_some() -> list[tuple[str, str]]:
        reaped.extend(store.reap())
        return reaped

    _wait(reap_some)
    assert reaped == [(job, "c00001")]
    assert store.reap(now=time.time() + 60) == []


def test_deferred_chunk_is_reaped_only_after_its_deadline(store: JobStore) -> None:
    job = _job(store)
    store.defer_chunk(job, "c00001", time.time() + 60)
    assert store.reap() == []
    assert store.reap(now=time.time() + 61) == [(job, "c00001")]


def test_retries_are_counted_per_chunk(store: JobStore) -> None:
    job = _job(store)
    assert store.add_retry(job, "c00001") == 1
    assert store.add_retry(job, "c00001") == 2
    assert store.add_retry(job, "c00002") == 1
    assert store.progress(job).retries == 3


def test_recent_jobs_newest_first(store: JobStore) -> None:
    for n in range(3):
        _job(store, f"job{n}")
        time.sleep(0.002)  # distinct creation times
    assert [p.job_id for p in store.jobs(limit=2)] == ["job2", "job1"]


def test_redis_job_keys_expire_and_activity_renews_them(redis_client: Any) -> None:
    store = RedisJobStore(redis_client, prefix="t", ttl_s=100)
    _job(store)
    assert 0 < redis_client.pttl("t:job:job1:meta") <= 100_000
    redis_client.pexpire("t:job:job1:meta", 5_000)
    store.record("job1", stored("/a/1"))
    for part in ("meta", "codes", "chunks"):
        assert redis_client.pttl(f"t:job:job1:{part}") > 50_000


# -- open jobs: chunks added while the inputs are scanned ------------------------------


def _open_job(store: JobStore, job_id: str = "open1", halt: bool = True) -> str:
    store.create_job(make_spec("127.0.0.1", 104, job_id=job_id, halt=halt), [], open=True)
    return job_id


def test_open_job_takes_chunks_and_their_totals(store: JobStore) -> None:
    job = _open_job(store)
    p = store.progress(job)
    assert (p.open, p.is_finished, p.total_files, p.chunks) == (True, False, 0, 0)
    first, second = _chunks()
    store.add_chunks(job, [first])
    p = store.progress(job)
    assert (p.open, p.total_files, p.total_bytes, p.chunks) == (True, 2, 300, 1)
    store.add_chunks(job, [second])
    assert chunk_ids(store, job) == ["c00001", "c00002"]
    assert store.chunk(job, "c00002") == second
    p = store.progress(job)
    assert (p.total_files, p.total_bytes, p.chunks) == (3, 600, 2)
    with pytest.raises(UnknownJob):
        store.add_chunks("nope", [first])


def test_open_job_does_not_finish_with_its_last_chunk_so_far(store: JobStore) -> None:
    job = _open_job(store)
    store.add_chunks(job, [_chunks()[0]])
    store.record_many(job, [stored("/a/1"), stored("/a/2", 200)])
    assert not store.finish_chunk(job, "c00001")
    p = store.progress(job)
    assert not p.is_finished and p.state is not JobState.COMPLETED and p.chunks_done == 1
    # Closing finishes it: every chunk is done already.
    assert store.close_job(job)
    p = store.progress(job)
    assert (p.open, p.is_finished, p.state, p.total_files) == (False, True, JobState.COMPLETED, 2)


def test_closed_job_finishes_with_its_last_chunk(store: JobStore) -> None:
    job = _open_job(store)
    store.add_chunks(job, _chunks())
    problem = FileOutcome("/x/bad", Outcome.NOT_SENT, reason="bad DICOM file: empty file")
    assert not store.close_job(job, [problem])
    p = store.progress(job)
    assert (p.open, p.is_finished, p.total_files, p.not_sent) == (False, False, 4, 1)
    store.record_many(job, [stored("/a/1"), stored("/a/2", 200), stored("/b/1", 300)])
    assert not store.finish_chunk(job, "c00001")
    assert store.finish_chunk(job, "c00002")
    p = store.progress(job)
    assert (p.state, p.stored, p.not_sent) == (JobState.COMPLETED_WITH_FAILURES, 3, 1)
    assert problem in list(store.report(job))


def test_open_job_halted_while_scanning_ends_halted_once_closed(store: JobStore) -> None:
    job = _open_job(store)
    store.add_chunks(job, [_chunks()[0]])
    assert store.halt(job, "/x/bad", "bad DICOM file")
    assert store.stopped(job) is JobState.HALTED
    store.finish_chunk(job, "c00001")
    assert not store.progress(job).is_finished
    assert store.close_job(job, [FileOutcome("/x/bad", Outcome.NOT_SENT, reason="bad DICOM file")])
    p = store.progress(job)
    assert (p.state, p.halted_path, p.not_sent) == (JobState.HALTED, "/x/bad", 1)


def test_closing_an_unknown_job_raises(store: JobStore) -> None:
    with pytest.raises(UnknownJob):
        store.close_job("nope")


def test_redis_waiters_wake_when_the_job_finishes(redis_client: Any) -> None:
    store = RedisJobStore(redis_client, prefix="t", ttl_s=100)
    job = _open_job(store)
    store.add_chunks(job, [_chunks()[1]])
    assert not store.wait_finished(job, 0.05)
    store.finish_chunk(job, "c00002")
    assert not store.wait_finished(job, 0.05)  # still open
    store.close_job(job)
    assert store.wait_finished(job, 1.0)
    assert store.wait_finished(job, 1.0)  # every waiter sees it


def test_bytes_in_flight_are_summed_over_chunks_until_each_file_lands(store: JobStore) -> None:
    spec = make_spec("127.0.0.1", 104, job_id="fly")
    chunks = [Chunk(f"c{n}", "1.2.3", (FileRef(f"/a/{n}", 100, n),)) for n in range(2)]
    store.create_job(spec, chunks)
    store.file_in_flight("fly", "c0", 3_000_000)
    store.file_in_flight("fly", "c1", 1_000_000)
    store.file_in_flight("fly", "c0", 5_000_000)  # the same file, further on
    assert store.progress("fly").bytes_in_flight == 6_000_000
    store.file_in_flight("fly", "c0", 0)
    assert store.progress("fly").bytes_in_flight == 1_000_000
    store.file_in_flight("fly", "c1", 0)
    assert store.progress("fly").bytes_in_flight == 0
