"""Invented identities (``+II``, ``+IR``, ``+IS``, ``+IP``) as pure functions of position.

DCMTK's storescu keeps four counters (image, series, study, patient) that persist
across files and repeats. Before each instance it sends: when the image counter reaches
the series limit a new series starts, when the series counter then reaches the study
limit a new study, when the study counter reaches the patient limit a new patient. The
instance gets a new SOPInstanceUID and InstanceNumber, and the current series, study
and patient identities; only attributes already in the data set are replaced.

Here the same identities are a function of the instance's index ``n`` (0-based: the
n-th instance sent, counting every repeat) and the limits, so that no counter has to
be shared: a distributed job gives every file its index at submission, and any worker
computes the same identities for it. For limits ``R`` (series), ``S`` (study), ``P``
(patient), storescu's counters reduce to:

- image ``n % R`` (the InstanceNumber), global series ``g = n // R``;
- SeriesNumber ``0`` for ``g == 0``, else ``(g - 1) % S + 1`` (storescu numbers the
  series before it resets its counter for a new study, hence 0, 1 .. S, 1 .. S ...);
- global study ``h = g // S``; the study number in StudyID likewise from ``h`` and ``P``;
- patient ``h // P``.

Values look like storescu's: PatientName ``OFFIS^TEST_PN_<stamp><patient>``, PatientID
``PID_<stamp><patient>``, StudyID ``SID_<stamp><study number>``, where ``stamp`` is a
time in seconds fixed per run or job (storescu reads the clock whenever it starts a
study or patient). The UIDs are UUID-derived (``2.25.<decimal>``, PS3.5 B.2), each a
name-based UUID of the run's ``seed``, the limits, the kind and the global number: the
same seed, limits and index always give the same UID, different seeds never collide.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from dispatch.settings import SendPolicy
from dispatch.uids import IMPLEMENTATION_CLASS_UID

SERIES_LIMIT = 100
"""storescu's default for +IR: a new series after this many images."""
STUDY_LIMIT = 50
"""storescu's default for +IS: a new study after this many series."""
PATIENT_LIMIT = 25
"""storescu's default for +IP: a new patient after this many studies."""

PATIENT_NAME = 0x00100010
PATIENT_ID = 0x00100020
SOP_INSTANCE_UID = 0x00080018
STUDY_INSTANCE_UID = 0x0020000D
SERIES_INSTANCE_UID = 0x0020000E
STUDY_ID = 0x00200010
SERIES_NUMBER = 0x00200011
INSTANCE_NUMBER = 0x00200013

_PATIENT_NAME_PREFIX = "OFFIS^TEST_PN_"
_PATIENT_ID_PREFIX = "PID_"
_STUDY_ID_PREFIX = "SID_"

# Name-based UUIDs live in a namespace of our own: our implementation class UID's UUID.
_NAMESPACE = uuid.UUID(int=int(IMPLEMENTATION_CLASS_UID.removeprefix("2.25.")))
_UID_TAGS = frozenset({SOP_INSTANCE_UID, STUDY_INSTANCE_UID, SERIES_INSTANCE_UID})


def _padded(tag: int, value: str) -> bytes:
    """The value as it is encoded: UIDs padded to even length with NUL, text with space."""
    raw = value.encode("ascii")
    if len(raw) % 2:
        raw += b"\0" if tag in _UID_TAGS else b" "
    return raw


