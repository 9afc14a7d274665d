"""How a job store keeps outcomes compactly: every field still reported, the report in
submission order, the Redis records of a finished job within 100 bytes a file."""

from __future__ import annotations

import random
from typing import Any

import pytest

from dispatch.dicomfile import DicomFileInfo
from dispatch.jobs.backends.memory import MemoryJobStore
from dispatch.jobs.backends.redis import RedisJobStore
from dispatch.jobs.model import Chunk, FileRef, chunk_from_blob, chunk_to_blob
from dispatch.jobs.store import JobStore
from dispatch.outcome import FileOutcome, Outcome
from dispatch.uids import EXPLICIT_LE
from tests.jobs.support import make_spec

CT = "1.2.840.10008.5.1.4.1.1.2"
JPEG_LS = "1.2.840.10008.1.2.4.80"
ROOT = "1.2.826.0.1.3680043.8.498."


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> JobStore:
    if request.param == "memory":
        return MemoryJobStore()
    client = request.getfixturevalue("redis_client")
    return RedisJobStore(client, prefix="t", ttl_s=3600)


def _refs(count: int, *, study: int = 1, seed: int = 7) -> list[FileRef]:
    """Files as a scan of an archive finds them: one directory per series, random UIDs
    (of pydicom's root) and modification times, data sets of about half a megabyte."""
    rnd = random.Random(seed)
    study_uid = f"{ROOT}{rnd.randrange(10**30)}"
    refs = []
    for n in range(count):
        path = f"/archive/2019/03/PAT{study:06d}/SER{n // 100:03d}/IM{n:06d}.dcm"
        instance = f"{ROOT}{rnd.randrange(10**30)}"
        length = 524_288 + rnd.randrange(1_000)
        info = DicomFileInfo(path, CT, instance, EXPLICIT_LE, 352, length, True, study_uid)
        mtime = 1_700_000_000_000_000_000 + rnd.randrange(10**12)
        refs.append(FileRef(path, length + 352, mtime, n, info))
    return refs


def _plain(ref: FileRef, seconds: float) -> FileOutcome:
    """What the sender records for a file stored as it is."""
    assert ref.info is not None
    return FileOutcome(
        ref.path,
        Outcome.STORED,
        status=0,
        bytes=ref.info.dataset_length,
        sop_class_uid=CT,
        sop_instance_uid=ref.info.sop_instance_uid,
        transfer_syntax=EXPLICIT_LE,
        seconds=seconds,
    )


def test_a_chunk_round_trips_through_its_compact_form() -> None:
    refs = _refs(300)
    bare = (FileRef("/elsewhere/x.dcm", 10, 5), FileRef("/elsewhere/y.dcm", 11, 4, 9))
    chunk = Chunk("c00007", "1.2.3", (*refs, *bare), studies=2)
    back = chunk_from_blob(chunk_to_blob(chunk))
    assert back == chunk
    assert [f.info for f in back.files] == [f.info for f in chunk.files]
    single = Chunk("c00001", "1.2.3", (refs[0],))
    assert chunk_from_blob(chunk_to_blob(single)) == single


def test_every_field_of_every_kind_of_outcome_is_reported(store: JobStore) -> None:
    a, b, c, d, e = _refs(5)
    chunk = Chunk("c00001", "s", (a, b, c, d, e))
    store.create_job(make_spec("127.0.0.1", 104, job_id="j"), [chunk])
    assert b.info is not None
    warned = "Coercion of data elements"
    outcomes = [
        _plain(a, 0.012345),
        FileOutcome(b.path, Outcome.STORED, 0xB000, warned, 100, CT, b.info.sop_instance_uid),
        FileOutcome(c.path, Outcome.STORED, 0, "", 4000, CT, "2.25.1", JPEG_LS, 0.25),
        FileOutcome(d.path, Outcome.FAILED, 0xC000, "Error", 0, CT, "2.25.2", EXPLICIT_LE, 0.1),
        FileOutcome(e.path, Outcome.NOT_SENT, reason="job halted"),
    ]
    assert store.record_many("j", outcomes) == [True] * 5
    assert list(store.report("j")) == outcomes
    p = store.progress("j")
    assert (p.stored, p.failed, p.not_sent) == (3, 1, 1)
    assert b.info is not None and a.info is not None
    assert p.bytes_stored == a.info.dataset_length + 100 + 4000


