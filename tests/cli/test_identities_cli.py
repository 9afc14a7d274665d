"""Invented identities (+II, +IR, +IS, +IP) and -u on the wire, against DCMTK.

storescu and ``dispatch send`` send the same files to DCMTK's storescp (or to the
recording ``scp``); the received files must have the same structure (how many
instances, series, studies and patients, with which numbers), and the files on disk
must stay as they were. A distributed job must invent the same identities whichever
worker sends which chunk.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from dispatch.identities import Inventor
from dispatch.jobs.enqueue import wait_for_job
from dispatch.jobs.model import JobState
from dispatch.jobs.redis_store import RedisJobStore
from dispatch.jobs.store import MemoryJobStore
from dispatch.uids import EXPLICIT_BE, EXPLICIT_LE, RLE_LOSSLESS
from tests.cli.conftest import Run, observe, run_dispatch, run_storescu
from tests.conftest import StorescpFactory
from tests.jobs.support import chunks_of, make_spec
from tests.support.cluster import Worker, run_cli
from tests.support.dicom_files import make_study
from tests.support.jobs import enqueue_job, run_embedded
from tests.support.scp import StorageScp
from tests.test_identities import new_vr_file

_STAMP_DIGITS = 10  # storescu's (and our) time in seconds, in this century


def _digest(paths: list[Path]) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def _files(root: Path, studies: int, images: int) -> list[Path]:
    return [f for n in range(studies) for f in make_study(root / f"s{n}", images=images).files]


def _structure(datasets: list[Dataset]) -> tuple[object, ...]:
    """What must be equal between storescu's and our invented identities: counts of
    distinct identities and the multiset of numbers (the time in IDs left out)."""

    def counter(ds: Dataset, name: str) -> str:
        value = str(ds.get(name, "-"))
        return value[len("SID_") + _STAMP_DIGITS :] if name in ("StudyID", "PatientID") else value

    numbers = Counter(
        tuple(counter(ds, n) for n in ("PatientID", "StudyID", "SeriesNumber", "InstanceNumber"))
        for ds in datasets
    )
    distinct = [
        len({str(ds.get(n, "-")) for ds in datasets})
        for n in ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "PatientID",
                  "PatientName")
    ]  # fmt: skip
    # Which series belong to which study, which studies to which patient.
    series_per_study = Counter(
        Counter((ds.StudyInstanceUID, ds.SeriesInstanceUID) for ds in datasets).keys()
        and (ds.StudyInstanceUID for ds in datasets)
    )
    return numbers, distinct, sorted(series_per_study.values())


def _received(peer_files: list[Path]) -> list[Dataset]:
    return [pydicom.dcmread(p) for p in peer_files]


def _run_both(
    storescp: StorescpFactory, args: list[str | Path], files: list[Path]
) -> tuple[list[Dataset], list[Dataset]]:
    """storescu then ``dispatch send`` with ``args`` + ``files``, each to its own storescp."""
    received = []
    for runner in (run_storescu, run_dispatch):
        peer = storescp()
        run: Run = runner("127.0.0.1", peer.port, *args, *files)
        assert run.code == 0, run.output
        received.append(_received(peer.files()))
    return received[0], received[1]


def test_invented_identities_have_storescus_structure_across_files_and_repeats(
    storescp: StorescpFactory, tmp_path: Path
) -> None:
    files = _files(tmp_path, 2, 3)
    before = _digest(files)
    theirs, ours = _run_both(storescp, ["+IR", "2", "+IS", "2", "+IP", "2", "--repeat", "2"], files)
    assert len(theirs) == len(ours) == 12
    assert _structure(ours) == _structure(theirs)
    # 12 instances, 6 series, 3 studies, 2 patients.
    assert _structure(ours)[1] == [12, 6, 3, 2, 2]
    assert {ds.SOPInstanceUID for ds in ours}.isdisjoint(
        pydicom.dcmread(f).SOPInstanceUID for f in files
    )
    assert all(ds.SOPInstanceUID.startswith("2.25.") for ds in ours)
    assert _digest(files) == before


def test_defaults_put_everything_in_one_series(storescp: StorescpFactory, tmp_path: Path) -> None:
    files = _files(tmp_path, 2, 2)
    theirs, ours = _run_both(storescp, ["+II"], files)
    assert _structure(ours) == _structure(theirs)
    assert _structure(ours)[1] == [4, 1, 1, 1, 1]
    assert sorted(ds.InstanceNumber for ds in ours) == [0, 1, 2, 3]


def test_only_attributes_present_are_replaced(storescp: StorescpFactory, tmp_path: Path) -> None:
    (path,) = make_study(tmp_path / "s", images=1).files
    ds = pydicom.dcmread(path)
    del ds.StudyID, ds.PatientName, ds.InstanceNumber
    ds.save_as(path)
    before = _digest([path])
    theirs, ours = _run_both(storescp, ["+IR", "1"], [path])
    for received in (theirs, ours):
        (got,) = received
        assert "StudyID" not in got and "PatientName" not in got and "InstanceNumber" not in got
        assert got.PatientID.startswith("PID_") and got.SeriesNumber == 0
    assert _digest([path]) == before


def test_compressed_file_goes_as_it_is_with_new_identities(
    storescp: StorescpFactory, tmp_path: Path
) -> None:
    path = tmp_path / "rle.dcm"
    path.write_bytes(Path(str(get_testdata_file("SC_rgb_rle.dcm"))).read_bytes())
    before = _digest([path])
    peer = storescp("+xr")
    run = run_dispatch("127.0.0.1", peer.port, "-xr", "+IR", "3", path, path)
    assert run.code == 0, run.output
    received = _received(peer.files())
    original = pydicom.dcmread(path)
    assert len(received) == 2
    for got in received:
        assert got.file_meta.TransferSyntaxUID == RLE_LOSSLESS
        assert got.PixelData == original.PixelData
        assert got.SOPInstanceUID != original.SOPInstanceUID
    assert sorted(ds.InstanceNumber for ds in received) == [0, 1]
    assert _digest([path]) == before


def test_the_c_store_names_the_invented_instance(scp: StorageScp, tmp_path: Path) -> None:
    files = _files(tmp_path, 1, 3)
    seen = observe(run_dispatch, scp, "+II", *files)
    assert seen.run.code == 0, seen.run.output
    for store in seen.stores:
        assert store.sop_instance_uid == store.dataset().SOPInstanceUID
        assert store.sop_instance_uid.startswith("2.25.")


# -- -u -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "syntax", "file_ts"),
    [("-xe", EXPLICIT_LE, "explicit"), ("-xb", EXPLICIT_BE, "explicit"),
     ("-xe", EXPLICIT_LE, "big"), ("-xe", EXPLICIT_LE, "implicit")],
)  # fmt: skip
def test_minus_u_puts_storescus_bytes_on_the_wire(
    scp: StorageScp, tmp_path: Path, option: str, syntax: str, file_ts: str
) -> None:
    path = new_vr_file(tmp_path / "vr.dcm", file_ts, nested=False)

    def only(peer: StorageScp) -> None:
        peer.accept_only(transfer_syntaxes=[syntax])

    theirs = observe(run_storescu, scp, "-u", option, path, setup=only)
    ours = observe(run_dispatch, scp, "-u", option, path, setup=only)
    assert theirs.run.code == ours.run.code == 0, ours.run.output
    assert ours.stores[0].transfer_syntax == syntax
    assert ours.stores[0].data == theirs.stores[0].data
    assert ours.stores[0].dataset()[0x0008030E].VR == "OB"


def test_minus_u_in_sequences_as_storescu(scp: StorageScp, tmp_path: Path) -> None:
    # storescu keeps the sequence's defined length where we write an undefined one:
    # the decoded data sets are equal, VRs and values included.
    path = new_vr_file(tmp_path / "vr.dcm")
    theirs = observe(run_storescu, scp, "-u", path).stores[0].dataset()
    ours = observe(run_dispatch, scp, "-u", path).stores[0].dataset()
    assert ours.ReferencedImageSequence[0][0x0008030E].VR == "OB"
    assert [(e.tag, e.VR, e.value) for e in ours if e.VR != "SQ"] == [
        (e.tag, e.VR, e.value) for e in theirs if e.VR != "SQ"
    ]
    assert ours.ReferencedImageSequence == theirs.ReferencedImageSequence


def test_plus_u_keeps_the_vrs(scp: StorageScp, tmp_path: Path) -> None:
    path = new_vr_file(tmp_path / "vr.dcm")
    seen = observe(run_dispatch, scp, "-u", "+u", path)
    assert seen.run.code == 0, seen.run.output
    got = seen.stores[0].dataset()
    assert (got[0x0008030E].VR, got[0x00660040].VR) == ("UT", "OL")


# -- distributed jobs -----------------------------------------------------------------


def _invent_spec(scp: StorageScp, job_id: str, **policy: int) -> object:
    spec = make_spec(scp.host, scp.port, job_id=job_id)
    fields: dict[str, Any] = {"invent_identities": True, "invent_stamp": 1700000000, **policy}
    return dataclasses.replace(spec, policy=dataclasses.replace(spec.policy, **fields))


def _identities(datasets: list[Dataset]) -> set[tuple[str, ...]]:
    names = ("SOPInstanceUID", "InstanceNumber", "SeriesInstanceUID", "SeriesNumber",
             "StudyInstanceUID", "StudyID", "PatientID", "PatientName")  # fmt: skip
    return {tuple(str(ds.get(n)) for n in names) for ds in datasets}


def _expected(job_id: str, count: int, limits: tuple[int, int, int]) -> set[tuple[str, ...]]:
    inventor = Inventor(job_id, *limits, stamp=1700000000)
    out: set[tuple[str, ...]] = set()
    for n in range(count):
        i = inventor.identity(n)
        out.add((i.sop_instance_uid, i.instance_number, i.series_instance_uid,
                 i.series_number, i.study_instance_uid, i.study_id, i.patient_id,
                 i.patient_name))  # fmt: skip
    return out


def test_embedded_job_is_deterministic_for_its_job_id(scp: StorageScp, tmp_path: Path) -> None:
    files = _files(tmp_path, 3, 3)
    before = _digest(files)
    runs = []
    for _ in range(2):
        scp.reset()
        spec = _invent_spec(scp, "job-a", invent_series=2, invent_study=2, invent_patient=2)
        final = run_embedded(spec, chunks_of(files, 2), store=MemoryJobStore(), jobs=2)  # type: ignore[arg-type]
        assert final.state is JobState.COMPLETED
        runs.append(_identities([s.dataset() for s in scp.wait_for_stores(9)]))
    assert runs[0] == runs[1] == _expected("job-a", 9, (2, 2, 2))
    assert _digest(files) == before


def test_submit_in_this_process_has_storescus_structure(
    storescp: StorescpFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in __import__("os").environ if n.startswith("DISPATCH_")]:
        monkeypatch.delenv(name)
    files = _files(tmp_path, 3, 2)
    options = ["+IR", "2", "+IS", "2", "+IP", "2"]
    peer = storescp()
    run = run_storescu("127.0.0.1", peer.port, *options, *files)
    assert run.code == 0, run.output
    theirs = _received(peer.files())
    peer = storescp()
    submitted = run_cli("submit", "--jobs", "2", "--chunk", "1", "--wait", *options,
                        "127.0.0.1", peer.port, *files)  # fmt: skip
    assert submitted.code == 0, submitted.stderr
    assert _structure(_received(peer.files())) == _structure(theirs)


def test_workers_invent_the_same_identities_whoever_sends_which_chunk(
    scp: StorageScp,
    workers: list[Worker],
    redis_url: str,
    job_store: RedisJobStore,
    tmp_path: Path,
) -> None:
    files = _files(tmp_path, 4, 3)
    spec = _invent_spec(scp, "inv-workers", invent_series=2, invent_study=3, invent_patient=1)
    enqueue_job(redis_url, spec, chunks_of(files, 2), store=job_store)  # type: ignore[arg-type]
    final = wait_for_job(job_store, "inv-workers", poll_s=0.1, timeout_s=60)
    assert final.state is JobState.COMPLETED
    received = _identities([s.dataset() for s in scp.wait_for_stores(12)])
    assert received == _expected("inv-workers", 12, (2, 3, 1))
