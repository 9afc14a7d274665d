"""Synthetic corpora for the sending benchmarks.

Explicit VR little endian Part-10 files with unique UIDs:

- ``tiny``: 10,000 secondary-capture objects of 16x16 8-bit pixels (2 KB each) in
  20 studies; one request/response round trip dominates each file.
- ``tiny-flat``: the same objects, 10,000 in 50 studies, in one directory whose name
  order interleaves the studies (instance 0 of every study, then instance 1 ...), as
  an export that mixes studies lists them.
- ``tiny-dirs``: 10,000 in 50 studies, one directory per study (sent with ``+sd +r``).
- ``link``: 600 in 100 studies of 6 (one directory, study after study), for the link
  with a round trip, where each file costs one.
- ``ct``: 4,096 CT slices of 512x512x16 bit (0.5 MB each, 2.1 GB) in 4 series of
  one study; the bytes dominate.
- ``big``: one multi-frame CT-like object of 2,048 frames (1 GiB of pixel data) for
  the peak-memory test.

Generation is fast because pydicom builds one template per corpus; every file is then
the template's bytes with fixed-width UID values patched in at known offsets.

Each corpus lives in its own directory under ``benchmarks/.corpus/``, which holds only
DICOM files, next to a ``NAME.manifest.json`` recording the parameters it was made
with; :func:`ensure` reuses a corpus whose manifest matches and regenerates it otherwise.

Run ``python benchmarks/corpus.py [NAME ...]`` to make (or check) corpora ahead of time.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from io import BytesIO
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian

CORPUS_ROOT = Path(__file__).resolve().parent / ".corpus"

# Bump when the file layout changes so cached corpora are regenerated.
GENERATOR_VERSION = 2

# pydicom's organisation root, which pydicom users may use for generated UIDs.
UID_ROOT = "1.2.826.0.1.3680043.8.498."

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2.1"

# Roles of the patched UIDs; each role is one digit of the UID so that values of
# different roles never collide.
_STUDY, _SERIES, _INSTANCE = 1, 2, 3


@dataclass(frozen=True)
class CorpusSpec:
    """What a corpus contains; any change to it makes the cached copy stale."""

    name: str
    sop_class: str
    studies: int
    series_per_study: int
    instances_per_series: int
    rows: int
    columns: int
    bits_allocated: int
    frames: int = 1
    # Total file size to pad small objects to (with an Image Comments value); 0: no pad.
    pad_to: int = 0
    # "flat": one directory, study after study in name order; "interleaved": one
    # directory, the studies interleaved in name order; "dirs": a directory per study.
    layout: str = "flat"

    @property
    def count(self) -> int:
        """Number of files in the corpus."""
        return self.studies * self.series_per_study * self.instances_per_series

    @property
    def pixel_bytes(self) -> int:
        """Length of the Pixel Data value of one object."""
        return self.rows * self.columns * (self.bits_allocated // 8) * self.frames


SPECS: dict[str, CorpusSpec] = {
    "tiny": CorpusSpec(
        name="tiny",
        sop_class=SECONDARY_CAPTURE,
        studies=20,
        series_per_study=1,
        instances_per_series=500,
        rows=16,
        columns=16,
        bits_allocated=8,
        pad_to=2048,
    ),
    "link": CorpusSpec(
        name="link",
        sop_class=SECONDARY_CAPTURE,
        studies=100,
        series_per_study=1,
        instances_per_series=6,
        rows=16,
        columns=16,
        bits_allocated=8,
        pad_to=2048,
    ),
    "ct": CorpusSpec(
        name="ct",
        sop_class=CT_IMAGE,
        studies=1,
        series_per_study=4,
        instances_per_series=1024,
        rows=512,
        columns=512,
        bits_allocated=16,
    ),
    "big": CorpusSpec(
        name="big",
        sop_class=ENHANCED_CT_IMAGE,
        studies=1,
        series_per_study=1,
        instances_per_series=1,
        rows=512,
        columns=512,
        bits_allocated=16,
        frames=2048,
    ),
}

# The same 10,000 tiny files as 50 studies: interleaved in one directory, or a directory
# per study.
_FIFTY = replace(SPECS["tiny"], studies=50, instances_per_series=200)
SPECS["tiny-flat"] = replace(_FIFTY, name="tiny-flat", layout="interleaved")
SPECS["tiny-dirs"] = replace(_FIFTY, name="tiny-dirs", layout="dirs")


@dataclass(frozen=True)
class Corpus:
    """A generated corpus on disk."""

    spec: CorpusSpec
    directory: Path
    files: int
    total_bytes: int

    @property
    def recursive(self) -> bool:
        """Whether the files are in subdirectories (senders need ``+r`` with ``+sd``)."""
        return self.spec.layout == "dirs"

    def paths(self) -> Iterator[Path]:
        """Every file of the corpus, in name order."""
        return iter(sorted(self.directory.rglob("*.dcm")))

    def first_file(self) -> Path:
        """One file of the corpus (for one-file runs)."""
        return _file_path(self.directory, self.spec, 0, 0, 0)


def _uid(run: int, role: int, study: int, series: int, instance: int) -> str:
    """A fixed-width UID: the same length for every index, no leading zeros."""
    value = f"{UID_ROOT}1{run:09d}.1{role}{study:04d}{series:03d}{instance:08d}"
    # An even length means pydicom adds no padding byte, so the template's value
    # occupies exactly len(value) bytes whatever the index.
    assert len(value) % 2 == 0 and len(value) <= 64, value
    return value


def _file_path(directory: Path, spec: CorpusSpec, study: int, series: int, inst: int) -> Path:
    # Flat layouts: storescu's ``+sd`` scans one directory level unless ``+r`` is given.
    if spec.layout == "interleaved":
        return directory / f"se{series:03d}_{inst:07d}_st{study:03d}.dcm"
    if spec.layout == "dirs":
        return directory / f"st{study:03d}" / f"se{series:03d}_{inst:07d}.dcm"
    return directory / f"st{study:03d}_se{series:03d}_{inst:07d}.dcm"


def _pixel_pattern(length: int) -> bytes:
    """Deterministic non-constant pixel bytes (not all zero, so nothing is sparse)."""
    block = bytes(range(256)) * 4096  # 1 MiB
    reps, rest = divmod(length, len(block))
    return block * reps + block[:rest]


def _template(spec: CorpusSpec, run: int, with_pixels: bool) -> bytes:
    """The Part-10 bytes of study 0, series 0, instance 0 of ``spec``."""
    sop_instance = _uid(run, _INSTANCE, 0, 0, 0)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(spec.sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(UID_ROOT + "1")
    meta.ImplementationVersionName = "DISPATCH_BENCH"

    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = spec.sop_class
    ds.SOPInstanceUID = sop_instance
    ds.StudyDate = "20240101"
    ds.StudyTime = "120000"
    ds.AccessionNumber = "BENCH0001"
    ds.Modality = "CT" if spec.sop_class != SECONDARY_CAPTURE else "OT"
    if spec.sop_class == SECONDARY_CAPTURE:
        ds.ConversionType = "WSD"
    ds.Manufacturer = "dicom-dispatch benchmarks"
    ds.PatientName = "BENCH^SYNTHETIC"
    ds.PatientID = "BENCH0001"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = _uid(run, _STUDY, 0, 0, 0)
    ds.SeriesInstanceUID = _uid(run, _SERIES, 0, 0, 0)
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    if spec.sop_class != SECONDARY_CAPTURE:
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SliceThickness = "1.0"
        ds.KVP = "120"
        ds.ImagePositionPatient = ["0", "0", "0"]
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.FrameOfReferenceUID = _uid(run, _SERIES, 0, 0, 99_999_999)
        ds.PixelSpacing = ["0.5", "0.5"]
        ds.RescaleIntercept = "-1024"
        ds.RescaleSlope = "1"
    if spec.frames > 1:
        ds.NumberOfFrames = spec.frames
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = spec.rows
    ds.Columns = spec.columns
    ds.BitsAllocated = spec.bits_allocated
    ds.BitsStored = spec.bits_allocated if spec.bits_allocated == 8 else 12
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    if with_pixels:
        ds.PixelData = _pixel_pattern(spec.pixel_bytes)
    if spec.pad_to:
        ds.ImageComments = ""
        unpadded = len(_encode(ds))
        pad = spec.pad_to - unpadded
        if pad < 0:
            raise ValueError(f"{spec.name}: template is {unpadded} bytes, over {spec.pad_to}")
        ds.ImageComments = "x" * pad
    return _encode(ds)


def _encode(ds: Dataset) -> bytes:
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _offsets(template: bytes, value: str) -> list[int]:
    """Every offset of the UID value ``value`` in ``template``."""
    needle = value.encode("ascii")
    found: list[int] = []
    start = template.find(needle)
    while start != -1:
        found.append(start)
        start = template.find(needle, start + 1)
    if not found:
        raise RuntimeError(f"UID {value} not found in template")
    return found


def _manifest_path(spec: CorpusSpec) -> Path:
    return CORPUS_ROOT / f"{spec.name}.manifest.json"


def _manifest(spec: CorpusSpec) -> dict[str, object]:
    return {"generator": GENERATOR_VERSION, "spec": asdict(spec)}


def _load(spec: CorpusSpec) -> Corpus | None:
    """The cached corpus of ``spec`` if its manifest matches, else None."""
    directory = CORPUS_ROOT / spec.name
    try:
        recorded = json.loads(_manifest_path(spec).read_text())
    except (OSError, ValueError):
        return None
    if {k: recorded.get(k) for k in ("generator", "spec")} != _manifest(spec):
        return None
    return Corpus(spec, directory, int(recorded["files"]), int(recorded["total_bytes"]))


def _generate(spec: CorpusSpec) -> Corpus:
    directory = CORPUS_ROOT / spec.name
    _manifest_path(spec).unlink(missing_ok=True)
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    # A fresh run number per generation keeps UIDs unique across regenerations too.
    run = secrets.randbelow(10**9)
    if spec.name == "big":
        total = _write_big(spec, run, directory)
        count = 1
    else:
        total, count = _write_many(spec, run, directory)
    manifest = _manifest(spec) | {"files": count, "total_bytes": total, "run": run}
    _manifest_path(spec).write_text(json.dumps(manifest, indent=2) + "\n")
    return Corpus(spec, directory, count, total)


def _write_many(spec: CorpusSpec, run: int, directory: Path) -> tuple[int, int]:
    """Write every file of ``spec`` by patching UIDs into one template."""
    template = _template(spec, run, with_pixels=True)
    study_at = _offsets(template, _uid(run, _STUDY, 0, 0, 0))
    series_at = _offsets(template, _uid(run, _SERIES, 0, 0, 0))
    instance_at = _offsets(template, _uid(run, _INSTANCE, 0, 0, 0))
    buffer = bytearray(template)
    total = 0
    count = 0
    for study in range(spec.studies):
        if spec.layout == "dirs":
            (directory / f"st{study:03d}").mkdir()
        study_uid = _uid(run, _STUDY, study, 0, 0).encode()
        for at in study_at:
            buffer[at : at + len(study_uid)] = study_uid
        for series in range(spec.series_per_study):
            series_uid = _uid(run, _SERIES, study, series, 0).encode()
            for at in series_at:
                buffer[at : at + len(series_uid)] = series_uid
            for inst in range(spec.instances_per_series):
                instance_uid = _uid(run, _INSTANCE, study, series, inst).encode()
                for at in instance_at:
                    buffer[at : at + len(instance_uid)] = instance_uid
                _file_path(directory, spec, study, series, inst).write_bytes(buffer)
                total += len(buffer)
                count += 1
    return total, count


def _write_big(spec: CorpusSpec, run: int, directory: Path) -> int:
    """Write the one huge object: a pydicom header, then Pixel Data written in chunks."""
    header = _template(spec, run, with_pixels=False)
    length = spec.pixel_bytes
    if length % 2 or length >= 0xFFFFFFFF:
        raise ValueError(f"pixel data length {length} cannot be encoded")
    # (7FE0,0010) OW, 2 reserved bytes, 32-bit length: the last element of the data set.
    element = b"\xe0\x7f\x10\x00OW\x00\x00" + length.to_bytes(4, "little")
    chunk = _pixel_pattern(64 * 1024 * 1024)
    path = _file_path(directory, spec, 0, 0, 0)
    with path.open("wb") as out:
        out.write(header)
        out.write(element)
        left = length
        while left:
            piece = chunk[: min(left, len(chunk))]
            out.write(piece)
            left -= len(piece)
    return path.stat().st_size


def ensure(name: str, *, log: bool = True) -> Corpus:
    """The corpus called ``name``, generated first if missing or stale."""
    spec = SPECS[name]
    cached = _load(spec)
    if cached is not None:
        return cached
    started = time.perf_counter()
    if log:
        print(f"generating corpus {name!r} ({spec.count} files) ...", file=sys.stderr, flush=True)
    corpus = _generate(spec)
    if log:
        elapsed = time.perf_counter() - started
        print(
            f"  {corpus.files} files, {corpus.total_bytes / 1e6:.1f} MB in {elapsed:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    return corpus


def main(argv: list[str] | None = None) -> int:
    """Make (or check) the named corpora; all of them by default."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"one of {', '.join(SPECS)}")
    parser.add_argument("--force", action="store_true", help="regenerate even if cached")
    args = parser.parse_args(argv)
    unknown = set(args.names) - set(SPECS)
    if unknown:
        parser.error(f"unknown corpus: {', '.join(sorted(unknown))}")
    for name in args.names or list(SPECS):
        if args.force:
            shutil.rmtree(CORPUS_ROOT / name, ignore_errors=True)
        corpus = ensure(name)
        print(
            f"{name}: {corpus.files} files, {corpus.total_bytes / 1e6:.1f} MB, {corpus.directory}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
