"""The test peers themselves: the programmable SCP, storescp, the synthetic files."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
)
from pynetdicom import AE

from dispatch.uids import IMPLEMENTATION_CLASS_UID
from tests.conftest import StorescpFactory
from tests.support.dicom_files import (
    TRANSFER_SYNTAXES,
    Study,
    make_file,
    make_study,
    pydicom_file,
)
from tests.support.programs import find_program, require_program
from tests.support.scp import REJECTED_PERMANENT, REJECTED_TRANSIENT, StorageScp


def storescu(*args: str | Path | int) -> subprocess.CompletedProcess[str]:
    """Run DCMTK's storescu with `args`; return the finished process."""
    program = require_program("storescu")
    return subprocess.run(
        [str(program), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TCP_NODELAY": "1"},
        check=False,
    )


def associate(scp: StorageScp, *syntaxes: str, ae_title: str = "PEERTEST") -> AE:
    """A pynetdicom requestor proposing CT and MR storage in `syntaxes`."""
    ae = AE(ae_title=ae_title)
    ae.acse_timeout = 5
    ae.dimse_timeout = 5
    ae.network_timeout = 5
    for sop_class in (CTImageStorage, MRImageStorage):
        ae.add_requested_context(sop_class, list(syntaxes or [ExplicitVRLittleEndian]))
    return ae


# -- synthetic files -------------------------------------------------------------------


@pytest.mark.parametrize("ts", sorted(TRANSFER_SYNTAXES))
def test_make_file_writes_part10_in_the_requested_syntax(tmp_path: Path, ts: str) -> None:
    path = make_file(tmp_path / "a.dcm", ts=ts, study_uid="1.2.3", size=256)
    ds = pydicom.dcmread(path)
    assert path.read_bytes()[128:132] == b"DICM"
    assert ds.file_meta.TransferSyntaxUID == TRANSFER_SYNTAXES[ts]
    assert ds.StudyInstanceUID == "1.2.3"
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert len(ds.PixelData) == 256


def test_make_study_writes_one_study_over_its_series(tmp_path: Path) -> None:
    study = make_study(tmp_path, images=6, series=2)
    datasets = [pydicom.dcmread(p) for p in study.files]
    assert {ds.StudyInstanceUID for ds in datasets} == {study.study_uid}
    assert {ds.SeriesInstanceUID for ds in datasets} == set(study.series_uids)
    assert [ds.SOPInstanceUID for ds in datasets] == list(study.sop_instance_uids)
    assert len(set(study.sop_instance_uids)) == 6


def test_pydicom_file_finds_a_bundled_test_file() -> None:
    assert pydicom.dcmread(pydicom_file("CT_small.dcm")).Modality == "CT"


# -- require_program -------------------------------------------------------------------


def test_require_program_skips_a_missing_program_outside_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        require_program("no-such-program-dispatch")


def test_require_program_fails_a_missing_program_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_program("no-such-program-dispatch")


def test_find_program_ignores_the_virtual_environments_storescu() -> None:
    found = find_program("storescu")
    assert found is None or found.parent.resolve() != Path(sys.prefix, "bin").resolve()


# -- the pynetdicom SCP, driven by pynetdicom --------------------------------------------


def test_scp_records_a_store_with_its_command_fields(scp: StorageScp, tmp_path: Path) -> None:
    ds = pydicom.dcmread(make_file(tmp_path / "a.dcm", size=64))
    assoc = associate(scp, ImplicitVRLittleEndian).associate(
        scp.host, scp.port, ae_title="ANY-SCP", max_pdu=32768
    )
    assert assoc.is_established
    status = assoc.send_c_store(ds, msg_id=7, priority=2)
    assoc.release()

    assert status.Status == 0x0000
    (store,) = scp.wait_for_stores(1)
    assert (store.message_id, store.priority) == (7, 2)
    assert (store.sop_class_uid, store.sop_instance_uid) == (CTImageStorage, ds.SOPInstanceUID)
    assert store.transfer_syntax == ImplicitVRLittleEndian
    assert store.context_id == 1
    assert store.status == 0x0000
    assert store.dataset().PixelData == ds.PixelData
    (record,) = scp.wait_for_associations(1)
    assert (record.calling_ae, record.called_ae) == ("PEERTEST", "ANY-SCP")
    assert record.max_pdu == 32768
    assert record.implementation_class_uid
    assert [(cx.context_id, cx.abstract_syntax) for cx in record.proposed] == [
        (1, CTImageStorage),
        (3, MRImageStorage),
    ]
    assert record.proposed[0].transfer_syntaxes == (ImplicitVRLittleEndian,)
    assert record.ended == "released"


def test_scp_answers_the_programmed_statuses_in_order(scp: StorageScp, tmp_path: Path) -> None:
    scp.respond(0xB000, 0xC000)
    ds = pydicom.dcmread(make_file(tmp_path / "a.dcm"))
    assoc = associate(scp).associate(scp.host, scp.port)
    statuses = [assoc.send_c_store(ds).Status for _ in range(3)]
    assoc.release()
    assert statuses == [0xB000, 0xC000, 0x0000]
    assert [s.status for s in scp.stores] == statuses


def test_scp_answers_unusual_statuses_verbatim(scp: StorageScp, tmp_path: Path) -> None:
    unusual = [0x0001, 0x0107, 0x0110, 0x0116, 0x0122, 0xA7FF, 0xA900, 0xB007, 0xCFFF, 0xFE00]
    scp.respond(*unusual)
    ds = pydicom.dcmread(make_file(tmp_path / "a.dcm"))
    assoc = associate(scp).associate(scp.host, scp.port)
    statuses = [assoc.send_c_store(ds).Status for _ in unusual]
    assoc.release()
    assert statuses == unusual


def test_scp_aborts_on_the_programmed_store(scp: StorageScp, tmp_path: Path) -> None:
    scp.abort_on_store(2)
    ds = pydicom.dcmread(make_file(tmp_path / "a.dcm"))
    assoc = associate(scp).associate(scp.host, scp.port)
    first = assoc.send_c_store(ds)
    second = assoc.send_c_store(ds)
    assert first.Status == 0x0000
    assert "Status" not in second
    assoc.join(5)  # the requestor's reactor thread ends once the abort is handled
    assert assoc.is_aborted
    stores = scp.wait_for_stores(2)
    assert [s.status for s in stores] == [0x0000, None]
    (record,) = scp.wait_for_associations(1)
    assert record.ended == "aborted-by-scp"


def test_scp_holds_a_stalled_store_until_released(scp: StorageScp, tmp_path: Path) -> None:
    scp.stall_on_store(1)
    ds = pydicom.dcmread(make_file(tmp_path / "a.dcm"))
    assoc = associate(scp).associate(scp.host, scp.port)
    answered = threading.Event()
    statuses: list[int] = []

    def send() -> None:
        statuses.append(assoc.send_c_store(ds).Status)
        answered.set()

    sender = threading.Thread(target=send)
    sender.start()
    scp.wait_until_stalled()
    assert not answered.is_set()
    scp.release_stall()
    assert answered.wait(5)
    sender.join(5)
    assoc.release()
    assert statuses == [0x0000]


def test_scp_records_a_requestors_abort_during_a_stalled_store(
    scp: StorageScp, tmp_path: Path
) -> None:
    scp.stall_on_store(1)
    ds = pydicom.dcmread(make_file(tmp_path / "a.dcm"))
    assoc = associate(scp).associate(scp.host, scp.port)
    # pynetdicom's send_c_store only notices the local abort at its DIMSE timeout:
    # leave the thread to end by itself.
    threading.Thread(target=assoc.send_c_store, args=(ds,), daemon=True).start()
    scp.wait_until_stalled()
    assoc.abort()
    (record,) = scp.wait_for_associations(1)
    assert record.ended == "aborted"


def test_scp_holds_a_stalled_association_request(scp: StorageScp) -> None:
    scp.stall_associations()
    ae = associate(scp)
    ae.acse_timeout = 0.5
    assoc = ae.associate(scp.host, scp.port)
    assert not assoc.is_established
    scp.wait_until_stalled()


@pytest.mark.parametrize(
    ("result", "source", "reason"),
    [(REJECTED_PERMANENT, 1, 7), (REJECTED_TRANSIENT, 3, 2)],
)
def test_scp_rejects_associations_as_programmed(
    scp: StorageScp, result: int, source: int, reason: int
) -> None:
    scp.reject_associations(result, source, reason)
    assoc = associate(scp).associate(scp.host, scp.port)
    assert assoc.is_rejected
    rj = assoc.acceptor.primitive
    assert rj is not None
    assert (rj.result, rj.result_source, rj.diagnostic) == (result, source, reason)
    (record,) = scp.wait_for_associations(1)
    assert record.ended == "rejected"


def test_scp_counts_concurrent_associations(scp: StorageScp) -> None:
    first = associate(scp).associate(scp.host, scp.port)
    second = associate(scp).associate(scp.host, scp.port)
    assert first.is_established and second.is_established
    first.release()
    second.release()
    third = associate(scp).associate(scp.host, scp.port)
    third.release()
    scp.wait_for_associations(3)
    assert scp.max_concurrent == 2


def test_scp_accepts_only_the_programmed_syntaxes(scp: StorageScp) -> None:
    scp.accept_only(transfer_syntaxes=[ImplicitVRLittleEndian], abstract_syntaxes=[MRImageStorage])
    ae = associate(scp, ExplicitVRBigEndian, ImplicitVRLittleEndian)
    assoc = ae.associate(scp.host, scp.port)
    accepted = [(cx.abstract_syntax, cx.transfer_syntax[0]) for cx in assoc.accepted_contexts]
    assoc.release()
    assert accepted == [(MRImageStorage, ImplicitVRLittleEndian)]
    (record,) = scp.wait_for_associations(1)
    assert [(cx.abstract_syntax, cx.transfer_syntax) for cx in record.accepted] == accepted


# -- the pynetdicom SCP, driven by DCMTK's storescu --------------------------------------


def test_storescu_sends_three_files_and_scp_records_them(scp: StorageScp, ct_study: Study) -> None:
    files = ct_study.files[:3]
    done = storescu("127.0.0.1", scp.port, *files)
    assert done.returncode == 0, done.stderr
    stores = scp.wait_for_stores(3)
    assert [s.sop_instance_uid for s in stores] == list(ct_study.sop_instance_uids[:3])
    assert [s.message_id for s in stores] == [1, 2, 3]
    assert {s.priority for s in stores} == {0}  # MEDIUM
    assert {s.sop_class_uid for s in stores} == {CTImageStorage}
    (record,) = scp.wait_for_associations(1)
    assert (record.calling_ae, record.called_ae) == ("STORESCU", "ANY-SCP")
    assert record.max_pdu == 16384
    assert (record.implementation_version_name or "").startswith("OFFIS_DCMTK")
    assert len(record.proposed) == 128
    assert record.ended == "released"
    assert record.implementation_class_uid != IMPLEMENTATION_CLASS_UID


def test_storescu_exits_167_on_a_programmed_a700(scp: StorageScp, ct_study: Study) -> None:
    scp.respond(0xA700)
    done = storescu("127.0.0.1", scp.port, *ct_study.files)
    assert done.returncode == 167
    assert len(scp.stores) == 1  # storescu halts after a failed store


def test_storescu_exits_10_when_the_scp_aborts(scp: StorageScp, ct_study: Study) -> None:
    scp.abort_on_store(2)
    done = storescu("127.0.0.1", scp.port, *ct_study.files)
    assert done.returncode == 10
    assert [s.status for s in scp.wait_for_stores(2)] == [0x0000, None]


def test_scp_limits_the_pdus_it_receives(scp: StorageScp, tmp_path: Path) -> None:
    scp.max_pdu = 4096
    big = make_file(tmp_path / "big.dcm", size=20000)
    done = storescu("-pdu", "32768", "127.0.0.1", scp.port, big)
    assert done.returncode == 0, done.stderr
    (record,) = scp.wait_for_associations(1)
    assert record.max_pdu == 32768
    assert 0 < record.largest_pdu <= 4096


# -- DCMTK's storescp ------------------------------------------------------------------


def test_storescp_receives_files_into_its_output_dir(
    storescp: StorescpFactory, ct_study: Study
) -> None:
    peer = storescp()
    done = storescu("127.0.0.1", peer.port, *ct_study.files)
    assert done.returncode == 0, done.stderr
    received = {p.name for p in peer.files()}
    assert received == {f"CT.{uid}" for uid in ct_study.sop_instance_uids}


def test_storescp_with_refuse_makes_storescu_fail(
    storescp: StorescpFactory, ct_study: Study
) -> None:
    peer = storescp("--refuse")
    done = storescu("127.0.0.1", peer.port, ct_study.files[0])
    assert done.returncode == 1
    assert peer.files() == []
