"""Streaming conversion between the uncompressed syntaxes, checked against pydicom.

The oracle: pydicom reads the source file and the converted data set; every element
(group lengths aside) must be in both, at the same place in the tree, with the same value
bytes once both are brought to little endian by the byte width of their own VR.
"""

from __future__ import annotations

import array
import io
import struct
import subprocess
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filereader import _read_file_meta_info, read_dataset, read_preamble
from pydicom.tag import BaseTag

from dispatch.codecs.transcode import convert_dataset
from dispatch.dicomfile import detect_syntax, read_info
from dispatch.errors import BadFile
from dispatch.uids import DEFLATED_LE, EXPLICIT_BE, EXPLICIT_LE, IMPLICIT_LE, JPEG_BASELINE
from tests.support.dicom_files import make_file, pydicom_file
from tests.support.programs import require_program

TARGETS = {"implicit": IMPLICIT_LE, "explicit": EXPLICIT_LE, "big": EXPLICIT_BE}
ENCODING = {IMPLICIT_LE: (True, True), EXPLICIT_LE: (False, True), EXPLICIT_BE: (False, False)}

SOURCES = [
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
    "rtdose_expb.dcm",
    "nested_priv_SQ.dcm",
    "priv_SQ.dcm",
    "test-SR.dcm",
    "reportsi.dcm",
    "image_dfl.dcm",
    "waveform_ecg.dcm",
    "SC_rgb_small_odd.dcm",
    "SC_rgb_small_odd_big_endian.dcm",
    "liver_expb_1frame.dcm",
    "examples_palette.dcm",
    "badVR.dcm",
]

_WIDTH = {"OW": 2, "US": 2, "SS": 2, "AT": 2, "UL": 4, "SL": 4, "FL": 4, "OL": 4, "OF": 4}
_WIDTH.update({"FD": 8, "OD": 8, "UV": 8, "SV": 8, "OV": 8})
_CODE = {2: "H", 4: "I", 8: "Q"}


def _to_little(value: bytes, vr: str | None, little: bool) -> bytes:
    width = _WIDTH.get(vr or "", 1)
    if little or width == 1:
        return value
    whole = len(value) - len(value) % width
    words = array.array(_CODE[width], value[:whole])
    words.byteswap()
    return words.tobytes() + value[whole:]


_DECODED_BY_READER = {0x00080005, 0x00280103}

Leaf = tuple[tuple[Any, ...], str | None, bytes]


def _leaves(ds: Dataset, path: tuple[Any, ...] = ()) -> Iterator[Leaf]:
    """(path, VR as stored or None, value bytes in little endian) of every element."""
    little = ds.original_encoding[1] is not False
    for tag in list(ds._dict):
        if tag.element == 0 or tag == 0xFFFCFFFC:
            continue  # group lengths and trailing padding are dropped
        raw = ds._dict[tag]
        stored_vr = raw.VR if isinstance(raw, RawDataElement) else None
        elem = ds[tag]
        if elem.VR == "SQ":
            yield (*path, int(tag)), "SQ", struct.pack("<I", len(elem.value))
            for index, item in enumerate(elem.value):
                yield from _leaves(item, (*path, int(tag), index))
        elif tag in _DECODED_BY_READER or not isinstance(raw, RawDataElement):
            # pydicom decodes these while reading: compare their values.
            yield (*path, int(tag)), elem.VR, repr(elem.value).encode()
        else:
            yield (*path, int(tag)), stored_vr, _to_little(raw.value or b"", stored_vr, little)


def _layout(path: Path) -> tuple[int, int, str]:
    """Offset, length and syntax of the data set, found by pydicom's own reader."""
    with open(path, "rb") as f:
        read_preamble(f, force=True)
        meta = _read_file_meta_info(f)
        offset = f.tell()
        head = f.read(6)
    syntax = meta.get("TransferSyntaxUID") or detect_syntax(head)
    return offset, path.stat().st_size - offset, str(syntax)


