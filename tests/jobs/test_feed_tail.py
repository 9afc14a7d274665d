"""The chunks of the scan's end go out together: one record and one hand-out for all
of them, and a job stopped before then sends none of them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from dispatch.jobs.backends.memory import MemoryJobStore
from dispatch.jobs.feed import feed_job
from dispatch.jobs.model import Chunk, JobState
from dispatch.jobs.scan import Scanner
from dispatch.outcome import FileOutcome
from tests.jobs.support import make_spec
from tests.support.dicom_files import make_study


class CountingStore(MemoryJobStore):
    """A memory store that remembers each add_chunks call."""

    def __init__(self) -> None:
        super().__init__()
        self.added: list[list[str]] = []

    def add_chunks(self, job_id: str, chunks: Sequence[Chunk]) -> None:
        self.added.append([c.chunk_id for c in chunks])
        super().add_chunks(job_id, chunks)


def _paths(tmp_path: Path, studies: int, images: int) -> list[str]:
    return [
        str(f) for n in range(studies) for f in make_study(tmp_path / f"s{n}", images=images).files
    ]


def test_the_chunks_cut_when_the_scan_ends_are_added_and_handed_out_at_once(
    tmp_path: Path,
) -> None:
    # 6 small studies shared by 3 associations: the scan cuts every chunk at its end.
    scanner = Scanner(100, parallel=3)
    store = CountingStore()
    handed: list[list[str]] = []
    fed = feed_job(
        store,
        make_spec("127.0.0.1", 104, job_id="t1"),
        scanner.items(_paths(tmp_path, 6, 2)),
        on_chunks=lambda chunks: handed.append([c.chunk_id for c in chunks]),
        pending=scanner.pending,
        ended=scanner.ended,
    )
    assert (fed.chunks, fed.files) == (3, 12)
    assert store.added == handed == [["c00001", "c00002", "c00003"]]
    assert store.progress("t1").total_files == 12


def test_chunks_cut_during_the_scan_still_go_out_one_by_one(tmp_path: Path) -> None:
    scanner = Scanner(2)  # each study of 2 files is a chunk once the next study begins
    handed: list[list[str]] = []
    fed = feed_job(
        MemoryJobStore(),
        make_spec("127.0.0.1", 104, job_id="t2"),
        scanner.items(_paths(tmp_path, 3, 2)),
        on_chunks=lambda chunks: handed.append([c.chunk_id for c in chunks]),
        pending=scanner.pending,
        ended=scanner.ended,
    )
    assert fed.chunks == 3
    assert handed[:2] == [["c00001"], ["c00002"]]


def test_a_job_cancelled_before_the_scan_ends_hands_out_none_of_its_last_chunks(
    tmp_path: Path,
) -> None:
    store = MemoryJobStore()
    spec = make_spec("127.0.0.1", 104, job_id="t3")
    handed: list[list[str]] = []
    # A study of 4 files is a chunk as soon as it is read; the two one-file studies
    # after it are chunks of the scan's end.
    paths = [str(f) for f in make_study(tmp_path / "a", images=4).files]
    paths += _paths(tmp_path, 2, 1)
    scanner = Scanner(4)

    def items() -> Iterator[Chunk | FileOutcome]:
        for n, item in enumerate(scanner.items(paths)):
            if n == 1:  # the first chunk is out, the scan has ended: the job is cancelled
                assert scanner.ended()
                store.cancel("t3")
            yield item

    fed = feed_job(
        store,
        spec,
        items(),
        on_chunks=lambda chunks: handed.append([c.chunk_id for c in chunks]),
        pending=scanner.pending,
        ended=scanner.ended,
    )
    assert handed == [["c00001"]]
    progress = store.progress("t3")
    assert progress.state is JobState.CANCELLED
    assert (fed.chunks, progress.total_files, progress.not_sent) == (1, 6, 2)
