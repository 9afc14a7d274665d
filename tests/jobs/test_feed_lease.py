"""The submitter's lease while a job is fed: held during the scan, dropped when the
scan ends normally, given up at once when the submission breaks off."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from dispatch.jobs.backends.memory import MemoryJobStore
from dispatch.jobs.feed import feed_job
from dispatch.jobs.model import Chunk, FileRef, JobState
from tests.jobs.support import make_spec

LEASE_S = 10.0


def _chunks(count: int) -> Iterator[Chunk]:
    for n in range(count):
        yield Chunk(f"c{n:05d}", "1.2.3", (FileRef(f"/a/{n}", 100, 1),))


def test_a_scan_that_ends_closes_the_job_and_needs_no_lease_any_more() -> None:
    store = MemoryJobStore()
    spec = make_spec("127.0.0.1", 104, job_id="f1")
    fed = feed_job(store, spec, _chunks(2), on_chunks=lambda _c: None, lease_s=LEASE_S)
    assert fed.chunks == 2
    assert store.close_interrupted(now=time.time() + 2 * LEASE_S) == []
    assert store.progress("f1").interrupted == ""


def test_a_submission_broken_off_leaves_its_job_to_be_closed_as_interrupted() -> None:
    store = MemoryJobStore()
    spec = make_spec("127.0.0.1", 104, job_id="f2")

    def broken_off() -> Iterator[Chunk]:
        yield from _chunks(1)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        feed_job(store, spec, broken_off(), on_chunks=lambda _c: None, lease_s=LEASE_S)
    assert store.progress("f2").open  # not closed as if the scan had ended
    assert store.close_interrupted() == ["f2"]  # the lease was given up: due at once
    store.finish_chunk("f2", "c00000")
    p = store.progress("f2")
    assert (p.state, p.interrupted) == (
        JobState.INTERRUPTED,
        "submission interrupted after 1 files",
    )
