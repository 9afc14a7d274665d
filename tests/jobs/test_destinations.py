"""Destinations that cannot be reached: the shared waiting state in both job stores
(memory and real Redis) and the decisions of :mod:`dispatch.jobs.attempt` about them.
Time is passed in: nothing here sleeps."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any

import pytest

from dispatch.jobs.attempt import Backoff, Reach, attempt_chunk
from dispatch.jobs.backends.memory import MemoryJobStore
from dispatch.jobs.backends.redis import RedisJobStore
from dispatch.jobs.backoff import wait_s
from dispatch.jobs.destinations import (
    WaitingNotices,
    format_duration,
    parse_duration,
    waiting_line,
)
from dispatch.jobs.model import Chunk, JobState
from dispatch.jobs.runner import ChunkResult, ChunkStatus
from dispatch.jobs.store import JobStore
from dispatch.outcome import Outcome
from tests.jobs.support import chunks_of, make_spec
from tests.support.dicom_files import make_study

DEST = "ANY-SCP@127.0.0.1:1"
T0 = 1_700_000_000.0
BACKOFF = Backoff(1.0, 8.0)


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> JobStore:
    if request.param == "memory":
        return MemoryJobStore()
    client = request.getfixturevalue("redis_client")
    return RedisJobStore(client, prefix="t", ttl_s=3600)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def _reach(clock: Clock, worker: str) -> Reach:
    return Reach(1.0, 8.0, hold_s=5.0, worker=worker, clock=clock, rng=random.Random(7))


def _job(
    tmp_path: Path, store: JobStore, *, chunks: int = 2, retries: int = 3, retry_for_s: float = 60
) -> list[Chunk]:
    study = make_study(tmp_path / "s", images=2 * chunks)
    spec = make_spec("127.0.0.1", 1, job_id="d1", retries=retries)
    spec = dataclasses.replace(spec, retry_for_s=retry_for_s)
    found = chunks_of(study.files, 2)
    store.create_job(spec, found)
    return found


def _unreachable(chunk: Chunk) -> ChunkResult:
    return ChunkResult(
        ChunkStatus.RETRY,
        chunk.chunk_id,
        remaining=tuple(f.path for f in chunk.files),
        error="association failed: cannot connect to 127.0.0.1:1: connection refused",
        reason="association",
        unreachable=True,
    )


def _not_run() -> ChunkResult:
    raise AssertionError("the chunk was run")


# -- the shared state -------------------------------------------------------------------


def test_a_failure_makes_the_destination_wait_and_a_success_clears_it(store: JobStore) -> None:
    assert not store.destination(DEST).waiting
    first = store.destination_failed(DEST, "w1", "connection refused", T0, 1.0, 8.0, 0.5)
    assert (first.waiting, first.since, first.failures, first.error) == (
        True,
        T0,
        1,
        "connection refused",
    )
    assert first.next_try == pytest.approx(T0 + wait_s(0, 1.0, 8.0, 0.5), abs=0.002)
    second = store.destination_failed(DEST, "w2", "timed out", T0 + 1, 1.0, 8.0, 0.0)
    assert (second.since, second.failures, second.error) == (T0, 2, "timed out")
    assert second.next_try == pytest.approx(T0 + 1 + 1.0, abs=0.002)  # half of 2 s
    assert store.destination(DEST) == second
    store.destination_reached(DEST, "w3", T0 + 2)
    cleared = store.destination(DEST)
    assert not cleared.waiting and (cleared.reached_at, cleared.reached_by) == (T0 + 2, "w3")
    assert store.destination_failed(DEST, "w1", "refused", T0 + 3, 1.0, 8.0, 0.0).since == T0 + 3


def test_one_caller_at_a_time_tries_a_waiting_destination(store: JobStore) -> None:
    assert store.claim_probe(DEST, T0, 5.0)[0]  # not waiting: everybody goes
    state = store.destination_failed(DEST, "w1", "refused", T0, 1.0, 8.0, 0.0)
    assert not store.claim_probe(DEST, T0 + 0.1, 5.0)[0]  # its next try is not due
    due = state.next_try + 0.01
    assert store.claim_probe(DEST, due, 5.0)[0]
    assert not store.claim_probe(DEST, due, 5.0)[0]  # the other waits while it tries
    assert store.claim_probe(DEST, due + 5.01, 5.0)[0]  # that one died: the hold ran out


def test_waits_count_in_the_jobs_retries_only(store: JobStore, tmp_path: Path) -> None:
    chunk = _job(tmp_path, store)[0]
    assert store.add_wait("d1") == 1
    assert store.progress("d1").retries == 1
    assert store.add_retry("d1", chunk.chunk_id) == 1  # the chunk's own count starts now
    assert store.add_wait("nope") == 0


def test_waiting_line_says_since_when_until_when_and_why() -> None:
    store = MemoryJobStore()
    state = store.destination_failed(DEST, "w1", "connection refused", T0, 1.0, 8.0, 0.0)
    line = waiting_line(state)
    assert line.startswith(f"waiting for {DEST} since ")
    assert line.endswith(", next try " + line.split("next try ")[1])
    assert line.endswith(": connection refused")


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("4h", 14400), ("1d", 86400), ("2.5", 2.5)]
)
def test_durations_as_operators_write_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "-1s", "4x", "nan"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_durations_are_written_back_short() -> None:
    assert [format_duration(s) for s in (0, 0.3, 90, 5400, 14400)] == [
        "0s",
        "0.3s",
        "1m30s",
        "1h30m",
        "4h",
    ]


# -- the decisions ----------------------------------------------------------------------


def test_an_unreachable_peer_is_waited_for_not_counted_in_the_retries(
    store: JobStore, tmp_path: Path
) -> None:
    first, second = _job(tmp_path, store, retries=0)
    spec, clock = store.spec("d1"), Clock()
    reach = _reach(clock, "w1")
    decision = attempt_chunk(spec, first, store, lambda: _unreachable(first), BACKOFF, reach)
    state = store.destination(spec.destination)
    assert decision.waiting and decision.retry == 0 and not decision.hand_back
    assert decision.retry_in_s is not None
    assert state.next_try - T0 <= decision.retry_in_s <= state.next_try - T0 + 0.25
    assert "connection refused" in state.error and state.since == T0
    # Another chunk for it waits too, without a connection, until the next try.
    clock.now = T0 + 0.1
    later = attempt_chunk(spec, second, store, _not_run, BACKOFF, reach)
    assert later.waiting and later.retry_in_s is not None
    assert state.next_try - clock.now <= later.retry_in_s
    progress = store.progress("d1")
    assert (progress.retries, progress.done, progress.state) == (1, 0, JobState.QUEUED)


def test_the_peer_back_at_the_next_try_is_sent_to(store: JobStore, tmp_path: Path) -> None:
    first, _ = _job(tmp_path, store)
    spec, clock = store.spec("d1"), Clock()
    reach = _reach(clock, "w1")
    attempt_chunk(spec, first, store, lambda: _unreachable(first), BACKOFF, reach)
    clock.now = store.destination(spec.destination).next_try

    def reached() -> ChunkResult:
        reach.reached(store, spec.destination)
        return ChunkResult(ChunkStatus.DONE, first.chunk_id)

    decision = attempt_chunk(spec, first, store, reached, BACKOFF, reach)
    assert decision.result.status is ChunkStatus.DONE
    assert not store.destination(spec.destination).waiting


def test_once_retry_for_ran_out_the_files_are_not_sent_naming_the_outage(
    store: JobStore, tmp_path: Path
) -> None:
    first, second = _job(tmp_path, store, retry_for_s=30)
    spec, clock = store.spec("d1"), Clock()
    reach = _reach(clock, "w1")
    attempt_chunk(spec, first, store, lambda: _unreachable(first), BACKOFF, reach)
    clock.now = T0 + 31
    decision = attempt_chunk(spec, first, store, lambda: _unreachable(first), BACKOFF, reach)
    assert decision.retry_in_s is None
    outcomes = list(store.report("d1"))
    assert {o.outcome for o in outcomes} == {Outcome.NOT_SENT}
    reason = outcomes[0].reason
    assert reason.startswith("association failed: cannot connect to 127.0.0.1:1")
    assert f"{spec.destination} unreachable since " in reason
    assert reason.endswith("(--retry-for 30s ran out)")
    # The halt policy applies: the job halts, the other chunk's run sends nothing.
    progress = store.progress("d1")
    assert (progress.state, progress.not_sent, progress.halt_reason) == (
        JobState.HALTED,
        2,
        reason,
    )
    assert not store.chunk_done("d1", second.chunk_id)


def test_retry_for_0_gives_up_at_the_first_failure(store: JobStore, tmp_path: Path) -> None:
    first, _ = _job(tmp_path, store, retry_for_s=0)
    spec = store.spec("d1")
    reach = _reach(Clock(), "w1")
    decision = attempt_chunk(spec, first, store, lambda: _unreachable(first), BACKOFF, reach)
    assert decision.retry_in_s is None and store.progress("d1").retries == 0


def test_a_worker_that_cannot_reach_what_another_reaches_hands_its_chunks_back(
    store: JobStore, tmp_path: Path
) -> None:
    first, second = _job(tmp_path, store)
    spec, clock = store.spec("d1"), Clock()
    mine, other = _reach(clock, "w1"), _reach(clock, "w2")
    attempt_chunk(spec, first, store, lambda: _unreachable(first), BACKOFF, mine)
    assert store.destination(spec.destination).waiting  # nobody reached it: it waits
    clock.now = T0 + 0.2
    other.reached(store, spec.destination)
    clock.now = T0 + 2
    back = attempt_chunk(spec, first, store, lambda: _unreachable(first), BACKOFF, mine)
    assert back.hand_back and back.retry_in_s == 0.0 and back.pause_s > 0
    assert not store.destination(spec.destination).waiting  # the others go on
    # Its next chunk goes back at once, without a connection; the other worker sends it.
    again = attempt_chunk(spec, second, store, _not_run, BACKOFF, mine)
    assert again.hand_back
    sent = ChunkResult(ChunkStatus.DONE, second.chunk_id)
    assert attempt_chunk(spec, second, store, lambda: sent, BACKOFF, other).result == sent
    progress = store.progress("d1")
    assert (progress.retries, progress.not_sent) == (1, 0)  # hand-backs count nothing


def test_when_nobody_reaches_the_peer_no_chunk_is_handed_back(
    store: JobStore, tmp_path: Path
) -> None:
    first, second = _job(tmp_path, store)
    spec, clock = store.spec("d1"), Clock()
    one, two = _reach(clock, "w1"), _reach(clock, "w2")
    one.reached(store, spec.destination)  # long ago
    clock.now = T0 + 100
    a = attempt_chunk(spec, first, store, lambda: _unreachable(first), BACKOFF, one)
    clock.now = store.destination(spec.destination).next_try
    b = attempt_chunk(spec, second, store, lambda: _unreachable(second), BACKOFF, two)
    assert a.waiting and b.waiting and not (a.hand_back or b.hand_back)
    assert store.destination(spec.destination).failures == 2


def test_a_rejected_association_waits_and_is_never_handed_back(
    store: JobStore, tmp_path: Path
) -> None:
    first, _ = _job(tmp_path, store)
    spec, clock = store.spec("d1"), Clock()
    mine, other = _reach(clock, "w1"), _reach(clock, "w2")
    other.reached(store, spec.destination)
    rejected = dataclasses.replace(_unreachable(first), unreachable=False,
                                   error="association failed: rejected-transient")  # fmt: skip
    decision = attempt_chunk(spec, first, store, lambda: rejected, BACKOFF, mine)
    assert decision.waiting and not decision.hand_back
    assert store.destination(spec.destination).error == "rejected-transient"


def test_the_reach_of_each_worker_is_its_own(redis_client: Any) -> None:
    store = RedisJobStore(redis_client, prefix="t", ttl_s=3600)
    clock = Clock()
    one, two = _reach(clock, "w1"), _reach(clock, "w2")
    one.local.failed(DEST, T0)
    one.local.back_off(DEST, T0)
    assert one.local.until(DEST) > T0 and two.local.until(DEST) == 0
    one.reached(store, DEST)
    assert one.local.until(DEST) == 0 and store.destination(DEST).reached_by == "w1"


def test_the_waiting_gauge_says_since_when_per_destination() -> None:
    from dispatch.metrics import DESTINATION_WAITING, ScrapeTimeGauges

    gauges = ScrapeTimeGauges(destinations_waiting=lambda: {DEST: T0, "B@h:1": 0.0})
    (family,) = list(gauges.collect())
    assert family.name == DESTINATION_WAITING
    assert {s.labels["destination"]: s.value for s in family.samples} == {DEST: T0, "B@h:1": 0}

    def away() -> dict[str, float]:
        raise ConnectionError("redis away")

    assert list(ScrapeTimeGauges(destinations_waiting=away).collect()) == []


def test_a_watched_job_says_when_its_destination_waits_and_when_it_is_back(
    store: JobStore,
) -> None:
    lines: list[str] = []
    notices = WaitingNotices(store.destination, lines.append, every_s=0)
    snapshot = dataclasses.make_dataclass("Snapshot", ["destination"])("PACS@10.0.0.5:104")
    notices(snapshot)
    assert lines == []  # reachable, as far as known: nothing to say
    store.destination_failed(
        "PACS@10.0.0.5:104", "w1", "connection refused", 1000.0, 2.0, 60.0, 0.0
    )
    notices(snapshot)
    notices(snapshot)  # the same state: said once
    assert len(lines) == 1
    assert lines[0].startswith("waiting for PACS@10.0.0.5:104 since ")
    assert lines[0].endswith(": connection refused")
    store.destination_failed(
        "PACS@10.0.0.5:104", "w2", "connection refused", 1003.0, 2.0, 60.0, 0.0
    )
    notices(snapshot)  # the next try moved
    assert len(lines) == 2
    store.destination_reached("PACS@10.0.0.5:104", "w1", 1010.0)
    notices(snapshot)
    assert lines[-1] == "PACS@10.0.0.5:104 reached again"
