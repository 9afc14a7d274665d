"""Scanning inputs: grouping by study, chunking, and bad files reported (never dropped)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from dispatch.jobs.model import Chunk, FileRef
from dispatch.jobs.scan import NO_STUDY_PREFIX, Scanner, chunk, scan
from dispatch.outcome import FileOutcome, Outcome
from tests.support.dicom_files import make_file, make_study


def test_files_grouped_by_study_and_bad_files_reported(tmp_path: Path) -> None:
    one = make_study(tmp_path / "one", images=3)
    two = make_study(tmp_path / "two", images=2)
    empty = tmp_path / "empty.dcm"
    empty.write_bytes(b"")
    text = tmp_path / "notes.txt"
    text.write_text("not DICOM at all, just some words in a file")
    missing = tmp_path / "missing.dcm"
    paths = [*map(str, one.files), str(empty), *map(str, two.files), str(text), str(missing)]

    result = scan(paths)

    assert list(result.groups) == [one.study_uid, two.study_uid]
    assert [f.path for f in result.groups[one.study_uid]] == [str(p) for p in one.files]
    ref = result.groups[two.study_uid][0]
    assert (ref.size, ref.mtime_ns) == (
        two.files[0].stat().st_size,
        two.files[0].stat().st_mtime_ns,
    )
    problems = {p.path: p for p in result.problems}
    assert set(problems) == {str(empty), str(text), str(missing)}
    assert all(p.outcome is Outcome.NOT_SENT and p.reason for p in problems.values())
    assert "empty" in problems[str(empty)].reason
    assert result.files == 5


def test_file_without_study_uid_is_grouped_alone(tmp_path: Path) -> None:
    import pydicom

    path = make_file(tmp_path / "nostudy.dcm")
    ds = pydicom.dcmread(path)
    del ds.StudyInstanceUID
    ds.save_as(path)
    result = scan([str(path)])
    assert list(result.groups) == [f"{NO_STUDY_PREFIX}{path}"]


def test_chunks_hold_at_most_max_files_of_one_study(tmp_path: Path) -> None:
    one = make_study(tmp_path / "one", images=5)
    two = make_study(tmp_path / "two", images=2)
    result = scan(str(p) for p in (*one.files, *two.files))
    chunks = chunk(result.groups, 2)
    assert [(c.chunk_id, c.study_uid, len(c.files)) for c in chunks] == [
        ("c00001", one.study_uid, 2),
        ("c00002", one.study_uid, 2),
        ("c00003", one.study_uid, 1),
        ("c00004", two.study_uid, 2),
    ]


def test_scanner_yields_full_chunks_as_it_goes_then_the_rest_per_study(tmp_path: Path) -> None:
    from dispatch.outcome import FileOutcome

    one = make_study(tmp_path / "one", images=3)
    two = make_study(tmp_path / "two", images=2)
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"")
    known = FileOutcome(str(tmp_path / "gone"), Outcome.NOT_SENT, reason="cannot access file")
    order = [one.files[0], two.files[0], one.files[1], bad, one.files[2], two.files[1]]
    scanner = Scanner(2)
    seen: list[tuple[str, object]] = []
    source: list[str | FileOutcome] = [
        *map(str, order[:4]),
        known,
        *map(str, order[4:]),
        str(one.files[0]),
    ]
    for item in scanner.items(source):
        # What was yielded when: the pending files show how far the scan had gone.
        seen.append(("pending", len(scanner.pending())))
        seen.append(("item", item))
    items = [x for kind, x in seen if kind == "item"]
    chunks = [c for c in items if isinstance(c, Chunk)]
    assert [(c.chunk_id, c.study_uid, len(c.files)) for c in chunks] == [
        ("c00001", one.study_uid, 2),
        ("c00002", two.study_uid, 2),
        ("c00003", one.study_uid, 1),
    ]
    # The first chunk comes out as soon as it is full, before the rest is scanned.
    assert items[0] == chunks[0] and seen[0] == ("pending", 1)
    problems = [p for p in items if isinstance(p, FileOutcome)]
    assert [p.path for p in problems] == [str(bad), known.path]
    assert scanner.pending() == []
    assert sum(len(c.files) for c in chunks) == 5  # the path given twice: once


def _yields(scanner: Scanner, paths: list[Path]) -> list[tuple[str, int, int]]:
    """(study, files in the chunk, files scanned when it was yielded) per chunk."""
    out: list[tuple[str, int, int]] = []
    scanned = 0

    def counted() -> Iterator[str]:
        nonlocal scanned
        for path in paths:
            scanned += 1
            yield str(path)

    for item in scanner.items(counted()):
        assert isinstance(item, Chunk)
        out.append((item.study_uid, len(item.files), scanned))
    return out


def test_scanner_hands_out_a_study_once_it_has_gone_quiet(tmp_path: Path) -> None:
    one = make_study(tmp_path / "one", images=3)
    two = make_study(tmp_path / "two", images=3)
    scanner = Scanner(10, quiet_files=2)
    # Study one goes out whole once two files of study two were scanned after it.
    assert _yields(scanner, [*one.files, *two.files]) == [
        (one.study_uid, 3, 5),
        (two.study_uid, 3, 6),
    ]


def test_scanner_bounds_the_files_held_back_across_interleaved_studies(
    tmp_path: Path,
) -> None:
    one = make_study(tmp_path / "one", images=4)
    two = make_study(tmp_path / "two", images=2)
    interleaved = [one.files[0], two.files[0], one.files[1], two.files[1], *one.files[2:]]
    scanner = Scanner(10, hold_files=3)
    # The fourth file makes four held back: the largest study (one, two files) goes out
    # as it is; the rest at the end, study by study.
    assert _yields(scanner, interleaved) == [
        (one.study_uid, 2, 4),
        (two.study_uid, 2, 6),
        (one.study_uid, 2, 6),
    ]


def test_small_studies_are_packed_together_study_after_study(tmp_path: Path) -> None:
    studies = [make_study(tmp_path / f"s{n}", images=1) for n in range(5)]
    big = make_study(tmp_path / "big", images=3)
    paths = [s.files[0] for s in studies[:3]] + list(big.files) + [s.files[0] for s in studies[3:]]
    scanner = Scanner(8, quiet_files=2)  # packs studies of fewer than 8 // 4 = 2 files
    chunks = [c for c in scanner.items(map(str, paths)) if isinstance(c, Chunk)]
    assert [(c.study_uid, c.studies, len(c.files)) for c in chunks] == [
        (studies[0].study_uid, 2, 2),
        (big.study_uid, 1, 3),
        (studies[2].study_uid, 2, 2),
        (studies[4].study_uid, 1, 1),
    ]
    # Each study's files stay together, in the order the studies were handed out.
    assert [f.path for f in chunks[0].files] == [str(studies[0].files[0]), str(studies[1].files[0])]
    assert scanner.pending() == []


def test_a_pack_never_exceeds_max_files_and_nothing_scanned_goes_missing(
    tmp_path: Path,
) -> None:
    studies = [make_study(tmp_path / f"s{n}", images=2) for n in range(4)]
    paths = [str(f) for s in studies for f in s.files]
    scanner = Scanner(5, quiet_files=1, pack_files=5)
    scanned: list[str] = []

    def counted() -> Iterator[str]:
        for path in paths:
            scanned.append(path)
            yield path

    handed: list[str] = []
    sizes: list[int] = []
    for item in scanner.items(counted()):
        assert isinstance(item, Chunk)
        sizes.append(len(item.files))
        handed += [f.path for f in item.files]
        # Whenever a chunk comes out (and the caller might stop there), every file
        # scanned is in a chunk handed out or among the pending ones.
        assert sorted(handed + [f.path for f in scanner.pending()]) == sorted(scanned)
    # Two studies of two files make a pack of four; a third would make six: the pack
    # goes first.
    assert sizes == [4, 4]


def test_a_fifo_among_the_inputs_is_a_problem_and_the_rest_are_scanned(tmp_path: Path) -> None:
    study = make_study(tmp_path / "s", images=2)
    fifo = tmp_path / "pipe.dcm"
    os.mkfifo(fifo)
    paths = [str(study.files[0]), str(fifo), str(study.files[1])]
    found: list[Chunk | FileOutcome] = []
    scanner = threading.Thread(target=lambda: found.extend(Scanner(10).items(paths)), daemon=True)
    scanner.start()
    scanner.join(10)
    blocked = scanner.is_alive()
    if blocked:  # a writer lets the blocked reader go
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        scanner.join(5)
    assert not blocked
    problems = [item for item in found if isinstance(item, FileOutcome)]
    assert [(p.path, p.outcome, p.reason) for p in problems] == [
        (str(fifo), Outcome.NOT_SENT, "not a regular file: a FIFO")
    ]
    chunks = [item for item in found if isinstance(item, Chunk)]
    assert [f.path for c in chunks for f in c.files] == [str(p) for p in study.files]


def _found(order: list[tuple[int, int]]) -> list[tuple[str, FileRef, str]]:
    """What read_files would find for files (study, image) in this order."""
    return [(f"study{s}", FileRef(f"/in/{s}/{i}.dcm", 10, 1), "sc") for s, i in order]


def _cut(scanner: Scanner, order: list[tuple[int, int]]) -> list[tuple[int, set[str], int]]:
    """(files, studies, files scanned when it was yielded) per chunk."""
    scanned = 0

    def counted() -> Iterator[tuple[str, FileRef, str]]:
        nonlocal scanned
        for item in _found(order):
            scanned += 1
            yield item

    out = []
    for item in scanner.group(counted()):
        assert isinstance(item, Chunk)
        out.append((len(item.files), {f.path.split("/")[2] for f in item.files}, scanned))
    assert sum(n for n, _s, _at in out) == len(order)
    return out


def test_a_small_job_is_cut_into_one_chunk_per_association_once_scanned() -> None:
    # 100 studies of 6 images, one after the other: with 8 associations, 8 chunks of
    # whole studies, cut when the scan ended (a job this small goes out at once).
    order = [(s, i) for s in range(100) for i in range(6)]
    chunks = _cut(Scanner(1000, parallel=8), order)
    assert len(chunks) == 8
    assert all(at == 600 for _n, _s, at in chunks)
    assert max(n for n, _s, _at in chunks) <= 600 / 8 + 6
    studies = [s for _n, found, _at in chunks for s in found]
    assert len(studies) == len(set(studies)) == 100  # no study split


def test_a_chunk_holds_at_most_its_share_of_what_was_scanned() -> None:
    # One study of 40 images (more than a chunk) and 2 associations: the pieces cut
    # while scanning hold at most half of what was scanned by then.
    chunks = _cut(Scanner(10, parallel=2, pack_files=10), [(0, i) for i in range(40)])
    assert all(n <= max(1, -(-at // 2)) and n <= 10 for n, _s, at in chunks)
    assert [n for n, _s, _at in chunks][:2] == [5, 5]


def test_a_study_of_at_most_max_files_stays_in_one_chunk() -> None:
    chunks = _cut(Scanner(10, parallel=4), [(s, i) for s in range(3) for i in range(10)])
    assert sorted(n for n, _s, _at in chunks) == [10, 10, 10]
    assert all(len(found) == 1 for _n, found, _at in chunks)


def test_interleaved_studies_held_too_long_go_out_packed_not_one_by_one() -> None:
    # 20 studies of 30 images, interleaved, at most 100 held: the studies with the most
    # pending files fill a pack of pack_files rather than each making a chunk.
    order = [(s, i) for i in range(30) for s in range(20)]
    chunks = _cut(Scanner(100, parallel=2, hold_files=100, pack_files=25), order)
    assert all(n <= 100 for n, _s, _at in chunks)
    assert all(n >= 25 for n, _s, _at in chunks[:-1])
    assert len(chunks) <= 600 // 25 + 1