@dataclass(frozen=True)
class Identity:
    """The identities one instance is sent with.

    ``patient``, ``study``, ``series`` and ``image`` are storescu's counters as its log
    shows them (``pa``, ``st``, ``se``, ``im``).
    """

    index: int
    patient: int
    study: int
    series: int
    image: int
    patient_name: str
    patient_id: str
    study_instance_uid: str
    study_id: str
    series_instance_uid: str
    series_number: str
    sop_instance_uid: str
    instance_number: str

    def replacements(self) -> dict[int, bytes]:
        """New values by tag, encoded and padded, for the top-level attributes storescu
        replaces (where present): see :func:`dispatch.codecs.transcode.convert_dataset`."""
        values = {
            PATIENT_NAME: self.patient_name,
            PATIENT_ID: self.patient_id,
            STUDY_INSTANCE_UID: self.study_instance_uid,
            STUDY_ID: self.study_id,
            SERIES_INSTANCE_UID: self.series_instance_uid,
            SERIES_NUMBER: self.series_number,
            SOP_INSTANCE_UID: self.sop_instance_uid,
            INSTANCE_NUMBER: self.instance_number,
        }
        return {tag: _padded(tag, value) for tag, value in values.items()}

    def describe(self) -> str:
        """One line for the log, with storescu's counters."""
        return (
            f"pa{self.patient}, st{self.study}, se{self.series}, im{self.image}: "
            f"PatientName={self.patient_name} PatientID={self.patient_id} "
            f"StudyInstanceUID={self.study_instance_uid} StudyID={self.study_id} "
            f"SeriesInstanceUID={self.series_instance_uid} "
            f"SeriesNumber={self.series_number} SOPInstanceUID={self.sop_instance_uid} "
            f"InstanceNumber={self.instance_number}"
        )


def _number(k: int, limit: int) -> int:
    """storescu's counter value when the k-th group (0-based) starts, before the reset
    for the next level: 0, then 1 .. limit, 1 .. limit ..."""
    return 0 if k == 0 else (k - 1) % limit + 1


@dataclass(frozen=True)
class Inventor:
    """Invents the identities of the n-th instance of a run or job.

    ``seed`` names the run (a random token for ``dispatch send``, the job id for a
    distributed job); ``stamp`` is the time (seconds) in the invented IDs and names.
    """

    seed: str
    series_limit: int = SERIES_LIMIT
    study_limit: int = STUDY_LIMIT
    patient_limit: int = PATIENT_LIMIT
    stamp: int = 0

    def __post_init__(self) -> None:
        if min(self.series_limit, self.study_limit, self.patient_limit) < 1:
            raise ValueError("the limits of invented identities must be at least 1")

    def uid(self, kind: str, number: int) -> str:
        """The UID of the ``number``-th (global, 0-based) instance, series or study."""
        limits = f"{self.series_limit}/{self.study_limit}/{self.patient_limit}"
        name = f"{self.seed}/{limits}/{kind}/{number}"
        return f"2.25.{uuid.uuid5(_NAMESPACE, name).int}"

    def identity(self, index: int) -> Identity:
        """The identities of the ``index``-th instance (0-based, must not be negative)."""
        if index < 0:
            raise ValueError("the index of an instance cannot be negative")
        series_g, image = divmod(index, self.series_limit)
        study_g = series_g // self.study_limit
        patient = study_g // self.patient_limit
        series_number = _number(series_g, self.study_limit)
        study_number = _number(study_g, self.patient_limit)
        stamp = str(self.stamp)
        return Identity(
            index=index,
            patient=patient,
            study=study_g % self.patient_limit,
            series=series_g % self.study_limit,
            image=image,
            patient_name=f"{_PATIENT_NAME_PREFIX}{stamp}{patient}",
            patient_id=f"{_PATIENT_ID_PREFIX}{stamp}{patient}",
            study_instance_uid=self.uid("study", study_g),
            study_id=f"{_STUDY_ID_PREFIX}{stamp}{study_number}",
            series_instance_uid=self.uid("series", series_g),
            series_number=str(series_number),
            sop_instance_uid=self.uid("instance", index),
            instance_number=str(image),
        )


def new_seed() -> str:
    """A seed for a run of ``dispatch send``: random, so runs never share UIDs."""
    return uuid.uuid4().hex


def inventor_for(policy: SendPolicy, seed: str, *, clock: bool = False) -> Inventor | None:
    """The inventor of ``policy`` (None without ``+II``). The command line stamps the
    policy; a policy built in code has stamp 0, which stays 0 (deterministic) unless
    ``clock``, when the current time is taken instead."""
    if not policy.invent_identities:
        return None
    stamp = policy.invent_stamp or (int(time.time()) if clock else 0)
    return Inventor(seed, policy.invent_series, policy.invent_study, policy.invent_patient, stamp)


__all__ = [
    "PATIENT_LIMIT",
    "SERIES_LIMIT",
    "STUDY_LIMIT",
    "Identity",
    "Inventor",
    "inventor_for",
    "new_seed",
]
