"""Behaviours on the wire that ``dispatch send`` shares with DCMTK's storescu 3.6.7:
each case runs both programs against the same peer and compares the exit code, the
requests and the data sets the peer stored."""

from __future__ import annotations

import zlib
from io import BytesIO
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import UID, CTImageStorage

from dispatch.cli.main import main
from dispatch.dicomfile import read_info
from dispatch.uids import DEFLATED_LE
from tests.cli.conftest import Observed, observe_both, run_dispatch
from tests.net.rawpeer import Message, RawPeer, storing_script
from tests.support.dicom_files import make_file
from tests.support.scp import StorageScp


def wire(seen: Observed) -> list[tuple[int, str, str, bytes]]:
    """Message ID, SOP class, SOP instance and data set of every store the peer saw."""
    return [(s.message_id, s.sop_class_uid, s.sop_instance_uid, s.data) for s in seen.stores]


# -- 1. space-padded UIDs ------------------------------------------------------------


def space_padded(path: Path, *uids: str) -> Path:
    """A CT file whose data set has ``uids`` (NUL-padded UI values) padded with a space
    instead, as old modalities wrote them."""
    make_file(path, sop_instance_uid="1.2.826.0.1.3680043.8.498.1", study_uid="1.2.3.4.7")
    raw = path.read_bytes()
    start = raw.index(b"\x08\x00\x16\x00UI")  # the data set, after the meta header
    body = raw[start:]
    for uid in uids:
        encoded = uid.encode()
        assert len(encoded) % 2, "an odd-length UID has a padding byte to replace"
        body = body.replace(encoded + b"\0", encoded + b" ")
    path.write_bytes(raw[:start] + body)
    return path


PADDED = [CTImageStorage, "1.2.826.0.1.3680043.8.498.1", "1.2.3.4.7"]


@pytest.mark.parametrize(
    "options", [[], ["-up"], ["-R"], ["-R", "-up"]], ids=["default", "up", "R", "R-up"]
)
def test_space_padded_uids_are_stripped_when_read(
    scp: StorageScp, tmp_path: Path, options: list[str]
) -> None:
    """storescu strips the trailing space from UI values it reads (the SOP Class and
    Instance UIDs of the request, and the values in the data set, which it sends
    NUL-padded), with or without ``-up``; the context lookup and ``-R`` see the
    stripped SOP class."""
    padded = space_padded(tmp_path / "padded.dcm", *PADDED)
    theirs, ours = observe_both(scp, *options, padded)
    assert (ours.run.code, wire(ours)) == (theirs.run.code, wire(theirs))
    assert ours.run.code == 0
    assert [s.sop_class_uid for s in ours.stores] == [CTImageStorage]
    assert b"498.1\0" in ours.stores[0].data and b"1.2.3.4.7\0" in ours.stores[0].data
    if "-R" in options:
        # One class proposed, not the padded one beside the stripped one.
        assert {c.abstract_syntax for c in ours.association.proposed} == {CTImageStorage}


# -- 4. message IDs with -nh ---------------------------------------------------------


PRIVATE_CLASS = "1.2.826.0.1.3680043.8.498.99"


@pytest.mark.parametrize("unsendable", ["not-dicom", "no-context"])
def test_no_halt_uses_up_a_message_id_for_every_file_attempted(
    scp: StorageScp, tmp_path: Path, unsendable: str
) -> None:
    """A file that cannot be sent in the middle of a ``-nh`` run leaves a gap in the
    message IDs (1, 3), as storescu numbers the files it attempts."""
    first = make_file(tmp_path / "1.dcm", instance_number=1)
    middle = tmp_path / "2.dcm"
    if unsendable == "not-dicom":
        middle.write_text("not a DICOM file\n")
    else:
        make_file(middle, sop_class_uid=PRIVATE_CLASS)  # not among the proposed classes
    last = make_file(tmp_path / "3.dcm", instance_number=3)
    theirs, ours = observe_both(scp, "-nh", first, middle, last)
    assert (ours.run.code, wire(ours)) == (theirs.run.code, wire(theirs))
    assert [s.message_id for s in ours.stores] == [1, 3]


# -- 8. -R with a SOP class that is not a storage class ------------------------------


def test_required_refuses_a_class_that_is_not_storage_in_halt_mode(
    scp: StorageScp, tmp_path: Path
) -> None:
    """storescu checks every file's class before associating: fatal, nothing sent."""
    files = [
        make_file(tmp_path / "1.dcm"),
        make_file(tmp_path / "2.dcm", sop_class_uid=PRIVATE_CLASS),
    ]
    theirs, ours = observe_both(scp, "-R", *files, associations=0)
    assert (ours.run.code, ours.stores) == (theirs.run.code, theirs.stores) == (1, [])
    line = f"unknown storage SOP class in file: {files[1]}: {PRIVATE_CLASS}"
    assert line in theirs.run.stderr and line in ours.run.stderr
    assert ours.associations == []


