"""The retry decision and its guard (:mod:`dispatch.jobs.attempt`), on the job stores."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from dispatch.errors import BrokerUnavailable
from dispatch.jobs.attempt import Backoff, attempt_chunk
from dispatch.jobs.model import Chunk, JobSpec, JobState
from dispatch.jobs.redis_store import RedisJobStore
from dispatch.jobs.runner import ChunkResult, ChunkStatus
from dispatch.jobs.store import JobStore, MemoryJobStore
from dispatch.outcome import Outcome
from tests.jobs.support import chunks_of, make_spec
from tests.support.dicom_files import make_study

NO_WAIT = Backoff(0.0, 0.0)


def _job(tmp_path: Path, store: JobStore, *, retries: int = 2, halt: bool = False) -> Chunk:
    study = make_study(tmp_path / "s", images=3)
    spec = make_spec("127.0.0.1", 1, job_id="a1", retries=retries, halt=halt)
    (chunk,) = chunks_of(study.files, 10)
    store.create_job(spec, [chunk])
    return chunk


def _spec(store: JobStore) -> JobSpec:
    return store.spec("a1")


def _transient(chunk: Chunk) -> ChunkResult:
    paths = tuple(f.path for f in chunk.files)
    return ChunkResult(ChunkStatus.RETRY, chunk.chunk_id, remaining=paths,
                       error="association failed: refused")  # fmt: skip


def test_a_transient_failure_is_retried_until_the_retries_are_spent(tmp_path: Path) -> None:
    store = MemoryJobStore()
    chunk = _job(tmp_path, store, retries=2)
    decisions = [
        attempt_chunk(_spec(store), chunk, store, lambda: _transient(chunk), Backoff(1.0, 10.0))
        for _ in range(3)
    ]
    assert [d.retry for d in decisions] == [1, 2, 0]
    assert [d.retry_in_s is not None for d in decisions] == [True, True, False]
    assert all(0.0 <= (d.retry_in_s or 0.0) <= 2.0 for d in decisions)
    assert decisions[-1].job_finished
    final = store.progress("a1")
    assert (final.not_sent, final.state) == (3, JobState.FAILED)


def test_no_retries_allowed_gives_up_at_once_counting_none(tmp_path: Path) -> None:
    store = MemoryJobStore()
    chunk = _job(tmp_path, store, retries=0)
    decision = attempt_chunk(_spec(store), chunk, store, lambda: _transient(chunk), NO_WAIT)
    assert decision.retry_in_s is None and decision.job_finished
    assert store.progress("a1").retries == 0


def test_a_chunk_held_elsewhere_is_looked_at_later(tmp_path: Path) -> None:
    store = MemoryJobStore()
    chunk = _job(tmp_path, store)
    busy = ChunkResult(ChunkStatus.BUSY, chunk.chunk_id)
    decision = attempt_chunk(_spec(store), chunk, store, lambda: busy, NO_WAIT)
    assert decision.later and decision.retry_in_s is None
    assert not store.chunk_done("a1", chunk.chunk_id)


def _raise(exc: Exception) -> Any:
    raise exc


def test_an_unexpected_exception_records_every_file_and_finishes_the_chunk(
    tmp_path: Path,
) -> None:
    store = MemoryJobStore()
    chunk = _job(tmp_path, store, halt=True)
    first = chunk.files[0].path
    store.claim_chunk("a1", chunk.chunk_id, "crashed", 10.0)
    store.release_chunk("a1", chunk.chunk_id, "crashed")
    decision = attempt_chunk(_spec(store), chunk, store, lambda: _raise(ValueError("odd")), NO_WAIT)
    reason = "internal error: ValueError: odd"
    assert decision.internal_error == reason and decision.job_finished
    outcomes = {o.path: o for o in store.report("a1")}
    assert outcomes[first].outcome is Outcome.FAILED
    assert {o.outcome for p, o in outcomes.items() if p != first} == {Outcome.NOT_SENT}
    assert {o.reason for o in outcomes.values()} == {reason}
    final = store.progress("a1")
    assert (final.state, final.halted_path, final.chunks_done) == (JobState.HALTED, first, 1)
    # Finished: its lease is no longer watched, nobody hands the chunk on.
    assert store.reap(now=1e12) == []


def test_a_path_the_store_cannot_hold_does_not_keep_the_chunk_running(
    tmp_path: Path, redis_client: Any
) -> None:
    store = RedisJobStore(redis_client, prefix="t", ttl_s=100)
    study = make_study(tmp_path / "s", images=2)
    odd = os.fsencode(str(study.files[0].parent)) + b"/\xff.dcm"
    os.rename(study.files[0], odd)
    chunks = chunks_of([os.fsdecode(odd), study.files[1]], 10)
    spec = make_spec("127.0.0.1", 1, job_id="a1", halt=True)
    store.create_job(spec, chunks)
    (chunk,) = chunks

    def run() -> ChunkResult:
        store.settled("a1", [f.path for f in chunk.files])  # raises: not UTF-8
        raise AssertionError("not reached")

    decision = attempt_chunk(spec, chunk, store, run, NO_WAIT)
    assert decision.internal_error.startswith("internal error: UnicodeEncodeError")
    assert decision.job_finished
    outcomes = {o.path: o.outcome for o in store.report("a1")}
    printable = str(study.files[0].parent) + "/\\xff.dcm"
    assert outcomes == {printable: Outcome.FAILED, str(study.files[1]): Outcome.NOT_SENT}
    final = store.progress("a1")
    assert final.is_finished and final.done == final.total_files == 2
    assert final.halted_path == printable


def test_the_store_away_is_no_internal_error_of_the_chunk(tmp_path: Path) -> None:
    # Redis away for a moment: nothing is recorded as failed (it may be back by the
    # time the guard would record), the run's error goes up, the lease hands it on.
    store = MemoryJobStore()
    chunk = _job(tmp_path, store)

    def away() -> ChunkResult:
        raise BrokerUnavailable("Connection refused")

    with pytest.raises(BrokerUnavailable):
        attempt_chunk(_spec(store), chunk, store, away, NO_WAIT)
    progress = store.progress("a1")
    assert (progress.done, progress.chunks_done, progress.is_finished) == (0, 0, False)