def _convert(path: Path, target: str, chunk_size: int = 1 << 20) -> bytes:
    offset, length, syntax = _layout(path)
    with open(path, "rb") as f:
        chunks = list(convert_dataset(f, offset, length, syntax, target, chunk_size))
    assert all(chunks), "no empty chunk is yielded"
    return b"".join(chunks)


def _stored(ds: Dataset, tag: int) -> RawDataElement:
    """The element as read from the bytes, before pydicom converts its value."""
    raw = ds._dict[BaseTag(tag)]
    assert isinstance(raw, RawDataElement)
    return raw


def _read(data: bytes, target: str) -> Dataset:
    implicit, little = ENCODING[target]
    return read_dataset(io.BytesIO(data), implicit, little)


@pytest.mark.filterwarnings("ignore:Invalid value for VR")
@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("name", SOURCES)
def test_conversion_keeps_every_element_value(name: str, target: str) -> None:
    path = pydicom_file(name)
    source = dcmread(path, force=True)
    source_implicit = source.original_encoding[0]
    converted = _read(_convert(path, TARGETS[target]), TARGETS[target])

    expected = list(_leaves(source))
    got = list(_leaves(converted))
    assert [leaf[0] for leaf in got] == [leaf[0] for leaf in expected]
    for (where, source_vr, source_value), (_, out_vr, out_value) in zip(expected, got, strict=True):
        assert out_value == source_value, f"value of {where}"
        if target != "implicit" and source_vr is not None and out_vr not in ("UN", "SQ"):
            assert out_vr == source_vr, f"VR of {where}"
        public = not (where[-1] >> 16) & 1
        if target != "implicit" and source_implicit and public and out_vr not in ("UN", "SQ"):
            assert str(out_vr) in dictionary_VR(where[-1]), f"VR of {where} from the dictionary"


_DCMDUMP_SYNTAX = {"implicit": "-ti", "explicit": "-te", "big": "-tb"}


@pytest.mark.parametrize("target", list(TARGETS))
def test_dcmtk_reads_every_converted_data_set(tmp_path: Path, target: str) -> None:
    dcmdump = require_program("dcmdump")
    for name in SOURCES:
        out = tmp_path / f"{name}.{target}"
        out.write_bytes(_convert(pydicom_file(name), TARGETS[target]))
        done = subprocess.run(
            [str(dcmdump), "-f", _DCMDUMP_SYNTAX[target], str(out)],
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
        )
        assert done.returncode == 0, (name, done.stderr)
        assert not [line for line in done.stderr.splitlines() if line.startswith("E:")], name


@pytest.mark.parametrize("name", ["MR_small.dcm", "rtplan.dcm", "nested_priv_SQ.dcm"])
def test_small_chunks_give_the_same_bytes(name: str) -> None:
    path = pydicom_file(name)
    for target in TARGETS.values():
        assert _convert(path, target, chunk_size=64) == _convert(path, target)


def test_pixel_data_of_16_bit_image_is_byte_swapped_for_big_endian() -> None:
    path = pydicom_file("MR_small.dcm")
    source = dcmread(path)
    converted = _read(_convert(path, EXPLICIT_BE), EXPLICIT_BE)
    raw = _stored(converted, 0x7FE00010)
    assert raw.VR == "OW"
    assert _to_little(raw.value or b"", "OW", False) == source.PixelData
    assert raw.value != source.PixelData


def test_implicit_pixel_data_becomes_ow_and_ambiguous_us_ss_follows_pixel_representation() -> None:
    path = pydicom_file("MR_small_implicit.dcm")
    converted = _read(_convert(path, EXPLICIT_LE), EXPLICIT_LE)
    assert _stored(converted, 0x7FE00010).VR == "OW"
    pixel_representation = converted.PixelRepresentation
    if 0x00280106 in converted._dict:
        expected = "SS" if pixel_representation == 1 else "US"
        assert expected == _stored(converted, 0x00280106).VR


