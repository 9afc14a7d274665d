"""A conversion that fails says so in one short line: which file, from which transfer
syntax to which, and why, without the codec library's long message."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.encaps import encapsulate

from dispatch import uids
from dispatch.codecs.convert import _reason, open_conversion
from dispatch.dicomfile import read_info
from dispatch.errors import BadFile
from tests.support.dicom_files import pydicom_file

LIBJPEG = (
    "pylibjpeg: libjpeg error code '-1038' returned from Decode(): A misplaced marker "
    "segment was found - scan start must be zero and scan stop must be 63 for the "
    "sequential operating modes"
)


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (LIBJPEG, "a misplaced marker segment was found"),
        ("Unable to decode: corrupt data\nmore detail", "unable to decode: corrupt data"),
        ("", "ValueError"),
        ("x" * 300, "x" * 97 + "..."),
    ],
)
def test_reason_is_short(message: str, reason: str) -> None:
    assert _reason(ValueError(message)) == reason


@pytest.fixture
def broken_jpeg(tmp_path: Path) -> Path:
    """A JPEG baseline file whose one fragment is not a JPEG stream."""
    ds = pydicom.dcmread(pydicom_file("SC_rgb_jpeg_dcmtk.dcm"))
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xdb" + bytes(range(256)) * 4 + b"\xff\xd9"])
    path = tmp_path / "broken.dcm"
    ds.save_as(path)
    return path


def test_a_frame_that_cannot_be_decoded_is_one_short_line(broken_jpeg: Path) -> None:
    info = read_info(str(broken_jpeg))
    assert info.transfer_syntax == uids.JPEG_BASELINE
    with open(broken_jpeg, "rb") as handle, pytest.raises(BadFile) as caught:
        b"".join(open_conversion(handle, info, uids.EXPLICIT_LE))
    reason = caught.value.reason
    assert reason.startswith("cannot convert from JPEG Baseline to Little Endian Explicit: ")
    assert "\n" not in reason
    assert len(reason) <= 180, reason


def test_a_frame_that_cannot_be_encoded_names_both_syntaxes() -> None:
    path = pydicom_file("SC_rgb_small_odd_jpeg.dcm")  # too small for OpenJPEG
    info = read_info(str(path))
    with open(path, "rb") as handle, pytest.raises(BadFile) as caught:
        open_conversion(handle, info, uids.JPEG_2000_LOSSLESS)
    assert caught.value.reason.startswith(
        "cannot convert from JPEG Baseline to JPEG 2000 (Lossless only): "
    )
