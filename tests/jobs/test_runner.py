"""run_chunk and the embedded mode against a real Storage SCP (no broker)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import pydicom
import pytest

from dispatch.jobs.model import JobState
from dispatch.jobs.runner import REPLY_GRACE_S, ChunkStatus, run_chunk
from dispatch.jobs.slots import MemorySlots
from dispatch.jobs.store import MemoryJobStore
from dispatch.outcome import FileOutcome, Outcome
from tests.jobs.support import chunks_of, make_spec
from tests.support.dicom_files import make_study
from tests.support.jobs import run_embedded
from tests.support.scp import StorageScp
from tests.support.storescp import free_port


def test_embedded_job_sends_every_file_once(scp: StorageScp, tmp_path: Path) -> None:
    studies = [make_study(tmp_path / f"s{n}", images=3) for n in range(3)]
    files = [f for s in studies for f in s.files]
    spec = make_spec(scp.host, scp.port, job_id="emb1", max_associations=2)
    seen: list[Outcome] = []
    final = run_embedded(
        spec, chunks_of(files, 2), jobs=2, on_progress=lambda o: seen.append(o.outcome)
    )
    assert final.state is JobState.COMPLETED and final.is_finished
    assert (final.stored, final.total_files, final.chunks_done) == (9, 9, 6)
    counts = Counter(s.sop_instance_uid for s in scp.stores)
    assert set(counts) == {uid for s in studies for uid in s.sop_instance_uids}
    assert set(counts.values()) == {1}
    assert seen == [Outcome.STORED] * 9
    assert scp.max_concurrent <= 2


def test_embedded_retries_0xA700_and_stores_the_file_once(scp: StorageScp, tmp_path: Path) -> None:
    study = make_study(tmp_path / "s", images=3)
    scp.respond(0xA700)
    spec = make_spec(scp.host, scp.port, job_id="emb2")
    final = run_embedded(spec, chunks_of(study.files, 10), retry_base_s=0.05, retry_cap_s=0.1)
    assert final.state is JobState.COMPLETED and final.retries == 1
    ok = Counter(s.sop_instance_uid for s in scp.stores if s.status == 0)
    assert ok == Counter(study.sop_instance_uids)
    assert [s.status for s in scp.stores].count(0xA700) == 1


def test_embedded_gives_up_once_the_peer_was_waited_for_long_enough(tmp_path: Path) -> None:
    study = make_study(tmp_path / "s", images=2)
    spec = make_spec("127.0.0.1", free_port(), job_id="emb3", retries=1)
    spec = dataclasses.replace(spec, retry_for_s=0.3)
    final = run_embedded(spec, chunks_of(study.files, 10), retry_base_s=0.01, retry_cap_s=0.02)
    assert final.state is JobState.HALTED
    assert final.not_sent == 2 and final.retries >= 2
    store_reasons = {key for key in final.failures}
    assert store_reasons and all(
        "association failed: cannot connect" in key and "(--retry-for 0.3s ran out)" in key
        for key in store_reasons
    ), store_reasons


def test_file_changed_since_submission_is_a_failure_that_halts(
    scp: StorageScp, tmp_path: Path
) -> None:
    study = make_study(tmp_path / "s", images=3)
    chunks = chunks_of(study.files, 10)
    with study.files[0].open("ab") as handle:
        handle.write(b"\0\0")
    os.utime(study.files[0])
    store = MemoryJobStore()
    spec = make_spec(scp.host, scp.port, job_id="r1", halt=True)
    store.create_job(spec, chunks)
    result = run_chunk(spec, chunks[0], store, MemorySlots())
    assert result.status is ChunkStatus.DONE and result.job_finished
    report = {o.path: o for o in store.report("r1")}
    assert report[str(study.files[0])].reason == "changed since submission"
    assert {o.reason for p, o in report.items() if p != str(study.files[0])} == {"job halted"}
    assert store.progress("r1").halted_path == str(study.files[0])
    assert scp.stores == []


def test_files_replaced_by_fifos_are_refused_without_blocking(
    scp: StorageScp, tmp_path: Path
) -> None:
    # The first file is checked before the association opens, the third while the
    # second is stored: neither check may wait for a writer to open the FIFO.
    study = make_study(tmp_path / "s", images=3)
    chunks = chunks_of(study.files, 10)
    fifos = [study.files[0], study.files[2]]
    for path in fifos:
        path.unlink()
        os.mkfifo(path)
    store = MemoryJobStore()
    spec = make_spec(scp.host, scp.port, job_id="r11", halt=False)
    store.create_job(spec, chunks)
    runner = threading.Thread(
        target=run_chunk, args=(spec, chunks[0], store, MemorySlots()), daemon=True
    )
    runner.start()
    runner.join(10)
    blocked = runner.is_alive()
    if blocked:  # a writer lets the blocked reader go, and the run end
        for path in fifos:
            with contextlib.suppress(OSError):
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        runner.join(5)
    assert not blocked
    report = {o.path: o for o in store.report("r11")}
    assert {report[str(p)].reason for p in fifos} == {"changed since submission"}
    assert report[str(study.files[1])].outcome is Outcome.STORED
    assert [s.sop_instance_uid for s in scp.stores] == [study.sop_instance_uids[1]]


def test_chunk_held_by_another_runner_is_left_alone(scp: StorageScp, tmp_path: Path) -> None:
    study = make_study(tmp_path / "s", images=2)
    chunks = chunks_of(study.files, 10)
    store = MemoryJobStore()
    spec = make_spec(scp.host, scp.port, job_id="r2")
    store.create_job(spec, chunks)
    assert store.claim_chunk("r2", chunks[0].chunk_id, "someone-else", 30)
    result = run_chunk(spec, chunks[0], store, MemorySlots())
    assert result.status is ChunkStatus.BUSY
    assert scp.stores == [] and store.progress("r2").done == 0


def test_confirmed_files_are_not_sent_again(scp: StorageScp, tmp_path: Path) -> None:
    study = make_study(tmp_path / "s", images=3)
    chunks = chunks_of(study.files, 10)
    store = MemoryJobStore()
    spec = make_spec(scp.host, scp.port, job_id="r3")
    store.create_job(spec, chunks)
    scp.respond(0x0000, 0xA700)
    first = run_chunk(spec, chunks[0], store, MemorySlots())
    assert first.status is ChunkStatus.RETRY
    assert first.remaining == tuple(str(p) for p in study.files[1:])
    assert first.failed_status == 0xA700
    second = run_chunk(spec, chunks[0], store, MemorySlots())
    assert second.status is ChunkStatus.DONE and second.job_finished
    sent = [s.sop_instance_uid for s in scp.stores]
    uids = study.sop_instance_uids
    assert sent == [uids[0], uids[1], uids[1], uids[2]]
    assert store.progress("r3").state is JobState.COMPLETED


def test_a_retry_does_not_resend_files_that_failed_for_good(
    scp: StorageScp, tmp_path: Path
) -> None:
    study = make_study(tmp_path / "s", images=3)
    chunks = chunks_of(study.files, 10)
    store = MemoryJobStore()
    spec = make_spec(scp.host, scp.port, job_id="r4", halt=False)
    store.create_job(spec, chunks)
    scp.respond(0xC000, 0xA700)
    first = run_chunk(spec, chunks[0], store, MemorySlots())
    assert first.status is ChunkStatus.RETRY
    second = run_chunk(spec, chunks[0], store, MemorySlots())
    assert second.status is ChunkStatus.DONE
    uids = study.sop_instance_uids
    assert [s.sop_instance_uid for s in scp.stores] == [uids[0], uids[1], uids[1], uids[2]]
    final = store.progress("r4")
    assert (final.stored, final.failed) == (2, 1)


def _rewrite_keeping_stat(path: Path, old: bytes, new: bytes) -> None:
    """Replace the last ``old`` by ``new`` (same length) and restore the file's mtime."""
    before = path.stat()
    data = path.read_bytes()
    at = data.rindex(old)
    path.write_bytes(data[:at] + new + data[at + len(old) :])
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_an_unchanged_file_is_sent_from_what_the_scan_read(scp: StorageScp, tmp_path: Path) -> None:
    # The data set's SOP Instance UID is rewritten behind the job's back, size and
    # mtime kept: the runner does not read the file again, the request names the UID
    # the scan found; a reference without the scan's info (an older record) reads it.
    study = make_study(tmp_path / "s", images=2)
    chunks = chunks_of(study.files, 10)
    assert all(ref.info is not None for ref in chunks[0].files)
    old = study.sop_instance_uids[0].encode()
    new = old[:-1] + (b"8" if old[-1:] != b"8" else b"7")
    _rewrite_keeping_stat(study.files[0], old, new)
    store = MemoryJobStore()
    spec = make_spec(scp.host, scp.port, job_id="r9")
    store.create_job(spec, chunks)
    assert run_chunk(spec, chunks[0], store, MemorySlots()).status is ChunkStatus.DONE
    older = dataclasses.replace(
        chunks[0], files=tuple(dataclasses.replace(f, info=None) for f in chunks[0].files)
    )
    store.create_job(dataclasses.replace(spec, job_id="r10"), [older])
    run_chunk(dataclasses.replace(spec, job_id="r10"), older, store, MemorySlots())
    assert [s.sop_instance_uid for s in scp.stores] == [
        old.decode(),
        study.sop_instance_uids[1],
        new.decode(),
        study.sop_instance_uids[1],
    ]