def test_same_syntax_yields_the_raw_bytes(tmp_path: Path) -> None:
    path = make_file(tmp_path / "a.dcm", size=4096)
    info = read_info(str(path))
    with open(path, "rb") as f:
        out = b"".join(
            convert_dataset(
                f, info.dataset_offset, info.dataset_length, EXPLICIT_LE, EXPLICIT_LE, 1000
            )
        )
    assert out == path.read_bytes()[info.dataset_offset :]


def test_deflated_source_is_inflated() -> None:
    path = pydicom_file("image_dfl.dcm")
    source = dcmread(path)
    info = read_info(str(path))
    assert info.transfer_syntax == DEFLATED_LE
    converted = _read(_convert(path, EXPLICIT_LE), EXPLICIT_LE)
    assert converted.SOPInstanceUID == source.SOPInstanceUID
    assert converted.PixelData == source.PixelData


def test_un_sequence_of_undefined_length_stays_readable() -> None:
    path = pydicom_file("UN_sequence.dcm")
    offset, length, _ = _layout(path)  # the file says JPEG Lossless, its data set is not
    expected = dcmread(path)[0x4453100C].value
    with open(path, "rb") as f:
        for target in TARGETS.values():
            data = b"".join(convert_dataset(f, offset, length, EXPLICIT_LE, target))
            sequence = _read(data, target)[0x4453100C].value
            assert len(sequence) == len(expected)
            assert [list(item.keys()) for item in sequence] == [
                list(item.keys()) for item in expected
            ]


def test_compressed_syntax_is_refused() -> None:
    with pytest.raises(ValueError), open(pydicom_file("CT_small.dcm"), "rb") as f:
        convert_dataset(f, 0, 10, JPEG_BASELINE, EXPLICIT_LE)


def test_truncated_input_is_a_bad_file() -> None:
    path = pydicom_file("MR_truncated.dcm")
    data = path.read_bytes()
    offset = 334
    with open(path, "rb") as f, pytest.raises(BadFile, match="cannot convert"):
        b"".join(convert_dataset(f, offset, len(data) - offset, EXPLICIT_LE, EXPLICIT_BE))


def _big_file(path: Path, pixel_bytes: int) -> Path:
    """A CT-like explicit VR LE file whose pixel data is ``pixel_bytes`` of zeros (sparse)."""
    make_file(path, size=2)
    data = path.read_bytes()
    head_end = data.index(b"\xe0\x7f\x10\x00OW\x00\x00")
    with open(path, "r+b") as f:
        f.seek(head_end)
        f.write(b"\xe0\x7f\x10\x00OW\x00\x00" + struct.pack("<I", pixel_bytes))
        f.truncate(head_end + 12 + pixel_bytes)
    return path


def test_large_file_converts_in_bounded_memory(tmp_path: Path) -> None:
    path = _big_file(tmp_path / "big.dcm", 200 * 1024 * 1024)
    info = read_info(str(path))
    total = 0
    tracemalloc.start()
    try:
        with open(path, "rb") as f:
            for chunk in convert_dataset(
                f, info.dataset_offset, info.dataset_length, EXPLICIT_LE, EXPLICIT_BE
            ):
                total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == info.dataset_length
    assert peak < 8 * 1024 * 1024


def test_trailing_padding_is_dropped() -> None:
    path = pydicom_file("CT_small.dcm")
    assert "DataSetTrailingPadding" in dcmread(path)
    info = read_info(str(path))  # its data set range already stops before the padding
    for target in TARGETS.values():
        with open(path, "rb") as f:
            chunks = convert_dataset(
                f, info.dataset_offset, info.dataset_length, info.transfer_syntax, target
            )
            assert 0xFFFCFFFC not in _read(b"".join(chunks), target)
        full = path.stat().st_size - info.dataset_offset
        if target != info.transfer_syntax:  # a conversion drops it by itself
            with open(path, "rb") as f:
                chunks = convert_dataset(f, info.dataset_offset, full, info.transfer_syntax, target)
                assert 0xFFFCFFFC not in _read(b"".join(chunks), target)
