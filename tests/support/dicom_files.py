"""Small synthetic DICOM files for tests and the demo, and pydicom's bundled test files.

Every file written here is a valid Part-10 file (preamble, meta header, data set) of a
CT-like image with a few bytes of pixel data, so a test that sends it stays fast.
Needs only pydicom (scripts/make_study.py uses it outside pytest).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    CTImageStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)

from dispatch.uids import IMPLEMENTATION_CLASS_UID

#: Short names for the uncompressed transfer syntaxes a synthetic file can use.
TRANSFER_SYNTAXES: dict[str, str] = {
    "explicit": ExplicitVRLittleEndian,
    "implicit": ImplicitVRLittleEndian,
    "big": ExplicitVRBigEndian,
}


def make_dataset(
    *,
    sop_class_uid: str = CTImageStorage,
    sop_instance_uid: str | None = None,
    study_uid: str | None = None,
    series_uid: str | None = None,
    patient_id: str = "DISPATCH-TEST",
    patient_name: str = "Test^Patient",
    series_number: int = 1,
    instance_number: int = 1,
    size: int = 128,
) -> Dataset:
    """Return a CT-like data set (no meta header) with about `size` bytes of pixel data.

    The pixel data is 16-bit monochrome, 16 columns wide when `size` allows; its length
    is `size` rounded down to a whole number of rows (at least one 2-byte pixel).
    UIDs that are not given are generated.
    """
    columns = 16 if size >= 32 else max(1, size // 2)
    rows = max(1, size // (2 * columns))
    now = datetime.datetime(2024, 1, 2, 3, 4, 5)
    ds = Dataset()
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = sop_instance_uid or generate_uid()
    ds.StudyDate = now.strftime("%Y%m%d")
    ds.StudyTime = now.strftime("%H%M%S")
    ds.AccessionNumber = "ACC0001"
    ds.Modality = "CT"
    ds.ReferringPhysicianName = ""
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.StudyID = "1"
    ds.SeriesNumber = series_number
    ds.InstanceNumber = instance_number
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    # A recognisable, non-constant pattern: a codec that mangles bytes shows up.
    ds.PixelData = bytes((i * 7 + instance_number) % 256 for i in range(rows * columns * 2))
    return ds


def make_file(
    path: Path | str,
    *,
    ts: str = "explicit",
    sop_class_uid: str = CTImageStorage,
    sop_instance_uid: str | None = None,
    study_uid: str | None = None,
    series_uid: str | None = None,
    patient_id: str = "DISPATCH-TEST",
    series_number: int = 1,
    instance_number: int = 1,
    size: int = 128,
) -> Path:
    """Write a synthetic CT-like Part-10 file to `path` and return the path.

    `ts` is a short name from :data:`TRANSFER_SYNTAXES` or an uncompressed transfer
    syntax UID. The other arguments are those of :func:`make_dataset`. Parent
    directories are created.
    """
    ts_uid = UID(TRANSFER_SYNTAXES.get(ts, ts))
    if ts_uid not in TRANSFER_SYNTAXES.values():
        raise ValueError(f"make_file writes uncompressed syntaxes only, not {ts!r}")
    ds = make_dataset(
        sop_class_uid=sop_class_uid,
        sop_instance_uid=sop_instance_uid,
        study_uid=study_uid,
        series_uid=series_uid,
        patient_id=patient_id,
        series_number=series_number,
        instance_number=instance_number,
        size=size,
    )
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ts_uid
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    ds.file_meta = meta
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(target, enforce_file_format=True)
    return target


@dataclass(frozen=True)
class Study:
    """A directory of synthetic files of one study (and patient)."""

    directory: Path
    files: tuple[Path, ...]
    study_uid: str
    series_uids: tuple[str, ...]
    sop_instance_uids: tuple[str, ...]


def make_study(
    directory: Path | str,
    *,
    images: int = 5,
    series: int = 1,
    ts: str = "explicit",
    size: int = 128,
    patient_id: str = "DISPATCH-TEST",
) -> Study:
    """Write `images` files of one study, spread round-robin over `series` series.

    Files are named ``IMG00001.dcm``... in instance order, so a sorted directory
    listing is the sending order.
    """
    folder = Path(directory)
    study_uid = generate_uid()
    series_uids = tuple(generate_uid() for _ in range(series))
    files: list[Path] = []
    instances: list[str] = []
    for number in range(1, images + 1):
        instance_uid = generate_uid()
        files.append(
            make_file(
                folder / f"IMG{number:05d}.dcm",
                ts=ts,
                sop_instance_uid=instance_uid,
                study_uid=study_uid,
                series_uid=series_uids[(number - 1) % series],
                patient_id=patient_id,
                series_number=(number - 1) % series + 1,
                instance_number=number,
                size=size,
            )
        )
        instances.append(instance_uid)
    return Study(folder, tuple(files), study_uid, series_uids, tuple(instances))


def pydicom_file(name: str) -> Path:
    """Return the path of pydicom's bundled test file `name` (never downloads).

    Raises FileNotFoundError when the file is not part of the installed pydicom.
    """
    found = get_testdata_file(name, download=False)
    if not isinstance(found, str):
        raise FileNotFoundError(f"pydicom's test file {name!r} is not installed")
    return Path(found)