def test_the_report_follows_submission_order_then_the_files_in_no_chunk(
    store: JobStore,
) -> None:
    refs = _refs(6)
    chunks = [Chunk("c00001", "s", tuple(refs[:3])), Chunk("c00002", "s", tuple(refs[3:]))]
    problem = FileOutcome("/archive/bad.dcm", Outcome.NOT_SENT, reason="bad DICOM file")
    store.create_job(make_spec("127.0.0.1", 104, job_id="j"), chunks, [problem])
    outcomes = [_plain(ref, 0.001) for ref in refs]
    store.record_many("j", outcomes[::-1])
    assert list(store.report("j")) == [*outcomes, problem]


def test_a_file_recorded_twice_in_one_batch_keeps_its_first_final_outcome(
    store: JobStore,
) -> None:
    (ref,) = _refs(1)
    store.create_job(make_spec("127.0.0.1", 104, job_id="j"), [Chunk("c00001", "s", (ref,))])
    failed = FileOutcome(ref.path, Outcome.FAILED, 0xA700, "Refused: out of resources")
    stored = _plain(ref, 0.002)
    assert store.record_many("j", [failed, stored, _plain(ref, 0.003)]) == [True, True, False]
    assert list(store.report("j")) == [stored]
    p = store.progress("j")
    assert (p.stored, p.failed, p.failures) == (1, 0, {})


def test_a_store_that_never_read_the_chunk_records_into_it(redis_client: Any) -> None:
    refs = _refs(3)
    submitter = RedisJobStore(redis_client, prefix="t", ttl_s=3600)
    submitter.create_job(make_spec("127.0.0.1", 104, job_id="j"), [Chunk("c1", "s", tuple(refs))])
    worker = RedisJobStore(redis_client, prefix="t", ttl_s=3600)
    assert worker.record("j", _plain(refs[1], 0.004))
    other = RedisJobStore(redis_client, prefix="t", ttl_s=3600)
    assert other.settled("j", [r.path for r in refs]) == {refs[1].path}
    assert not other.record("j", FileOutcome(refs[1].path, Outcome.FAILED, reason="late"))
    assert list(submitter.report("j")) == [_plain(refs[1], 0.004)]
    assert redis_client.hlen("t:job:j:outcomes") == 0  # in its chunk, not loose


def test_a_finished_job_holds_at_most_100_bytes_a_file_in_redis(redis_client: Any) -> None:
    store = RedisJobStore(redis_client, prefix="t", ttl_s=3600)
    chunks = [Chunk(f"c{n:05d}", "s", tuple(_refs(500, study=n, seed=n))) for n in range(1, 9)]
    store.create_job(make_spec("127.0.0.1", 104, job_id="big"), chunks)
    files = [ref for c in chunks for ref in c.files]
    rnd = random.Random(3)
    outcomes = [_plain(ref, rnd.uniform(0.001, 0.05)) for ref in files]
    outcomes[17] = FileOutcome(files[17].path, Outcome.FAILED, 0xC000, "Error: cannot understand")
    for start in range(0, len(outcomes), 64):
        store.record_many("big", outcomes[start : start + 64])
    for c in chunks:
        store.finish_chunk("big", c.chunk_id)
    assert store.progress("big").is_finished
    used = sum(
        int(redis_client.memory_usage(key, samples=0))
        for key in redis_client.scan_iter("t:job:big:*")
    )
    assert used / len(files) <= 100, used / len(files)
    reported = list(store.report("big"))
    assert len(reported) == len(files)
    assert reported[17] == outcomes[17]
    # Plain stored outcomes keep their time to the microsecond.
    assert all(abs(r.seconds - o.seconds) <= 5e-7 for r, o in zip(reported, outcomes, strict=True))


def test_the_report_reads_the_chunks_as_it_goes(redis_client: Any) -> None:
    store = RedisJobStore(redis_client, prefix="t", ttl_s=3600)
    chunks = [Chunk(f"c{n:05d}", "s", tuple(_refs(2, study=n, seed=n))) for n in range(40)]
    store.create_job(make_spec("127.0.0.1", 104, job_id="j"), chunks)
    store.record_many("j", [_plain(ref, 0.001) for c in chunks for ref in c.files])
    report = store.report("j")
    first = next(report)
    assert first.path == chunks[0].files[0].path
    # The last chunk has not been read yet: what it holds now is what the report gives.
    redis_client.hdel("t:job:j:codes", chunks[-1].chunk_id)
    rest = list(report)
    assert len(rest) == 2 * len(chunks) - 3
