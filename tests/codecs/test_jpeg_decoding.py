"""JPEG decoded as DCMTK decodes it: every frame of pydicom's JPEG test files (baseline
8-bit, extended 12-bit, lossless) and of files DCMTK's dcmcjpeg wrote (12-bit extended,
lossless process 14 and SV1, signed) converts to the very pixels dcmdjpeg gives, and
``dispatch send`` delivers them to a peer that accepts only uncompressed syntaxes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian

from dispatch import uids
from tests.cli.conftest import observe, run_dispatch
from tests.codecs.test_codecs import convert
from tests.support.dicom_files import make_file, pydicom_file
from tests.support.programs import require_program
from tests.support.reference_pixels import dcmdjpeg
from tests.support.scp import StorageScp

#: pydicom's JPEG test files that dcmdjpeg decodes (SC_rgb_jpeg.dcm: it does not).
PYDICOM_JPEG = [
    "JPEG-lossy.dcm",  # extended, 12-bit, process 2/4: pylibjpeg-libjpeg refuses it
    "JPGExtended.dcm",  # extended, 12-bit
    "SC_jpeg_no_color_transform.dcm",  # RGB samples without an Adobe marker
    "SC_jpeg_no_color_transform_2.dcm",
    "SC_rgb_dcmtk_+eb+cr.dcm",
    "SC_rgb_dcmtk_+eb+cy+n1.dcm",
    "SC_rgb_dcmtk_+eb+cy+n2.dcm",
    "SC_rgb_dcmtk_+eb+cy+np.dcm",  # YBR_FULL_422
    "SC_rgb_dcmtk_+eb+cy+s2.dcm",
    "SC_rgb_dcmtk_+eb+cy+s4.dcm",
    "SC_rgb_jpeg_app14_dcmd.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "SC_rgb_jpeg_gdcm.dcm",  # lossless SV1
    "SC_rgb_jpeg_lossy_gdcm.dcm",
    "SC_rgb_small_odd_jpeg.dcm",
    "examples_ybr_color.dcm",  # 30 frames
]

#: dcmcjpeg options for the files the tests write: (name, options, signed).
DCMCJPEG = {
    "extended-12bit": (["+ee"], False),
    "lossless-p14-sv6": (["+el", "+sv", "6"], False),
    "lossless-sv1-16bit": (["+e1"], False),
    "lossless-sv1-signed": (["+e1"], True),
}


def dcmcjpeg_file(folder: Path, name: str) -> Path:
    """A 64 x 64 noisy monochrome image, compressed by DCMTK's dcmcjpeg."""
    options, signed = DCMCJPEG[name]
    plain = make_file(folder / f"{name}-plain.dcm")
    ds = pydicom.dcmread(plain)
    rng = np.random.default_rng(13)
    bits = 12 if name == "extended-12bit" else 16
    ds.Rows = ds.Columns = 64
    ds.BitsStored, ds.HighBit = bits, bits - 1
    ds.PixelRepresentation = int(signed)
    low, high = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)
    pixels = rng.integers(low, high, size=(64, 64)).astype("<i2" if signed else "<u2")
    ds.PixelData = pixels.tobytes()
    ds.save_as(plain)
    out = folder / f"{name}.dcm"
    program = require_program("dcmcjpeg")
    subprocess.run([str(program), *options, str(plain), str(out)], check=True)
    return out


def assert_as_dcmdjpeg(path: Path, tmp_path: Path) -> None:
    theirs = dcmdjpeg(path, tmp_path / "dcmdjpeg.dcm")
    ours = convert(path, ExplicitVRLittleEndian)
    assert ours.PhotometricInterpretation == theirs.PhotometricInterpretation
    assert ours.PixelData == theirs.PixelData


@pytest.mark.parametrize("name", PYDICOM_JPEG)
def test_pydicom_jpeg_files_decode_to_dcmdjpegs_pixels(name: str, tmp_path: Path) -> None:
    assert_as_dcmdjpeg(pydicom_file(name), tmp_path)


@pytest.mark.parametrize("name", sorted(DCMCJPEG))
def test_dcmcjpeg_files_decode_to_dcmdjpegs_pixels(name: str, tmp_path: Path) -> None:
    assert_as_dcmdjpeg(dcmcjpeg_file(tmp_path, name), tmp_path)


def test_a_12_bit_extended_file_reaches_an_uncompressed_only_peer(
    scp: StorageScp, tmp_path: Path
) -> None:
    """JPEG-lossy.dcm, as DCMTK's dcmdjpeg-then-storescu chain delivers it."""
    source = pydicom_file("JPEG-lossy.dcm")
    theirs = dcmdjpeg(source, tmp_path / "dcmdjpeg.dcm")
    plain = {uids.EXPLICIT_LE, uids.IMPLICIT_LE}
    seen = observe(
        run_dispatch, scp, source, setup=lambda s: s.accept_only(transfer_syntaxes=plain)
    )
    assert seen.run.code == 0, seen.run.stderr
    [store] = seen.stores
    assert store.transfer_syntax in plain
    assert store.dataset().PixelData == theirs.PixelData
