"""Invented identities and -u VRs: the pure functions, and the rewriting converter.

The identities are checked against storescu's own counter logic (transcribed below as
a simulation), and the rewritten data sets are decoded with pydicom.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.sequence import Sequence

from dispatch.codecs.transcode import convert_dataset
from dispatch.dicomfile import read_info
from dispatch.identities import Inventor, inventor_for
from dispatch.jobs.model import Chunk, FileRef
from dispatch.jobs.scan import scan
from dispatch.settings import SendPolicy
from dispatch.uids import EXPLICIT_BE, EXPLICIT_LE, IMPLICIT_LE
from tests.support.dicom_files import make_file

_UID = re.compile(r"2\.25\.(0|[1-9][0-9]*)")


@dataclass
class _Storescu:
    """storescu's replaceSOPInstanceInformation counters, step by step."""

    series_limit: int
    study_limit: int
    patient_limit: int
    image: int = 0
    series: int = 0
    study: int = 0
    patient: int = 0
    series_number: int = 0
    study_number: int = 0

    def next(self) -> tuple[int, int, int, int, int, int]:
        """(pa, st, se, im, SeriesNumber, StudyID's number) of the next instance."""
        if self.image >= self.series_limit:
            self.image = 0
            self.series += 1
            self.series_number = self.series
        if self.series >= self.study_limit:
            self.series = 0
            self.study += 1
            self.study_number = self.study
        if self.study >= self.patient_limit:
            self.study = 0
            self.patient += 1
        out = (self.patient, self.study, self.series, self.image)
        self.image += 1
        return (*out, self.series_number, self.study_number)


@pytest.mark.parametrize("limits", [(1, 1, 1), (2, 2, 2), (3, 2, 4), (100, 50, 25), (5, 1, 3)])
def test_identities_follow_storescus_counters(limits: tuple[int, int, int]) -> None:
    inventor = Inventor("seed", *limits, stamp=1700000000)
    simulation = _Storescu(*limits)
    for n in range(300):
        pa, st, se, im, series_number, study_number = simulation.next()
        got = inventor.identity(n)
        assert (got.patient, got.study, got.series, got.image) == (pa, st, se, im)
        assert got.instance_number == str(im)
        assert got.series_number == str(series_number)
        assert got.study_id == f"SID_1700000000{study_number}"
        assert got.patient_id == f"PID_1700000000{pa}"
        assert got.patient_name == f"OFFIS^TEST_PN_1700000000{pa}"


def test_uids_are_uuid_derived_unique_and_change_with_the_group() -> None:
    inventor = Inventor("job1", 3, 2, 2)
    identities = [inventor.identity(n) for n in range(60)]
    for kind in ("sop_instance_uid", "series_instance_uid", "study_instance_uid"):
        for identity in identities:
            uid = getattr(identity, kind)
            assert _UID.fullmatch(uid) and len(uid) <= 64, uid
    assert len({i.sop_instance_uid for i in identities}) == 60
    assert len({i.series_instance_uid for i in identities}) == 20
    assert len({i.study_instance_uid for i in identities}) == 10
    assert len({i.patient_id for i in identities}) == 5
    every_uid = [getattr(i, k) for i in identities for k in ("sop_instance_uid",)]
    every_uid += list({i.series_instance_uid for i in identities})
    every_uid += list({i.study_instance_uid for i in identities})
    assert len(set(every_uid)) == len(every_uid)


def test_same_seed_same_identities_other_seed_other_uids() -> None:
    assert Inventor("a", 2, 2, 2).identity(7) == Inventor("a", 2, 2, 2).identity(7)
    mine, other = Inventor("a", 2, 2, 2).identity(7), Inventor("b", 2, 2, 2).identity(7)
    assert mine.sop_instance_uid != other.sop_instance_uid
    assert mine.series_instance_uid != other.series_instance_uid
    assert mine.study_instance_uid != other.study_instance_uid


def test_limits_below_one_and_negative_indexes_are_refused() -> None:
    with pytest.raises(ValueError):
        Inventor("a", 0, 1, 1)
    with pytest.raises(ValueError):
        Inventor("a").identity(-1)


def test_policy_makes_an_inventor_only_with_invent_and_keeps_its_stamp() -> None:
    assert inventor_for(SendPolicy(), "s") is None
    policy = SendPolicy(invent_identities=True, invent_series=4, invent_stamp=12)
    assert inventor_for(policy, "s") == Inventor("s", 4, 50, 25, 12)
    unstamped = SendPolicy(invent_identities=True)
    assert inventor_for(unstamped, "s") == Inventor("s", stamp=0)
    clocked = inventor_for(unstamped, "s", clock=True)
    assert clocked is not None and clocked.stamp > 1_600_000_000


