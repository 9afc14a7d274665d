"""JSON forms of the job records round-trip exactly."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from dispatch.dicomfile import DicomFileInfo
from dispatch.jobs.model import (
    Chunk,
    FileRef,
    JobSpec,
    outcome_from_dict,
    outcome_to_dict,
    plain_micros,
    plain_stored,
)
from dispatch.outcome import FileOutcome, Outcome
from dispatch.settings import (
    AssociationSettings,
    PresentationContext,
    ReadMode,
    SendPolicy,
    Timeouts,
    TlsProfile,
    TlsSettings,
)
from dispatch.uids import EXPLICIT_LE


def test_spec_round_trips_through_json() -> None:
    settings = AssociationSettings(
        host="pacs.example",
        port=11112,
        contexts=(PresentationContext(1, "1.2.840.10008.5.1.4.1.1.2", ("1.2.840.10008.1.2.1",)),),
        calling_ae="ME",
        called_ae="PACS",
        max_pdu=65536,
        max_send_pdu=32768,
        timeouts=Timeouts(connect_s=3.0, socket_s=None, acse_s=5.5, dimse_s=None),
    )
    policy = SendPolicy(halt=False, read_mode=ReadMode.FILE_ONLY, uid_padding=True)
    spec = JobSpec("j1", "name", settings, policy, 4, 3, "PACS@pacs.example:11112", "q2")
    assert JobSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_chunk_and_outcome_round_trip_through_json() -> None:
    c = Chunk("c00001", "1.2.3", (FileRef("/x/1", 10, 123456789012345),))
    assert Chunk.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    o = FileOutcome("/x/1", Outcome.FAILED, status=0xA700, reason="Refused", seconds=0.5)
    assert outcome_from_dict(json.loads(json.dumps(outcome_to_dict(o)))) == o


def test_file_ref_carries_the_scan_info_through_json() -> None:
    info = DicomFileInfo("/x/1", "1.2.3.4", "1.2.3.4.5", EXPLICIT_LE, 300, 1700, True, None)
    padded = dataclasses.replace(info, space_padded=(0x00080018,))
    with_study = dataclasses.replace(info, has_meta=False, study_instance_uid="1.2.3.9")
    for each in (info, with_study, padded):
        ref = FileRef("/x/1", 2000, 123456789012345, 7, each)
        back = FileRef.from_dict(json.loads(json.dumps(ref.to_dict())))
        assert (back, back.info) == (ref, each)


def test_a_file_ref_recorded_without_info_still_loads() -> None:
    ref = FileRef.from_dict({"path": "/x/1", "size": 10, "mtime_ns": 5, "index": 3})
    assert (ref.path, ref.size, ref.mtime_ns, ref.index, ref.info) == ("/x/1", 10, 5, 3, None)


def test_tls_settings_and_their_profile_round_trip_without_the_password() -> None:
    tls = TlsSettings(
        key_file="client.key",
        cert_file="client.pem",
        key_password="secret",
        prompt_password=False,
        ca_files=("ca.pem",),
        profile=TlsProfile.AES,
    )
    contexts = (PresentationContext(1, "1.2.840.10008.5.1.4.1.1.2", (EXPLICIT_LE,)),)
    settings = AssociationSettings(host="pacs.example", port=2762, contexts=contexts, tls=tls)
    spec = JobSpec("j1", "name", settings, SendPolicy(), 4, 3, "ANY-SCP@pacs.example:2762", "q")
    text = json.dumps(spec.to_dict())
    assert "secret" not in text
    back = JobSpec.from_dict(json.loads(text))
    assert back.settings.tls is not None
    assert back.settings.tls.profile is TlsProfile.AES
    assert back.settings.tls == dataclasses.replace(tls, key_password=None)


def _other(value: Any) -> Any:
    """A value of the same kind as ``value`` that differs from it."""
    if isinstance(value, Outcome):
        return Outcome.FAILED if value is Outcome.STORED else Outcome.STORED
    if isinstance(value, str):
        return value + "9"
    if value is None:
        return 0xB000
    assert isinstance(value, int | float)
    return value + 1


def test_a_stored_outcome_is_kept_as_its_time_alone_only_when_nothing_else_differs() -> None:
    info = DicomFileInfo("/x/1", "1.2.3.4", "1.2.3.4.5", EXPLICIT_LE, 300, 1700, True, None)
    ref = FileRef("/x/1", 2000, 123456789012345, 7, info)
    plain = plain_stored(ref, 1234)
    assert plain_micros(ref, plain) == 1234
    assert plain_micros(ref, dataclasses.replace(plain, seconds=0.0012344)) == 1234
    assert plain_micros(FileRef("/x/1", 2000, 1, 7, None), plain) is None
    # Every other field of FileOutcome, a field added later included, disqualifies it.
    for field in dataclasses.fields(FileOutcome):
        if field.name == "seconds":
            continue
        changed = dataclasses.replace(plain, **{field.name: _other(getattr(plain, field.name))})
        assert plain_micros(ref, changed) is None, field.name
