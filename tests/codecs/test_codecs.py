"""Pixel data conversion (:mod:`dispatch.codecs`): decoding pydicom's compressed test
files, encoding uncompressed ones, lossy attributes, refusals, bounded memory."""

from __future__ import annotations

import io
import os
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from dispatch import uids
from dispatch.codecs import Fidelity, fidelity
from dispatch.codecs.convert import open_conversion, target_checker
from dispatch.dicomfile import read_info
from dispatch.errors import BadFile
from tests.support.dicom_files import pydicom_file
from tests.support.reference_pixels import reference_pixels

COMPRESSED = [
    "SC_rgb_jpeg_dcmtk.dcm",  # JPEG baseline, YBR_FULL
    "JPGExtended.dcm",  # JPEG extended, 12-bit
    "SC_rgb_jpeg_gdcm.dcm",  # JPEG lossless SV1, RGB
    "JPEG2000.dcm",
    "examples_jpeg2k.dcm",  # JPEG 2000 lossless, YBR_RCT
    "MR_small_RLE.dcm",
    "SC_rgb_rle_2frame.dcm",
    "rtdose_rle.dcm",  # 32-bit, 15 frames
    "MR_small_jpeg_ls_lossless.dcm",
    "JPEGLSNearLossless_16.dcm",
]
UNCOMPRESSED = ["CT_small.dcm", "MR_small.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm"]
LOSSLESS_TARGETS = [
    uids.RLE_LOSSLESS,
    uids.JPEG_LS_LOSSLESS,
    uids.JPEG_2000_LOSSLESS,
    uids.JPEG_LOSSLESS_SV1,
]


def convert(path: Path | str, target: str) -> Dataset:
    """The data set of `path` converted to `target`, read back as a Part-10 file."""
    info = read_info(str(path))
    with open(path, "rb") as handle:
        body = b"".join(open_conversion(handle, info, target))
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = UID(target)
    meta.MediaStorageSOPClassUID = UID(info.sop_class_uid)
    meta.MediaStorageSOPInstanceUID = UID(info.sop_instance_uid)
    head = io.BytesIO()
    write_file_meta_info(head, meta)  # type: ignore[arg-type]  # pydicom accepts any binary file
    return pydicom.dcmread(io.BytesIO(b"\0" * 128 + b"DICM" + head.getvalue() + body))


def pixels(ds: Dataset) -> np.ndarray:
    return np.asarray(ds.pixel_array)


@pytest.mark.parametrize("name", COMPRESSED)
@pytest.mark.parametrize("target", [uids.EXPLICIT_LE, uids.IMPLICIT_LE, uids.EXPLICIT_BE])
def test_compressed_files_decompress_to_the_reference_pixels(
    name: str, target: str, tmp_path: Path
) -> None:
    """pydicom's pixels, dcmdjpeg's for lossy JPEG (see tests.support.reference_pixels)."""
    source = pydicom.dcmread(pydicom_file(name))
    out = convert(pydicom_file(name), target)
    expected = reference_pixels(pydicom_file(name), tmp_path / "reference.dcm")
    assert np.array_equal(pixels(out), expected)
    assert out.SOPInstanceUID == source.SOPInstanceUID
    if source.SamplesPerPixel == 3:
        assert out.PhotometricInterpretation == "RGB"


def test_decompressed_to_deflated() -> None:
    path = pydicom_file("MR_small_RLE.dcm")
    out = convert(path, uids.DEFLATED_LE)
    assert np.array_equal(pixels(out), pixels(pydicom.dcmread(path)))


@pytest.mark.parametrize("name", [*UNCOMPRESSED, "examples_rgb_color.dcm"])
@pytest.mark.parametrize("target", LOSSLESS_TARGETS)
def test_lossless_encoding_keeps_every_pixel(name: str, target: str) -> None:
    path = pydicom_file(name)
    source = pydicom.dcmread(path)
    problem = target_checker(read_info(str(path)))(target)
    if problem:
        # Only the limits of the target's encoder may refuse (signed data for JPEG).
        assert target == uids.JPEG_LOSSLESS_SV1 and source.PixelRepresentation == 1, problem
        return
    out = convert(path, target)
    assert out.file_meta.TransferSyntaxUID == target
    assert np.array_equal(pixels(out), pixels(source))
    assert "LossyImageCompression" not in out


def test_compressed_file_reencoded_losslessly() -> None:
    path = pydicom_file("MR_small_jpeg_ls_lossless.dcm")
    out = convert(path, uids.RLE_LOSSLESS)
    assert np.array_equal(pixels(out), pixels(pydicom.dcmread(path)))