_SLOW_S = 3 * REPLY_GRACE_S
"""How long the stalled peer holds its answer: well beyond the runner's grace."""


def _run_in_thread(target: Callable[[], object]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def test_a_slow_answer_records_what_is_held_before_the_next_file(
    scp: StorageScp, tmp_path: Path
) -> None:
    study = make_study(tmp_path / "s", images=5)
    chunks = chunks_of(study.files, 10)
    stores_at_record: list[tuple[int, int]] = []

    class Spy(MemoryJobStore):
        def record_many(self, job_id: str, outcomes: Sequence[FileOutcome]) -> list[bool]:
            stores_at_record.append((len(outcomes), len(scp.stores)))
            return super().record_many(job_id, outcomes)

    store = Spy()
    spec = make_spec(scp.host, scp.port, job_id="slow1")
    store.create_job(spec, chunks)
    scp.stall_on_store(3)
    runner = _run_in_thread(lambda: run_chunk(spec, chunks[0], store, MemorySlots()))
    scp.wait_until_stalled()
    time.sleep(_SLOW_S)  # the peer is slow: this is what is being tested
    scp.release_stall()
    runner.join(10)
    assert store.progress("slow1").stored == 5
    # The peer held the third file: the outcomes before it went on record while it
    # waited for that answer (the peer had then received three files, not four).
    assert sum(count for count, stores in stores_at_record if stores <= 3) >= 2, stores_at_record


def test_a_job_cancelled_while_the_peer_is_slow_sends_nothing_more(
    scp: StorageScp, tmp_path: Path
) -> None:
    study = make_study(tmp_path / "s", images=5)
    chunks = chunks_of(study.files, 10)
    store = MemoryJobStore()
    spec = make_spec(scp.host, scp.port, job_id="slow2")
    store.create_job(spec, chunks)
    scp.stall_on_store(3)
    runner = _run_in_thread(lambda: run_chunk(spec, chunks[0], store, MemorySlots()))
    scp.wait_until_stalled()
    assert store.cancel("slow2")
    time.sleep(_SLOW_S)  # the peer is slow: this is what is being tested
    scp.release_stall()
    runner.join(10)
    assert len(scp.stores) == 3
    progress = store.progress("slow2")
    assert (progress.stored, progress.not_sent) == (3, 2)


def test_a_large_file_in_flight_shows_in_the_jobs_progress_until_it_lands(
    scp: StorageScp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dispatch.transfer
    from dispatch.cli.progress import progress_line
    from dispatch.outcome import human_bytes

    monkeypatch.setattr(dispatch.transfer, "PROGRESS_INTERVAL_S", 0.0)
    scp.reset()
    study = make_study(tmp_path / "s", images=2)
    large = pydicom.dcmread(study.files[1])
    large.Rows = large.Columns = 2048
    large.PixelData = bytes(8 << 20)
    large.save_as(study.files[1])
    seen: list[tuple[int, int, str]] = []

    class Watched(MemoryJobStore):
        """The memory store, its progress read each time a file's bytes go out."""

        def file_in_flight(self, job_id: str, chunk_id: str, sent: int) -> None:
            super().file_in_flight(job_id, chunk_id, sent)
            snapshot = self.progress(job_id)
            line = progress_line(snapshot)
            seen.append((snapshot.bytes_in_flight, snapshot.bytes_stored, line))

    store = Watched()
    spec = make_spec(scp.host, scp.port, job_id="inflight")
    chunks = chunks_of(study.files, 10)
    store.create_job(spec, chunks)
    result = run_chunk(spec, chunks[0], store, MemorySlots())
    assert result.status is ChunkStatus.DONE
    going = [sent for sent, _stored, _line in seen if sent]
    assert len(going) >= 4 and going == sorted(going) and going[-1] > 8 << 20
    # While it goes out, the line counts its bytes with those of the file stored before.
    for sent, stored, line in seen:
        if sent:
            assert f", {human_bytes(stored + sent)}/" in line, line
    assert seen[-1][0] == 0  # landed: nothing in flight
    assert store.progress(spec.job_id).bytes_in_flight == 0
