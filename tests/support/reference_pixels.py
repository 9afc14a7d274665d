"""The pixels a converted file must have: DCMTK's for lossy JPEG, pydicom's otherwise.

Lossy JPEG decoders may differ by a level or two per sample; the project decodes JPEG
as DCMTK's dcmdjpeg does, so that is the reference there.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pydicom

from dispatch import uids
from tests.support.programs import require_program

LOSSY_JPEG = frozenset({uids.JPEG_BASELINE, uids.JPEG_EXTENDED})


def dcmdjpeg(source: Path, out: Path) -> pydicom.Dataset:
    """``source`` decompressed by DCMTK's dcmdjpeg into ``out``, read back."""
    program = require_program("dcmdjpeg")
    subprocess.run([str(program), str(source), str(out)], check=True, capture_output=True)
    return pydicom.dcmread(out)


def reference_pixels(source: Path, scratch: Path) -> np.ndarray:
    """The pixel array ``source`` decodes to: dcmdjpeg's for lossy JPEG (written to
    ``scratch``), pydicom's for any other syntax."""
    ds: pydicom.Dataset = pydicom.dcmread(source)
    if ds.file_meta.TransferSyntaxUID in LOSSY_JPEG:
        ds = dcmdjpeg(source, scratch)
    return np.asarray(ds.pixel_array)