@pytest.mark.parametrize(
    ("name", "target", "method"),
    [
        ("examples_rgb_color.dcm", uids.JPEG_BASELINE, "ISO_10918_1"),
        ("CT_small.dcm", uids.JPEG_2000, "ISO_15444_1"),
        ("MR_small.dcm", uids.JPEG_LS_NEAR_LOSSLESS, "ISO_14495_1"),
    ],
)
def test_lossy_encoding_records_the_compression(name: str, target: str, method: str) -> None:
    path = pydicom_file(name)
    source = pydicom.dcmread(path)
    out = convert(path, target)
    assert out.LossyImageCompression == "01"
    assert out.LossyImageCompressionMethod == method
    ratio = float(out.LossyImageCompressionRatio)
    expected = len(source.PixelData) / sum(len(f) for f in _fragments(out))
    assert ratio == pytest.approx(expected, rel=0.02)
    assert ratio > 1
    decoded = pixels(out).astype(np.int64)
    assert decoded.shape == pixels(source).shape
    # Lossy, yet close: a mean error of a few units at most.
    assert np.abs(decoded - pixels(source).astype(np.int64)).mean() < 8


def _fragments(ds: Dataset) -> list[bytes]:
    from pydicom.encaps import generate_fragments

    data = ds.PixelData
    bot_length = struct.unpack("<I", data[4:8])[0]
    return list(generate_fragments(data[8 + bot_length :]))


def test_lossy_source_stays_marked_lossy_when_decompressed() -> None:
    out = convert(pydicom_file("SC_rgb_jpeg_dcmtk.dcm"), uids.EXPLICIT_LE)
    assert out.LossyImageCompression == "01"


def test_encoder_limits_are_reasons_not_failures() -> None:
    check = target_checker(read_info(str(pydicom_file("CT_small.dcm"))))
    assert "16-bit" in check(uids.JPEG_BASELINE)
    assert "signed" in check(uids.JPEG_LOSSLESS_SV1)
    assert check(uids.RLE_LOSSLESS) == ""


def test_frame_that_cannot_be_encoded_is_a_bad_file_before_anything_is_sent() -> None:
    path = pydicom_file("SC_rgb_small_odd_jpeg.dcm")  # 3 x 3 pixels: too small for OpenJPEG
    info = read_info(str(path))
    with open(path, "rb") as handle, pytest.raises(BadFile, match="cannot convert"):
        open_conversion(handle, info, uids.JPEG_2000_LOSSLESS)


def test_fidelity_table() -> None:
    assert fidelity(uids.JPEG_BASELINE, uids.EXPLICIT_LE) is Fidelity.LOSSLESS
    assert fidelity(uids.EXPLICIT_LE, uids.JPEG_BASELINE) is Fidelity.LOSSY
    assert fidelity(uids.JPEG_2000, uids.RLE_LOSSLESS) is Fidelity.LOSSLESS
    assert fidelity(uids.DEFLATED_LE, uids.RLE_LOSSLESS) is None
    assert fidelity(uids.RLE_LOSSLESS, uids.RLE_LOSSLESS) is Fidelity.SAME


# -- bounded memory ---------------------------------------------------------------------

BIG = os.environ.get("DISPATCH_BIG_TESTS") == "1"
"""With DISPATCH_BIG_TESTS=1 the multi-frame object is 1 GB, else 64 MB (same bound)."""


def _multiframe(path: Path, frames: int, rows: int = 512, columns: int = 512) -> Path:
    """A native 16-bit multi-frame file, written a frame at a time (quick at 1 GB)."""
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7.3"
    ds.SOPInstanceUID = generate_uid()
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, columns, frames
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta = meta
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    y, x = np.mgrid[0:rows, 0:columns]
    frame = ((x * 3 + y * 5) % 4096).astype("<u2").tobytes()
    with open(path, "wb") as out:
        out.write(buffer.getvalue())
        out.write(struct.pack("<HH2s2xI", 0x7FE0, 0x0010, b"OW", len(frame) * frames))
        for _ in range(frames):
            out.write(frame)
    return path


@pytest.mark.parametrize("target", [uids.RLE_LOSSLESS, uids.JPEG_LS_LOSSLESS])
def test_multiframe_conversion_memory_is_bounded_by_frames(tmp_path: Path, target: str) -> None:
    frame_bytes = 512 * 512 * 2
    frames = (1 << 30) // frame_bytes if BIG else 128
    path = _multiframe(tmp_path / "big.dcm", frames)
    info = read_info(str(path))
    sent = 0
    tracemalloc.start()
    try:
        with open(path, "rb") as handle:
            for chunk in open_conversion(handle, info, target):
                sent += len(chunk)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sent > frames * 8  # every frame went out
    assert peak < 12 * frame_bytes, f"peak {peak} bytes for {frames} frames"
