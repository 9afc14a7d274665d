"""``dispatch send`` converts transfer syntaxes for peers that do not accept the file's
own: DCMTK's storescp stores what it received, pydicom decodes it, pixels compared."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dispatch import uids
from dispatch.uids import DEFAULT_STORAGE_CLASSES
from tests.cli.conftest import observe, run_dispatch
from tests.conftest import StorescpFactory
from tests.support.dicom_files import make_file, pydicom_file
from tests.support.reference_pixels import reference_pixels
from tests.support.scp import StorageScp

COMPRESSED = [
    "SC_rgb_jpeg_dcmtk.dcm",
    "JPEG2000.dcm",
    "MR_small_RLE.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "JPGExtended.dcm",
    "SC_rgb_rle_2frame.dcm",
]
UNCOMPRESSED = ["CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm"]


def received(folder: Path) -> dict[str, pydicom.Dataset]:
    """The files a storescp stored, by SOP Instance UID."""
    found = [pydicom.dcmread(p) for p in sorted(folder.rglob("*")) if p.is_file()]
    return {ds.SOPInstanceUID: ds for ds in found}


@pytest.mark.parametrize("name", COMPRESSED)
def test_storescp_accepting_only_uncompressed_gets_the_file_decompressed(
    storescp: StorescpFactory, name: str
) -> None:
    peer_ = storescp()
    path = pydicom_file(name)
    run = run_dispatch("127.0.0.1", peer_.port, path)
    assert run.code == 0, run.output
    source = pydicom.dcmread(path)
    ds = received(peer_.output_dir)[source.SOPInstanceUID]
    assert ds.file_meta.TransferSyntaxUID in (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
    expected = reference_pixels(path, peer_.output_dir.parent / "reference.dcm")
    assert np.array_equal(ds.pixel_array, expected)


@pytest.mark.parametrize(
    ("storescp_option", "propose", "expected"),
    [("+xv", "-xv", uids.JPEG_2000_LOSSLESS), ("+xr", "-xr", uids.RLE_LOSSLESS)],
)
def test_storescp_preferring_a_compressed_syntax_gets_it_losslessly(
    storescp: StorescpFactory, storescp_option: str, propose: str, expected: str
) -> None:
    """One combined context (+C): storescp picks its preferred compressed syntax, and
    the uncompressed files are compressed into it, every pixel kept."""
    peer_ = storescp(storescp_option)
    files = [pydicom_file(n) for n in UNCOMPRESSED]
    run = run_dispatch("127.0.0.1", peer_.port, propose, "+C", *files)
    assert run.code == 0, run.output
    got = received(peer_.output_dir)
    for path in files:
        source = pydicom.dcmread(path)
        ds = got[source.SOPInstanceUID]
        assert ds.file_meta.TransferSyntaxUID == expected
        assert np.array_equal(ds.pixel_array, source.pixel_array), path.name


@pytest.mark.parametrize(
    ("option", "target"),
    [("-xt", uids.JPEG_LS_LOSSLESS), ("-xs", uids.JPEG_LOSSLESS_SV1), ("-xr", uids.RLE_LOSSLESS)],
)
def test_peer_accepting_one_lossless_syntax_gets_it(
    scp: StorageScp, option: str, target: str
) -> None:
    """A compressed file re-encoded into the only syntax the peer accepts."""
    sources = {
        uids.JPEG_LS_LOSSLESS: "MR_small_RLE.dcm",
        uids.JPEG_LOSSLESS_SV1: "SC_rgb_rle_2frame.dcm",  # JPEG lossless: unsigned only
        uids.RLE_LOSSLESS: "MR_small_jpeg_ls_lossless.dcm",
    }
    path = pydicom_file(sources[target])
    seen = observe(
        run_dispatch, scp, option, path,
        setup=lambda p: p.accept_only(transfer_syntaxes=[target]),
    )  # fmt: skip
    assert seen.run.code == 0, seen.run.output
    (store,) = seen.stores
    assert store.transfer_syntax == target
    ds = store.dataset()
    assert np.array_equal(ds.pixel_array, pydicom.dcmread(path).pixel_array)


def test_lossy_conversion_is_refused_without_the_flag(scp: StorageScp, tmp_path: Path) -> None:
    files = [pydicom_file("CT_small.dcm"), pydicom_file("MR_small.dcm")]

    def setup(p: StorageScp) -> None:
        p.accept_only(transfer_syntaxes=[uids.JPEG_2000])

    report = tmp_path / "report.jsonl"
    seen = observe(run_dispatch, scp, "-nh", "-xw", "--report", report, *files, setup=setup)
    assert seen.stores == []
    assert seen.run.code == 0, seen.run.output
    assert "lossy conversion not allowed" in report.read_text()
    assert "Traceback" not in seen.run.output


def test_lossy_conversion_with_the_flag_marks_the_images(scp: StorageScp) -> None:
    path = pydicom_file("CT_small.dcm")

    def setup(p: StorageScp) -> None:
        p.accept_only(transfer_syntaxes=[uids.JPEG_2000])

    seen = observe(run_dispatch, scp, "-xw", "--allow-lossy", path, setup=setup)
    assert seen.run.code == 0, seen.run.output
    (store,) = seen.stores
    assert store.transfer_syntax == uids.JPEG_2000
    ds = store.dataset()
    assert ds.LossyImageCompression == "01"
    assert ds.LossyImageCompressionMethod == "ISO_15444_1"
    assert float(ds.LossyImageCompressionRatio) > 1
    assert ds.pixel_array.shape == pydicom.dcmread(path).pixel_array.shape


def test_propose_own_puts_the_files_syntaxes_first(scp: StorageScp) -> None:
    rle, jls = pydicom_file("MR_small_RLE.dcm"), pydicom_file("MR_small_jpeg_ls_lossless.dcm")
    seen = observe(run_dispatch, scp, "--propose-own", rle, jls)
    assert seen.run.code == 0, seen.run.output
    assert [c.transfer_syntaxes for c in seen.association.proposed] == [
        (uids.RLE_LOSSLESS,),
        (uids.JPEG_LS_LOSSLESS,),
        (uids.EXPLICIT_LE,),
        (uids.EXPLICIT_BE, uids.IMPLICIT_LE),
    ]
    # Accepted as they are: nothing converted.
    assert [s.transfer_syntax for s in seen.stores] == [uids.RLE_LOSSLESS, uids.JPEG_LS_LOSSLESS]


def test_propose_own_is_refused_with_a_profile() -> None:
    run = run_dispatch("-xf", "x.cfg", "Default", "--propose-own", "127.0.0.1", "104", "f")
    assert run.code == 1
    assert "--config-file not allowed with --propose-own" in run.output


def test_more_than_128_contexts_go_over_several_associations(
    scp: StorageScp, tmp_path: Path
) -> None:
    """64 classes with implicit VR files and --propose-own: 3 contexts each, 192 in
    all, over two associations; every file stored in its own syntax."""
    files = [
        make_file(tmp_path / f"{n}.dcm", ts="implicit", sop_class_uid=sop_class)
        for n, sop_class in enumerate(DEFAULT_STORAGE_CLASSES)
    ]
    seen = observe(run_dispatch, scp, "--propose-own", *files, associations=2)
    assert seen.run.code == 0, seen.run.output
    assert [len(a.proposed) for a in seen.associations] == [126, 66]
    assert len(seen.stores) == len(files)
    assert {s.transfer_syntax for s in seen.stores} == {uids.IMPLICIT_LE}


def test_split_associations_halt_after_a_failure(scp: StorageScp, tmp_path: Path) -> None:
    """Halt mode: the first file fails, so the second association is never requested
    and every other file is reported not sent."""
    files = [
        make_file(tmp_path / f"{n}.dcm", ts="implicit", sop_class_uid=sop_class)
        for n, sop_class in enumerate(DEFAULT_STORAGE_CLASSES)
    ]
    report = tmp_path / "report.jsonl"
    seen = observe(
        run_dispatch, scp, "--propose-own", "--report", report, *files,
        setup=lambda p: p.respond(0xA700),
    )  # fmt: skip
    assert seen.run.code == 0xA7
    assert len(seen.associations) == 1
    lines = report.read_text().splitlines()
    assert len(lines) == len(files)
    assert sum('"not_sent"' in line.lower() or "not attempted" in line for line in lines) >= 22


def test_invented_identities_go_on_across_split_associations(
    scp: StorageScp, tmp_path: Path
) -> None:
    """+II counters never restart: the 64 files of two associations share one series."""
    files = [
        make_file(tmp_path / f"{n}.dcm", ts="implicit", sop_class_uid=sop_class)
        for n, sop_class in enumerate(DEFAULT_STORAGE_CLASSES)
    ]
    seen = observe(run_dispatch, scp, "--propose-own", "+II", *files, associations=2)
    assert seen.run.code == 0, seen.run.output
    datasets = [s.dataset() for s in seen.stores]
    assert len({ds.SeriesInstanceUID for ds in datasets}) == 1
    assert len({ds.SOPInstanceUID for ds in datasets}) == len(files)
    assert len({ds.InstanceNumber for ds in datasets}) == len(files)


def test_old_vrs_apply_when_pixel_data_is_converted(scp: StorageScp, tmp_path: Path) -> None:
    """-u on the codec path: a UT element goes out as OB while the pixels are encoded."""
    path = make_file(tmp_path / "ut.dcm")
    ds = pydicom.dcmread(path)
    ds.add_new(0x00204000, "UT", "an image comment of unlimited length")
    ds.save_as(path)
    seen = observe(
        run_dispatch, scp, "-u", "-xr", path,
        setup=lambda p: p.accept_only(transfer_syntaxes=[uids.RLE_LOSSLESS]),
    )  # fmt: skip
    assert seen.run.code == 0, seen.run.output
    (store,) = seen.stores
    assert store.transfer_syntax == uids.RLE_LOSSLESS
    received_ds = store.dataset()
    assert received_ds[0x00204000].VR == "OB"
    assert received_ds[0x00204000].value.rstrip(b" ") == b"an image comment of unlimited length"