def test_required_with_no_halt_drops_such_a_file_and_goes_on(
    scp: StorageScp, tmp_path: Path
) -> None:
    files = [
        make_file(tmp_path / "1.dcm", instance_number=1),
        make_file(tmp_path / "2.dcm", sop_class_uid=PRIVATE_CLASS),
        make_file(tmp_path / "3.dcm", instance_number=3),
    ]
    theirs, ours = observe_both(scp, "-R", "-nh", *files)
    assert (ours.run.code, wire(ours)) == (theirs.run.code, wire(theirs))
    assert [s.message_id for s in ours.stores] == [1, 2]
    assert {c.abstract_syntax for c in ours.association.proposed} == {CTImageStorage}
    assert f"{files[1]}: {PRIVATE_CLASS}, ignoring file" in ours.run.stderr


def test_any_class_proposes_and_sends_a_private_class(tmp_path: Path) -> None:
    """The option beyond storescu for private SOP classes."""
    private = make_file(tmp_path / "p.dcm", sop_class_uid=PRIVATE_CLASS)
    messages: list[Message] = []
    peer = RawPeer(storing_script(16384, messages))
    run = run_dispatch("-R", "--any-class", "127.0.0.1", peer.port, private)
    peer.join()
    assert run.code == 0, run.stderr
    assert [m.field("AffectedSOPClassUID") for m in messages] == [PRIVATE_CLASS]


# -- 5. deflated data sets of odd length -----------------------------------------------


def odd_when_deflated(folder: Path) -> Path:
    """A CT file whose data set deflates (level 6) to an odd number of bytes."""
    for number in range(1, 50):
        path = make_file(folder / f"{number}.dcm", instance_number=number)
        info = read_info(str(path))
        raw = path.read_bytes()[info.dataset_offset :]
        compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        if len(compressor.compress(raw) + compressor.flush()) % 2:
            return path
    raise AssertionError("no file deflates to an odd length")


def test_a_deflated_data_set_is_padded_to_even_length(scp: StorageScp, tmp_path: Path) -> None:
    """-xd: the deflate stream gets one 0x00 byte when it ends odd, as DCMTK pads it."""
    file = odd_when_deflated(tmp_path)
    setup = lambda s: s.accept_only(transfer_syntaxes={DEFLATED_LE})  # noqa: E731
    theirs, ours = observe_both(scp, "-xd", file, setup=setup)
    assert (ours.run.code, wire(ours)) == (theirs.run.code, wire(theirs))
    assert [s.transfer_syntax for s in ours.stores] == [DEFLATED_LE]
    assert len(ours.stores[0].data) % 2 == 0 and ours.stores[0].data.endswith(b"\0")


def test_an_odd_deflated_file_goes_out_deflated_anew(scp: StorageScp, tmp_path: Path) -> None:
    """A file stored deflated with an odd-length stream (no padding): storescu inflates
    and deflates every data set it sends; dispatch does so for this one (an even one
    goes as stored), so the wire is the same and of even length."""
    plain = odd_when_deflated(tmp_path)
    info = read_info(str(plain))
    raw = plain.read_bytes()
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    stream = compressor.compress(raw[info.dataset_offset :]) + compressor.flush()
    ds = dcmread(plain)
    ds.file_meta.TransferSyntaxUID = UID(DEFLATED_LE)
    meta = BytesIO()
    write_file_meta_info(meta, ds.file_meta)  # type: ignore[arg-type]  # any binary file
    deflated = tmp_path / "deflated.dcm"
    deflated.write_bytes(b"\0" * 128 + b"DICM" + meta.getvalue() + stream)
    setup = lambda s: s.accept_only(transfer_syntaxes={DEFLATED_LE})  # noqa: E731
    theirs, ours = observe_both(scp, "-xd", deflated, setup=setup)
    assert (ours.run.code, wire(ours)) == (theirs.run.code, wire(theirs))
    assert [s.data for s in ours.stores] == [stream + b"\0"]


def test_any_class_is_refused_by_submit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Jobs do not take it: one line, exit 1, nothing submitted."""
    file = make_file(tmp_path / "a.dcm")
    code = main(["submit", "-R", "--any-class", "127.0.0.1", "104", str(file)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and "--any-class is not available with dispatch submit" in err[0]