# -- submission indexes ---------------------------------------------------------------


def test_scan_numbers_usable_files_in_submission_order(tmp_path: Path) -> None:
    a = make_file(tmp_path / "a.dcm", study_uid="1.2.3")
    b = make_file(tmp_path / "b.dcm", study_uid="1.2.4")
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"not dicom at all")
    c = make_file(tmp_path / "c.dcm", study_uid="1.2.3")
    result = scan([str(a), str(bad), str(b), str(a), str(c)])
    indexes = {ref.path: ref.index for refs in result.groups.values() for ref in refs}
    assert indexes == {str(a): 0, str(b): 1, str(c): 2}


def test_file_index_survives_the_json_form_and_old_records_have_none() -> None:
    chunk = Chunk("c00001", "1.2.3", (FileRef("/x/1", 10, 5, 42),))
    assert Chunk.from_dict(chunk.to_dict()) == chunk
    old = {"chunk_id": "c1", "study_uid": "1", "files": [{"path": "/x", "size": 1, "mtime_ns": 2}]}
    assert Chunk.from_dict(old).files[0].index == -1


# -- the rewriting converter ----------------------------------------------------------

_TS = {"explicit": EXPLICIT_LE, "implicit": IMPLICIT_LE, "big": EXPLICIT_BE}


def _pixels(data: bytes, ts: str) -> list[int]:
    """16-bit pixel values of ``data`` encoded in the short-named syntax ``ts``."""
    order: Literal["big", "little"] = "big" if ts == "big" else "little"
    return [int.from_bytes(data[i : i + 2], order) for i in range(0, len(data), 2)]


def _convert(path: Path, target: str, **kwargs: object) -> Dataset:
    info = read_info(str(path))
    with path.open("rb") as f:
        data = b"".join(
            convert_dataset(
                f, info.dataset_offset, info.dataset_length, info.transfer_syntax, target,
                chunk_size=256, **kwargs,  # type: ignore[arg-type]
            )
        )  # fmt: skip
    uid = pydicom.uid.UID(target)
    return read_dataset(io.BytesIO(data), uid.is_implicit_VR, uid.is_little_endian)


def _identity_values() -> dict[int, bytes]:
    return Inventor("t", 2, 2, 2, stamp=1).identity(5).replacements()


@pytest.mark.parametrize("source", sorted(_TS))
@pytest.mark.parametrize("target", sorted(_TS))
def test_replacement_rewrites_present_attributes_only(
    tmp_path: Path, source: str, target: str
) -> None:
    path = make_file(tmp_path / "f.dcm", ts=source, size=1000)
    ds = pydicom.dcmread(path)
    del ds.StudyID, ds.PatientName  # absent attributes are not added
    ds.ReferencedImageSequence = Sequence([Dataset()])
    ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID = "1.2.3.4"
    ds.save_as(path)
    before = path.read_bytes()
    identity = Inventor("t", 2, 2, 2, stamp=1).identity(5)
    out = _convert(path, _TS[target], replace=identity.replacements())
    assert path.read_bytes() == before
    assert out.SOPInstanceUID == identity.sop_instance_uid
    assert out.SeriesInstanceUID == identity.series_instance_uid
    assert out.StudyInstanceUID == identity.study_instance_uid
    assert out.PatientID == identity.patient_id
    assert (out.SeriesNumber, out.InstanceNumber) == (int(identity.series_number), 1)
    assert "StudyID" not in out and "PatientName" not in out
    # Everything else is as it was, nested values too.
    assert out.ReferencedImageSequence[0].ReferencedSOPInstanceUID == "1.2.3.4"
    assert _pixels(out.PixelData, target) == _pixels(ds.PixelData, source)
    assert out.AccessionNumber == ds.AccessionNumber and out.Rows == ds.Rows


def test_same_syntax_rewrite_copies_everything_after_the_last_replaced_tag(
    tmp_path: Path,
) -> None:
    path = make_file(tmp_path / "f.dcm", size=5000)
    info = read_info(str(path))
    raw = path.read_bytes()[info.dataset_offset :]
    with path.open("rb") as f:
        data = b"".join(
            convert_dataset(f, info.dataset_offset, info.dataset_length, EXPLICIT_LE,
                            EXPLICIT_LE, chunk_size=128, replace=_identity_values())
        )  # fmt: skip
    tail = raw[raw.index(b"\x28\x00\x02\x00") :]  # (0028,0002) onwards, pixel data too
    assert data.endswith(tail)


