"""``dispatch send`` puts on the wire what DCMTK's storescu puts there, for the same
command line: presentation contexts, AE titles, maximum PDU, and the context (and so
the transfer syntax and data set) chosen for each file."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
    RLELossless,
)

from dispatch import uids
from tests.cli.conftest import Observed, Runner, observe, observe_both
from tests.support.dicom_files import make_file, pydicom_file
from tests.support.scp import StorageScp


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small synthetic files: CT in each uncompressed syntax, and an MR image."""
    folder = tmp_path_factory.mktemp("parity")
    files = {
        ts: make_file(folder / f"ct-{ts}.dcm", ts=ts) for ts in ("explicit", "implicit", "big")
    }
    files["mr"] = make_file(folder / "mr.dcm", ts="explicit", sop_class_uid=MRImageStorage)
    return files


#: Data Set Trailing Padding (FFFC,FFFC): storescu leaves it out of what it sends;
#: :func:`test_trailing_padding_is_left_out_as_by_storescu` covers it on its own.
TRAILING_PADDING = 0xFFFCFFFC


def values(ds: Dataset) -> dict[int, object]:
    """Every top-level attribute's decoded value, by tag (VR and encoding aside), but
    the trailing padding."""
    return {int(elem.tag): elem.value for elem in ds if elem.tag != TRAILING_PADDING}


# -- presentation contexts -------------------------------------------------------------

CONTEXT_OPTIONS = [
    [],
    ["-xe"],
    ["-xb"],
    ["-xi"],
    ["-xs"],
    ["-xr"],
    ["-xd"],
    ["-xv"],
    ["-R"],
    ["+C"],
    ["-R", "+C"],
    ["-R", "-xi"],
    ["-xb", "-xe"],
]


@pytest.mark.parametrize("options", CONTEXT_OPTIONS, ids=lambda o: " ".join(o) or "default")
def test_proposed_presentation_contexts_equal_storescus(
    scp: StorageScp, inputs: dict[str, Path], options: list[str]
) -> None:
    files = [inputs["explicit"], inputs["mr"]]
    dcmtk, ours = observe_both(scp, *options, *files)
    assert dcmtk.run.code == 0, dcmtk.run.output
    assert ours.run.code == 0, ours.run.output
    assert ours.association.proposed == dcmtk.association.proposed
    assert len(ours.stores) == 2


def test_default_proposal_is_two_contexts_per_storage_class(
    scp: StorageScp, inputs: dict[str, Path]
) -> None:
    dcmtk, ours = observe_both(scp, inputs["explicit"])
    proposed = ours.association.proposed
    assert len(proposed) == 128
    assert [cx.context_id for cx in proposed] == list(range(1, 256, 2))
    assert proposed[0].transfer_syntaxes == (ExplicitVRLittleEndian,)
    assert proposed[1].transfer_syntaxes == (ExplicitVRBigEndian, ImplicitVRLittleEndian)
    assert proposed == dcmtk.association.proposed


def test_required_proposes_only_the_classes_of_the_inputs(
    scp: StorageScp, inputs: dict[str, Path]
) -> None:
    dcmtk, ours = observe_both(scp, "-R", inputs["explicit"], inputs["mr"])
    classes = {cx.abstract_syntax for cx in ours.association.proposed}
    assert classes == {CTImageStorage, MRImageStorage}
    assert ours.association.proposed == dcmtk.association.proposed


def test_ae_titles_and_max_pdu_equal_storescus(scp: StorageScp, inputs: dict[str, Path]) -> None:
    options = ["-aet", "MYSCU", "-aec", "OTHERSCP", "-pdu", "32768"]
    dcmtk, ours = observe_both(scp, *options, inputs["explicit"])
    for seen in (dcmtk, ours):
        assert seen.run.code == 0, seen.run.output
        record = seen.association
        assert (record.calling_ae, record.called_ae, record.max_pdu) == (
            "MYSCU",
            "OTHERSCP",
            32768,
        )


def test_default_ae_titles_and_max_pdu_equal_storescus(
    scp: StorageScp, inputs: dict[str, Path]
) -> None:
    dcmtk, ours = observe_both(scp, inputs["explicit"])
    expected = ("STORESCU", "ANY-SCP", 16384)
    for seen in (dcmtk, ours):
        record = seen.association
        assert (record.calling_ae, record.called_ae, record.max_pdu) == expected


# -- choice of context per file --------------------------------------------------------

ACCEPTED = {
    "implicit": ImplicitVRLittleEndian,
    "big": ExplicitVRBigEndian,
    "explicit": ExplicitVRLittleEndian,
}


@pytest.mark.parametrize("accepted", sorted(ACCEPTED))
def test_context_and_data_set_per_file_equal_storescus(
    scp: StorageScp, inputs: dict[str, Path], accepted: str
) -> None:
    """A peer accepting one uncompressed syntax: each file goes in that syntax, with the
    same decoded values as storescu sends."""
    files = [
        inputs["explicit"],
        inputs["implicit"],
        inputs["big"],
        pydicom_file("CT_small.dcm"),
        pydicom_file("MR_small_implicit.dcm"),
        pydicom_file("MR_small_bigendian.dcm"),
    ]

    def setup(peer: StorageScp) -> None:
        peer.accept_only(transfer_syntaxes=[ACCEPTED[accepted]])

    dcmtk, ours = observe_both(scp, *files, setup=setup)
    assert (ours.run.code, dcmtk.run.code) == (0, 0), ours.run.output
    assert len(ours.stores) == len(dcmtk.stores) == len(files)
    for mine, theirs in zip(ours.stores, dcmtk.stores, strict=True):
        assert mine.transfer_syntax == theirs.transfer_syntax == ACCEPTED[accepted]
        assert mine.sop_instance_uid == theirs.sop_instance_uid
        assert values(mine.dataset()) == values(theirs.dataset())


