"""Fast file inspection: compared with pydicom's reading, and DCMTK's verdicts on bad files."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filereader import _read_file_meta_info, read_preamble
from pydicom.sequence import Sequence
from pydicom.uid import UID

from dispatch import dicomfile
from dispatch.dicomfile import WHOLE_READ_MAX, read_info, read_info_and_data
from dispatch.errors import BadFile
from dispatch.settings import ReadMode
from dispatch.uids import DEFLATED_LE, EXPLICIT_BE, EXPLICIT_LE, IMPLICIT_LE
from tests.support.dicom_files import make_dataset, make_file, pydicom_file

READABLE = [
    "CT_small.dcm",
    "MR_small.dcm",
    "MR_small_implicit.dcm",
    "MR_small_bigendian.dcm",
    "ExplVR_BigEnd.dcm",
    "ExplVR_BigEndNoMeta.dcm",
    "ExplVR_LitEndNoMeta.dcm",
    "rtplan.dcm",
    "rtstruct.dcm",
    "rtdose.dcm",
    "test-SR.dcm",
    "reportsi.dcm",
    "image_dfl.dcm",
    "waveform_ecg.dcm",
    "SC_rgb_small_odd_big_endian.dcm",
    "JPEG2000.dcm",
    "MR_small_RLE.dcm",
    "SC_rgb_jpeg_gdcm.dcm",
    "badVR.dcm",
]


def _meta_end(path: Path) -> int:
    with open(path, "rb") as f:
        read_preamble(f, force=True)
        _read_file_meta_info(f)
        return f.tell()


@pytest.mark.parametrize("name", READABLE)
def test_info_matches_pydicom(name: str) -> None:
    path = pydicom_file(name)
    ds = dcmread(path, force=True)
    info = read_info(str(path))
    assert info.sop_class_uid == ds.SOPClassUID
    assert info.sop_instance_uid == ds.SOPInstanceUID
    assert info.study_instance_uid == ds.get("StudyInstanceUID")
    assert info.dataset_offset == _meta_end(path)
    padding = ds.get(0xFFFCFFFC)
    left_out = (
        0 if padding is None or info.transfer_syntax == DEFLATED_LE else 12 + len(padding.value)
    )
    assert info.dataset_length == path.stat().st_size - info.dataset_offset - left_out
    assert info.has_meta == bool(ds.file_meta)
    syntax = ds.file_meta.get("TransferSyntaxUID")
    if syntax is not None:
        assert info.transfer_syntax == syntax
    else:
        implicit, little = ds.original_encoding
        expected = IMPLICIT_LE if implicit else (EXPLICIT_LE if little else EXPLICIT_BE)
        assert info.transfer_syntax == expected


def test_bare_big_endian_data_set_is_detected() -> None:
    info = read_info(str(pydicom_file("ExplVR_BigEndNoMeta.dcm")))
    assert (info.transfer_syntax, info.has_meta, info.dataset_offset) == (EXPLICIT_BE, False, 0)


def test_meta_group_without_preamble_is_a_meta_header(tmp_path: Path) -> None:
    source = make_file(tmp_path / "a.dcm")
    bare = tmp_path / "bare.dcm"
    bare.write_bytes(source.read_bytes()[128 + 4 :])
    info = read_info(str(bare), ReadMode.FILE_ONLY)
    assert info.has_meta
    assert info.dataset_offset == read_info(str(source)).dataset_offset - 132


def test_file_only_refuses_a_bare_data_set() -> None:
    with pytest.raises(BadFile, match="file meta information header missing"):
        read_info(str(pydicom_file("ExplVR_LitEndNoMeta.dcm")), ReadMode.FILE_ONLY)


def test_dataset_mode_reads_from_byte_zero(tmp_path: Path) -> None:
    # As DCMTK's -f: the preamble of a Part-10 file is read as data and fails.
    with pytest.raises(BadFile, match="bad DICOM file"):
        read_info(str(pydicom_file("CT_small.dcm")), ReadMode.DATASET)
    info = read_info(str(pydicom_file("ExplVR_LitEndNoMeta.dcm")), ReadMode.DATASET)
    assert (info.has_meta, info.dataset_offset, info.transfer_syntax) == (False, 0, EXPLICIT_LE)


@pytest.mark.parametrize("name", ["MR_truncated.dcm", "rtplan_truncated.dcm"])
def test_truncated_files_are_refused(name: str) -> None:
    with pytest.raises(BadFile, match="truncated data set"):
        read_info(str(pydicom_file(name)))


def _with_sequence(path: Path, ts: str, items: int, text: str = "x" * 60) -> Path:
    ds = make_dataset()
    ds.ReferencedImageSequence = Sequence(
        [Dataset() for _ in range(items)]
    )  # written with undefined lengths below
    for number, item in enumerate(ds.ReferencedImageSequence):
        item.ReferencedSOPInstanceUID = f"1.2.3.{number}"
        item.ReferencedSOPClassUID = ds.SOPClassUID
        item.DerivationDescription = text
    ds.ReferencedImageSequence.is_undefined_length = True
    for item in ds.ReferencedImageSequence:
        item.is_undefined_length_sequence_item = True
    ds.preamble = b"\0" * 128
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(ts)
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize("ts", [EXPLICIT_LE, IMPLICIT_LE, EXPLICIT_BE])
def test_long_undefined_length_sequence_is_walked_across_buffers(tmp_path: Path, ts: str) -> None:
    path = _with_sequence(tmp_path / "seq.dcm", ts, items=2000)
    assert path.stat().st_size > 3 * (1 << 16)
    info = read_info(str(path))
    assert info.transfer_syntax == ts
    # Cut inside an item, far beyond the first buffer: found only by the walk.
    data = path.read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadFile, match="truncated data set"):
        read_info(str(cut))


def test_truncated_encapsulated_pixel_data_is_refused(tmp_path: Path) -> None:
    data = pydicom_file("JPEG2000.dcm").read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[:-100])
    with pytest.raises(BadFile, match="truncated data set"):
        read_info(str(cut))


def test_uids_come_from_the_data_set_not_the_meta_header() -> None:
    # DCMTK's storescu refuses this file: "No SOP Class or Instance UID in file".
    with pytest.raises(BadFile, match="no SOP Class UID in data set"):
        read_info(str(pydicom_file("no_meta_group_length.dcm")))


def test_meta_without_transfer_syntax_uses_the_detected_one(tmp_path: Path) -> None:
    # As DCMTK: the syntax of the data set is detected (here: implicit VR).
    with pytest.raises(BadFile, match="no SOP Class UID in data set"):
        read_info(str(pydicom_file("meta_missing_tsyntax.dcm")))
    source = make_file(tmp_path / "a.dcm", ts="implicit")
    data = source.read_bytes()
    offset = read_info(str(source)).dataset_offset
    meta = b"".join(
        [
            b"\x02\x00\x01\x00OB\x00\x00" + struct.pack("<I", 2) + b"\x00\x01",
            b"\x02\x00\x02\x00UI" + struct.pack("<H", 4) + b"1.2\x00",
        ]
    )
    no_ts = tmp_path / "no_ts.dcm"
    no_ts.write_bytes(b"\0" * 128 + b"DICM" + meta + data[offset:])
    info = read_info(str(no_ts))
    assert info.transfer_syntax == IMPLICIT_LE
    assert info.dataset_offset == 132 + len(meta)
    assert info.sop_instance_uid == dcmread(source).SOPInstanceUID


def test_missing_sop_instance_uid_is_named(tmp_path: Path) -> None:
    ds = make_dataset()
    del ds.SOPInstanceUID
    path = tmp_path / "bare.dcm"
    ds.save_as(path, implicit_vr=True, little_endian=True)
    with pytest.raises(BadFile, match="no SOP Instance UID in data set"):
        read_info(str(path))


def _element(group: int, elem: int, vr: bytes, value: bytes) -> bytes:
    return struct.pack("<HH", group, elem) + vr + struct.pack("<H", len(value)) + value


def test_trailing_nul_and_space_padding_are_stripped(tmp_path: Path) -> None:
    """As DCMTK reads UI values; the space-padded ones are named for rewriting."""
    path = tmp_path / "bare.dcm"
    path.write_bytes(
        _element(0x0008, 0x0016, b"UI", b"1.2.840.10008.5.1.4.1.1.2\x00")
        + _element(0x0008, 0x0018, b"UI", b"1.2.3 ")
        + _element(0x0020, 0x000D, b"UI", b"1.2.4.5 ")
    )
    info = read_info(str(path))
    assert info.sop_class_uid == "1.2.840.10008.5.1.4.1.1.2"
    assert info.sop_instance_uid == "1.2.3"
    assert info.study_instance_uid == "1.2.4.5"
    assert info.space_padded == (0x00080018, 0x0020000D)


def test_study_uid_is_none_when_absent(tmp_path: Path) -> None:
    ds = make_dataset()
    del ds.StudyInstanceUID
    path = tmp_path / "bare.dcm"
    ds.save_as(path, implicit_vr=False, little_endian=True)
    assert read_info(str(path)).study_instance_uid is None


def test_deflated_data_set_is_inflated_for_its_uids(tmp_path: Path) -> None:
    path = pydicom_file("image_dfl.dcm")
    info = read_info(str(path))
    assert info.transfer_syntax == DEFLATED_LE
    assert info.sop_instance_uid == dcmread(path).SOPInstanceUID
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(path.read_bytes()[:-2000])
    with pytest.raises(BadFile, match="truncated data set"):
        read_info(str(cut))


def test_unknown_capital_vr_has_a_four_byte_length(tmp_path: Path) -> None:
    # DCMTK reads an unknown VR of two capitals as a future VR with a 4-byte length.
    ds = make_dataset()
    path = tmp_path / "bare.dcm"
    ds.save_as(path, implicit_vr=False, little_endian=True)
    odd = b"\x09\x00\x10\x10ZZ\x00\x00" + struct.pack("<I", 70000) + b"z" * 70000
    with_zz = tmp_path / "zz.dcm"
    with_zz.write_bytes(path.read_bytes() + odd)
    assert read_info(str(with_zz)).sop_instance_uid == ds.SOPInstanceUID


@pytest.mark.parametrize(("size", "whole"), [(128, True), (WHOLE_READ_MAX + 1000, False)])
def test_a_small_file_comes_back_whole_with_its_info(
    tmp_path: Path, size: int, whole: bool
) -> None:
    path = make_file(tmp_path / "a.dcm", size=size)
    info, data = read_info_and_data(str(path))
    assert info == read_info(str(path))
    assert data == (path.read_bytes() if whole else None)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BadFile, match="cannot open: No such file or directory"):
        read_info(str(tmp_path / "nope.dcm"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = make_file(tmp_path / "a.dcm")
    path.chmod(0)
    with pytest.raises(BadFile, match="cannot open: Permission denied"):
        read_info(str(path))


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(BadFile, match="is a directory"):
        read_info(str(tmp_path))


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "bad DICOM file: empty file"),
        (b"hello\n", "not a DICOM file"),
        (b"hello world, this is text\n", "not a DICOM file"),
        (b"\x89PNG\r\n\x1a\n" + bytes(64), "not a DICOM file"),
        (b"\x00" * 3, "not a DICOM file"),
    ],
)
def test_not_dicom(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "junk.dcm"
    path.write_bytes(content)
    with pytest.raises(BadFile, match=reason) as caught:
        read_info(str(path))
    assert "\n" not in caught.value.reason
    assert "stray bytes" not in caught.value.reason


def test_bare_data_set_cut_short_is_not_called_not_dicom(tmp_path: Path) -> None:
    # A data set without meta header that starts as one (group 0008) but ends early is
    # a damaged DICOM file, not a file of another kind.
    whole = pydicom_file("ExplVR_LitEndNoMeta.dcm").read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(whole[:40])
    with pytest.raises(BadFile) as caught:
        read_info(str(path))
    assert "not a DICOM file" not in caught.value.reason


def test_trailing_padding_is_left_out_of_the_data_set() -> None:
    # As storescu, which does not send Data Set Trailing Padding.
    path = pydicom_file("CT_small.dcm")
    info = read_info(str(path))
    data = path.read_bytes()
    assert data[info.dataset_offset + info.dataset_length :][:4] == b"\xfc\xff\xfc\xff"
    assert "DataSetTrailingPadding" in dcmread(path)


def _both_ways(path: Path, offset: int) -> list[object]:
    """What the general code and the fast one make of ``path``: the meta group from
    byte 132, then the top-level walk of the data set from ``offset``, each as its
    result or its error."""
    results: list[object] = []
    data = path.read_bytes()
    head = data[: dicomfile._HEAD_SIZE]
    for fast in (False, True):
        fd = os.open(path, os.O_RDONLY)
        try:
            outcome: list[object] = []
            for step in ("meta", "walk"):
                src = dicomfile._FileSource(fd, len(data), head)
                found = dicomfile._Found()
                try:
                    if step == "meta" and fast:
                        outcome.append(dicomfile._read_meta(src, head, 132))
                    elif step == "meta":
                        outcome.append(dicomfile._read_meta_from(src, 132, None))
                    elif fast:
                        end = dicomfile._walk_head_le(src, head, offset, found)
                        outcome.append((end, found.values, found.padding_at))
                    else:
                        end = dicomfile._walk(src, offset, True, True, 0, found)
                        outcome.append((end, found.values, found.padding_at))
                except dicomfile._Malformed as exc:
                    outcome.append((exc.reason, exc.truncated))
            results.append(outcome)
        finally:
            os.close(fd)
    return results


@pytest.mark.parametrize(
    "name",
    [
        "CT_small.dcm",
        "test-SR.dcm",
        "reportsi.dcm",
        "badVR.dcm",
        "JPEG2000.dcm",
        "MR_truncated.dcm",
        "waveform_ecg.dcm",
    ],
)
def test_fast_paths_agree_with_the_general_code(name: str, tmp_path: Path) -> None:
    # Whole and cut short at many places (in the meta group, element headers, values,
    # sequences), small files and one larger than the first read.
    source = pydicom_file(name)
    data = source.read_bytes()
    offset = _meta_end(source)
    with open(source, "rb") as f:
        read_preamble(f, force=True)
        syntax = UID(_read_file_meta_info(f).TransferSyntaxUID)
    assert syntax.is_little_endian and not syntax.is_implicit_VR
    cut = tmp_path / "cut.dcm"
    step = max(1, (len(data) - offset) // 300)
    sizes = [len(data), *range(132, offset + 20), *range(offset, len(data), step)]
    for size in [*sizes, *range(len(data) - 30, len(data))]:
        cut.write_bytes(data[:size])
        general, fast = _both_ways(cut, offset)
        assert fast == general, size


def test_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.dcm"
    os.mkfifo(fifo)
    # Nobody writes to it: a plain open would wait for a writer for ever.
    with pytest.raises(BadFile, match="not a regular file: a FIFO"):
        read_info(str(fifo))


def test_a_character_device_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadFile, match="not a regular file: a character device"):
        read_info("/dev/null")


def test_stat_is_that_of_the_file_read(tmp_path: Path) -> None:
    path = make_file(tmp_path / "a.dcm", size=3000)
    os.utime(path, ns=(1_000_000_000, 1_234_567_890_123))
    info, stat = dicomfile.read_info_and_stat(str(path))
    assert info == read_info(str(path))
    assert (stat.st_size, stat.st_mtime_ns) == (path.stat().st_size, 1_234_567_890_123)


def test_stat_of_a_file_that_cannot_be_read_is_not_given(tmp_path: Path) -> None:
    with pytest.raises(BadFile, match="cannot open"):
        dicomfile.read_info_and_stat(str(tmp_path / "gone.dcm"))