@pytest.mark.parametrize("name", ["SC_rgb_rle.dcm", "JPEG2000.dcm", "SC_rgb_jpeg_dcmtk.dcm"])
def test_compressed_file_passes_through_with_new_identities(tmp_path: Path, name: str) -> None:
    source = Path(str(get_testdata_file(name)))
    path = tmp_path / name
    path.write_bytes(source.read_bytes())
    info = read_info(str(path))
    identity = Inventor("t").identity(0)
    with path.open("rb") as f:
        data = b"".join(
            convert_dataset(f, info.dataset_offset, info.dataset_length, info.transfer_syntax,
                            info.transfer_syntax, chunk_size=512,
                            replace=identity.replacements())
        )  # fmt: skip
    out = read_dataset(io.BytesIO(data), False, True)
    original = pydicom.dcmread(path)
    assert out.SOPInstanceUID == identity.sop_instance_uid
    assert out.PixelData == original.PixelData  # the encapsulated fragments, as they were
    assert path.read_bytes() == source.read_bytes()


# -- -u ------------------------------------------------------------------------------

_NEW_VRS = {
    0x00081190: ("UR", "http://example.com/x"),
    0x00080119: ("UC", "long code value"),
    0x0008030E: ("UT", "unlimited text"),
    0x00181638: ("OF", b"\x00\x00\x80\x3f\x00\x00\x00\x40"),
    0x003A032E: ("OD", b"\x00" * 7 + b"\x3f"),
    0x00660040: ("OL", b"\x01\x00\x00\x00\x02\x00\x00\x00"),
    0x0072006D: ("UN", b"\x01\x02\x03\x04"),
    0x00720081: ("OV", b"\x01" + b"\x00" * 7),
    0x0008040C: ("UV", 7),
    0x00720082: ("SV", [5, -3]),
}


def _little_endian(vr_value: tuple[str, object], big_file: bool) -> bytes:
    """The value of ``_NEW_VRS`` in little endian order, as DCMTK sends it with -u."""
    vr, value = vr_value
    if isinstance(value, str):
        return value.encode() + b" " * (len(value) % 2)
    if isinstance(value, bytes):
        # Raw bytes are written as given: a big endian file holds them that way.
        width = {"OF": 4, "OL": 4, "OD": 8, "OV": 8}.get(vr, 1)
        if not big_file or width == 1:
            return value
        return b"".join(value[i : i + width][::-1] for i in range(0, len(value), width))
    values = value if isinstance(value, list) else [value]
    return b"".join(int(v).to_bytes(8, "little", signed=True) for v in values)  # type: ignore[arg-type]


def new_vr_file(path: Path, ts: str = "explicit", nested: bool = True) -> Path:
    """A synthetic file holding one element of each post-1993 VR, and with ``nested``
    one more in a sequence item."""
    make_file(path, ts=ts)
    ds = pydicom.dcmread(path)
    for tag, (vr, value) in _NEW_VRS.items():
        ds.add_new(tag, vr, value)
    if nested:
        item = Dataset()
        item.add_new(0x0008030E, "UT", "nested text")
        ds.ReferencedImageSequence = Sequence([item])
    ds.save_as(path)
    return path


@pytest.mark.parametrize(
    ("source", "target"),
    [("explicit", EXPLICIT_LE), ("explicit", EXPLICIT_BE), ("big", EXPLICIT_LE),
     ("implicit", EXPLICIT_LE)],
)  # fmt: skip
def test_old_vrs_become_ob_in_little_endian_order(tmp_path: Path, source: str, target: str) -> None:
    path = new_vr_file(tmp_path / "vr.dcm", source)
    info = read_info(str(path))
    with path.open("rb") as f:
        data = b"".join(
            convert_dataset(f, info.dataset_offset, info.dataset_length, info.transfer_syntax,
                            target, old_vrs=True)
        )  # fmt: skip
    out = read_dataset(io.BytesIO(data), False, target == EXPLICIT_LE)
    for tag in _NEW_VRS:
        element = out[tag]
        assert element.VR == "OB", (hex(tag), element.VR)
        # As DCMTK: in little endian order, whatever the target's byte order.
        assert bytes(element.value) == _little_endian(_NEW_VRS[tag], source == "big")
    assert out.ReferencedImageSequence[0][0x0008030E].VR == "OB"
    assert out[0x00100010].VR == "PN" and out[0x7FE00010].VR == "OW"


def test_old_vrs_leave_implicit_output_alone(tmp_path: Path) -> None:
    path = new_vr_file(tmp_path / "vr.dcm")
    plain = _convert(path, IMPLICIT_LE)
    mapped = _convert(path, IMPLICIT_LE, old_vrs=True)
    assert plain == mapped