@pytest.mark.parametrize("accepted", ["explicit", "implicit"], ids=["as-is", "converted"])
def test_trailing_padding_is_left_out_as_by_storescu(scp: StorageScp, accepted: str) -> None:
    """CT_small.dcm (explicit little endian) ends in Data Set Trailing Padding, which
    storescu does not send, whether the file goes as it is or converted."""
    padded = pydicom_file("CT_small.dcm")

    def setup(peer: StorageScp) -> None:
        peer.accept_only(transfer_syntaxes=[ACCEPTED[accepted]])

    dcmtk, ours = observe_both(scp, padded, setup=setup)
    assert TRAILING_PADDING not in dcmtk.stores[0].dataset()
    assert TRAILING_PADDING not in ours.stores[0].dataset()


def test_file_goes_in_its_own_syntax_when_accepted(
    scp: StorageScp, inputs: dict[str, Path]
) -> None:
    """Default proposal: the big endian and explicit files go in their own syntax; the
    implicit one in whatever storescu picks for it."""
    files = [inputs["explicit"], inputs["implicit"], inputs["big"]]
    dcmtk, ours = observe_both(scp, *files)
    assert [s.transfer_syntax for s in ours.stores] == [s.transfer_syntax for s in dcmtk.stores]
    assert ours.stores[0].transfer_syntax == ExplicitVRLittleEndian
    assert ours.stores[2].transfer_syntax == ExplicitVRBigEndian
    for mine, theirs in zip(ours.stores, dcmtk.stores, strict=True):
        assert values(mine.dataset()) == values(theirs.dataset())


@pytest.mark.parametrize("options", [[], ["-nh"]], ids=["halt", "no-halt"])
def test_compressed_file_without_its_context(
    send: Runner, scp: StorageScp, inputs: dict[str, Path], options: list[str]
) -> None:
    """An RLE file with no RLE context proposed. storescu cannot convert it: not sent;
    in halt mode the run ends there (A-ABORT, exit 1), with -nh the next file goes.
    dispatch decompresses it (see tests/cli/test_conversion.py): both files go."""
    rle = pydicom_file("MR_small_RLE.dcm")
    seen: Observed = observe(send, scp, *options, rle, inputs["explicit"])
    if seen.run.runner == "dispatch":
        assert seen.run.code == 0, seen.run.output
        assert [s.transfer_syntax for s in seen.stores] == [
            ExplicitVRLittleEndian,
            ExplicitVRLittleEndian,
        ]
        assert seen.association.ended == "released"
    elif options:
        assert seen.run.code == 0, seen.run.output
        assert len(seen.stores) == 1
        assert seen.association.ended == "released"
    else:
        assert seen.run.code == 1, seen.run.output
        assert seen.stores == []
        assert seen.association.ended != "released"


def test_compressed_file_goes_in_its_syntax_when_proposed(send: Runner, scp: StorageScp) -> None:
    rle = pydicom_file("MR_small_RLE.dcm")
    seen = observe(send, scp, "-xr", rle)
    assert seen.run.code == 0, seen.run.output
    assert [s.transfer_syntax for s in seen.stores] == [RLELossless]


def test_deflated_proposal_sends_deflated_when_accepted(
    scp: StorageScp, inputs: dict[str, Path]
) -> None:
    def setup(peer: StorageScp) -> None:
        peer.accept_only(transfer_syntaxes=[uids.DEFLATED_LE])

    dcmtk, ours = observe_both(scp, "-xd", inputs["explicit"], setup=setup)
    assert ours.run.code == dcmtk.run.code
    assert [s.transfer_syntax for s in ours.stores] == [s.transfer_syntax for s in dcmtk.stores]
    for mine, theirs in zip(ours.stores, dcmtk.stores, strict=True):
        assert values(mine.dataset()) == values(theirs.dataset())


# -- PDU sizes -------------------------------------------------------------------------


PDU_HEADER = 6


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CT file with 40 kB of pixel data: several PDUs whatever the limit."""
    return make_file(tmp_path_factory.mktemp("large") / "large.dcm", size=40_000)


def test_max_send_pdu_caps_our_pdus_as_storescu(scp: StorageScp, large: Path) -> None:
    dcmtk, ours = observe_both(scp, "--max-send-pdu", "4096", large)
    for seen in (dcmtk, ours):
        assert seen.run.code == 0, seen.run.output
        # The limit is on the PDU's length field, which leaves out the 6-byte header
        # (PS3.8 9.3.1); DCMTK stays 6 bytes below it, both are within.
        assert 0 < seen.association.largest_pdu - PDU_HEADER <= 4096
    assert values(ours.stores[0].dataset()) == values(dcmtk.stores[0].dataset())


def test_peer_max_pdu_is_honoured_as_by_storescu(scp: StorageScp, large: Path) -> None:
    def setup(peer: StorageScp) -> None:
        peer.max_pdu = 5000

    dcmtk, ours = observe_both(scp, large, setup=setup)
    for seen in (dcmtk, ours):
        assert seen.run.code == 0, seen.run.output
        assert 0 < seen.association.largest_pdu - PDU_HEADER <= 5000
