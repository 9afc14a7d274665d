"""The records of a distributed job: files, chunks, the job's spec, and their JSON form.

Everything here is a frozen value that travels through Redis as JSON: the job's
:class:`JobSpec` (association settings and send policy, never secrets such as TLS key
passwords, which each worker takes from its own configuration), its :class:`Chunk`s
(the unit of work of one task: files of one study, or of several small ones, sent over
one association) and the
per-file :class:`~dispatch.outcome.FileOutcome`. A job store keeps chunks in a compact
form (:func:`chunk_to_blob`), and a plain stored outcome as its time alone
(:func:`plain_stored`).
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any

from dispatch.dicomfile import DicomFileInfo
from dispatch.observe import destination_name
from dispatch.outcome import FileOutcome, Outcome
from dispatch.settings import (
    AssociationSettings,
    CrlCheck,
    ExtendedNegotiation,
    IdentityKind,
    PeerVerification,
    PresentationContext,
    ReadMode,
    RoleSelection,
    SendPolicy,
    Timeouts,
    TlsProfile,
    TlsSettings,
    UserIdentity,
)
from dispatch.status import describe


class JobState(StrEnum):
    """Where a job is. ``queued`` and ``running`` are live; the others are final,
    except that ``halted`` and ``cancelled`` are set at once while tasks still wind
    down (``JobProgress.finished`` tells when the last chunk is done)."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    COMPLETED_WITH_FAILURES = "completed with failures"
    HALTED = "halted"
    CANCELLED = "cancelled"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    """Its submission broke off (the submitter died while scanning): the chunks recorded
    were sent, the inputs the scan had not reached are not part of the job."""


def final_state(
    *,
    cancelled: bool,
    halted: bool,
    stored: int,
    failed: int,
    not_sent: int,
    interrupted: bool = False,
) -> JobState:
    """The state a job ends in once every chunk is done.

    Cancelled and halted win, then ``interrupted`` (its submission broke off);
    otherwise ``completed`` when nothing failed, ``failed`` when nothing was stored at
    all, else ``completed with failures``. (The Redis store repeats this rule in Lua.)
    """
    if cancelled:
        return JobState.CANCELLED
    if halted:
        return JobState.HALTED
    if interrupted:
        return JobState.INTERRUPTED
    if failed + not_sent == 0:
        return JobState.COMPLETED
    if stored == 0:
        return JobState.FAILED
    return JobState.COMPLETED_WITH_FAILURES


@dataclass(frozen=True)
class FileRef:
    """One input file as seen when the job was submitted: a changed size or
    modification time at send time makes it a per-file failure."""

    path: str
    size: int
    mtime_ns: int
    index: int = -1
    """Position among the job's usable files in submission order (0-based; -1 when
    not recorded): the invented identities of the file derive from it."""
    info: DicomFileInfo | None = field(default=None, compare=False)
    """What the scan read of the file (with the job's read mode), for sending it
    without reading it again while its size and modification time are unchanged;
    None when not recorded (older records). Derived from the file, so not part of
    the reference's equality."""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"path": self.path, "size": self.size, "mtime_ns": self.mtime_ns}
        if self.index >= 0:
            data["index"] = self.index
        if self.info is not None:
            data["info"] = info_to_dict(self.info)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileRef:
        path = str(data["path"])
        info = data.get("info")
        return cls(
            path,
            int(data["size"]),
            int(data["mtime_ns"]),
            int(data.get("index", -1)),
            None if info is None else info_from_dict(path, info),
        )


def info_to_dict(info: DicomFileInfo) -> dict[str, Any]:
    """JSON-ready form of a :class:`DicomFileInfo` without its path (the file
    reference's own); the study UID and the space-padded tags only when there are some."""
    data: dict[str, Any] = {
        "sop_class": info.sop_class_uid,
        "sop_instance": info.sop_instance_uid,
        "syntax": info.transfer_syntax,
        "offset": info.dataset_offset,
        "length": info.dataset_length,
        "meta": info.has_meta,
    }
    if info.study_instance_uid is not None:
        data["study"] = info.study_instance_uid
    if info.space_padded:
        data["space_padded"] = list(info.space_padded)
    return data


def info_from_dict(path: str, data: dict[str, Any]) -> DicomFileInfo:
    """Inverse of :func:`info_to_dict` for the file at ``path``."""
    study = data.get("study")
    return DicomFileInfo(
        path=path,
        sop_class_uid=str(data["sop_class"]),
        sop_instance_uid=str(data["sop_instance"]),
        transfer_syntax=str(data["syntax"]),
        dataset_offset=int(data["offset"]),
        dataset_length=int(data["length"]),
        has_meta=bool(data["meta"]),
        study_instance_uid=None if study is None else str(study),
        space_padded=tuple(int(tag) for tag in data.get("space_padded", ())),
    )


@dataclass(frozen=True)
class Chunk:
    """At most ``--chunk`` files: what one task sends over one association. Files of
    one study, or of ``studies`` small studies packed together, study after study.

    ``study_uid`` is the StudyInstanceUID, or the grouping key of a file without one
    (see :mod:`dispatch.jobs.scan`): of the first study when there are several.
    """

    chunk_id: str
    study_uid: str
    files: tuple[FileRef, ...]
    studies: int = 1

    @property
    def bytes(self) -> int:
        """Data-set bytes of the files, as a stored outcome counts them (what the peer
        receives, without the file's meta header); a file's size where the scan did not
        read it."""
        return sum(f.size if f.info is None else f.info.dataset_length for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "chunk_id": self.chunk_id,
            "study_uid": self.study_uid,
            "studies": self.studies,
            "files": [f.to_dict() for f in self.files],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chunk:
        return cls(
            str(data["chunk_id"]),
            str(data["study_uid"]),
            tuple(FileRef.from_dict(f) for f in data["files"]),
            int(data.get("studies", 1)),
        )


_INFO_COLUMNS = ("sop_class", "sop_instance", "syntax", "offset", "length", "meta", "study")


def chunk_to_blob(chunk: Chunk) -> bytes:
    """The compact form of a chunk as a job store keeps it: its files as columns (the
    paths' common prefix once, then what follows it; sizes, times, indexes, scan
    info), JSON, zlib-compressed. Files of one directory and one study differ in few
    characters, so a file costs tens of bytes instead of hundreds."""
    files = chunk.files
    paths = [f.path for f in files]
    # Character by character on purpose: the shared start of the names counts too.
    prefix = os.path.commonprefix(paths) if len(paths) > 1 else ""  # noqa: RUF071
    cut = len(prefix)
    infos = [f.info for f in files]
    data: dict[str, Any] = {
        "chunk_id": chunk.chunk_id,
        "study_uid": chunk.study_uid,
        "studies": chunk.studies,
        "prefix": prefix,
        "paths": [p[cut:] for p in paths],
        "size": [f.size for f in files],
        "mtime_ns": _deltas([f.mtime_ns for f in files]),
        "index": _deltas([f.index for f in files]),
        "has_info": [i is not None for i in infos],
    }
    rows = [info_to_dict(i) for i in infos if i is not None]
    for column in _INFO_COLUMNS:
        data[column] = [row.get(column) for row in rows]
    return zlib.compress(json.dumps(data, separators=(",", ":")).encode(), 6)


def chunk_from_blob(blob: bytes) -> Chunk:
    """Inverse of :func:`chunk_to_blob`; a chunk recorded as plain JSON (the form of
    earlier versions) loads too."""
    if blob[:1] == b"{":
        return Chunk.from_dict(json.loads(blob))
    data = json.loads(zlib.decompress(blob))
    prefix = data["prefix"]
    paths = [prefix + p for p in data["paths"]]
    rows = iter(zip(*(data[column] for column in _INFO_COLUMNS), strict=True))
    files: list[FileRef] = []
    for path, size, mtime_ns, index, has_info in zip(
        paths,
        data["size"],
        _sums(data["mtime_ns"]),
        _sums(data["index"]),
        data["has_info"],
        strict=True,
    ):
        info = None
        if has_info:
            row = dict(zip(_INFO_COLUMNS, next(rows), strict=True))
            if row["study"] is None:
                del row["study"]
            info = info_from_dict(path, row)
        files.append(FileRef(path, size, mtime_ns, index, info))
    return Chunk(data["chunk_id"], data["study_uid"], tuple(files), data["studies"])


def _deltas(values: list[int]) -> list[int]:
    """Each value as its difference from the one before (small numbers compress)."""
    return [b - a for a, b in zip([0, *values], values, strict=False)]


def _sums(deltas: list[int]) -> list[int]:
    """Inverse of :func:`_deltas`."""
    out: list[int] = []
    total = 0
    for d in deltas:
        total += d
        out.append(total)
    return out


@dataclass(frozen=True)
class JobSpec:
    """What every task of a job needs besides its chunk.

    ``retries`` is how many times a chunk is tried again after a transient failure;
    ``max_associations`` the limit of simultaneous associations to ``destination``
    across all workers (the key of the destination's slots, see :func:`destination_of`);
    ``queue`` the Celery queue its tasks go to (and are sent to again after a worker died).
    """

    job_id: str
    name: str
    settings: AssociationSettings
    policy: SendPolicy
    retries: int
    max_associations: int
    destination: str
    queue: str = "dispatch"
    retry_for_s: float = 4 * 3600.0
    """How long the job's chunks wait out a destination they cannot reach."""
    commit_timeout_s: float | None = None
    """``--commit``: after a chunk is stored, storage commitment is requested and its
    report waited for this long (then the files are ``commit_pending``); None: not
    requested."""
    commit_resends: int = 1
    """``--commit-resends``: a file whose commitment failed is sent again and asked for
    again this many times at most; then the failure is final."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "name": self.name,
            "settings": settings_to_dict(self.settings),
            "policy": policy_to_dict(self.policy),
            "retries": self.retries,
            "max_associations": self.max_associations,
            "destination": self.destination,
            "queue": self.queue,
            "retry_for_s": self.retry_for_s,
            "commit_timeout_s": self.commit_timeout_s,
            "commit_resends": self.commit_resends,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobSpec:
        return cls(
            job_id=str(data["job_id"]),
            name=str(data["name"]),
            settings=settings_from_dict(data["settings"]),
            policy=policy_from_dict(data["policy"]),
            retries=int(data["retries"]),
            max_associations=int(data["max_associations"]),
            destination=str(data["destination"]),
            queue=str(data.get("queue", "dispatch")),
            retry_for_s=float(data.get("retry_for_s", 4 * 3600.0)),
            commit_timeout_s=_opt_float(data.get("commit_timeout_s")),
            commit_resends=int(data.get("commit_resends", 1)),
        )


def destination_of(settings: AssociationSettings) -> str:
    """The key that names a destination for the association limit: ``AE@host:port``
    (:func:`dispatch.observe.destination_name`)."""
    return destination_name(settings)


def settings_to_dict(settings: AssociationSettings) -> dict[str, Any]:
    """JSON-ready form of :class:`AssociationSettings` (nested timeouts and contexts)."""
    t = settings.timeouts
    return {
        "host": settings.host,
        "port": settings.port,
        "contexts": [
            [c.context_id, c.abstract_syntax, list(c.transfer_syntaxes)] for c in settings.contexts
        ],
        "calling_ae": settings.calling_ae,
        "called_ae": settings.called_ae,
        "max_pdu": settings.max_pdu,
        "max_send_pdu": settings.max_send_pdu,
        "timeouts": {
            "connect_s": t.connect_s,
            "socket_s": t.socket_s,
            "acse_s": t.acse_s,
            "dimse_s": t.dimse_s,
        },
        "roles": [[r.sop_class, r.scu, r.scp] for r in settings.roles],
        "extended": [[e.sop_class, e.data.hex()] for e in settings.extended],
        "tls": tls_to_dict(settings.tls),
        "identity": identity_to_dict(settings.identity),
    }


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def settings_from_dict(data: dict[str, Any]) -> AssociationSettings:
    """Inverse of :func:`settings_to_dict`."""
    t = data["timeouts"]
    return AssociationSettings(
        host=str(data["host"]),
        port=int(data["port"]),
        contexts=tuple(
            PresentationContext(int(cid), str(abstract), tuple(str(s) for s in syntaxes))
            for cid, abstract, syntaxes in data["contexts"]
        ),
        calling_ae=str(data["calling_ae"]),
        called_ae=str(data["called_ae"]),
        max_pdu=int(data["max_pdu"]),
        max_send_pdu=None if data["max_send_pdu"] is None else int(data["max_send_pdu"]),
        timeouts=Timeouts(
            connect_s=_opt_float(t["connect_s"]),
            socket_s=_opt_float(t["socket_s"]),
            acse_s=_opt_float(t["acse_s"]),
            dimse_s=_opt_float(t["dimse_s"]),
        ),
        # Absent in specs written before profiles (-xf) existed.
        roles=tuple(
            RoleSelection(str(uid), bool(scu), bool(scp)) for uid, scu, scp in data.get("roles", ())
        ),
        extended=tuple(
            ExtendedNegotiation(str(uid), bytes.fromhex(str(hexdata)))
            for uid, hexdata in data.get("extended", ())
        ),
        tls=tls_from_dict(data.get("tls")),
        identity=identity_from_dict(data.get("identity")),
    )


def tls_to_dict(tls: TlsSettings | None) -> dict[str, Any] | None:
    """JSON-ready TLS settings **without the key password**: only whether it was the
    empty one (-pw), which is no secret. Workers add their own (see
    :mod:`dispatch.jobs.secrets`)."""
    if tls is None:
        return None
    return {
        "key_file": tls.key_file,
        "cert_file": tls.cert_file,
        "der": tls.der,
        "null_password": tls.key_password == "",
        "ca_files": list(tls.ca_files),
        "ca_dirs": list(tls.ca_dirs),
        "crl_files": list(tls.crl_files),
        "crl_check": tls.crl_check.value,
        "ciphers": list(tls.ciphers),
        "verification": tls.verification.value,
        "server_name": tls.server_name,
        "check_hostname": tls.check_hostname,
        "profile": tls.profile.value,
    }


def tls_from_dict(data: dict[str, Any] | None) -> TlsSettings | None:
    """Inverse of :func:`tls_to_dict`: no password (or "" for -pw), never a prompt."""
    if not data:
        return None
    return TlsSettings(
        key_file=None if data["key_file"] is None else str(data["key_file"]),
        cert_file=None if data["cert_file"] is None else str(data["cert_file"]),
        der=bool(data["der"]),
        key_password="" if data.get("null_password") else None,
        prompt_password=False,
        ca_files=tuple(str(v) for v in data["ca_files"]),
        ca_dirs=tuple(str(v) for v in data["ca_dirs"]),
        crl_files=tuple(str(v) for v in data["crl_files"]),
        crl_check=CrlCheck(data["crl_check"]),
        ciphers=tuple(str(v) for v in data["ciphers"]),
        verification=PeerVerification(data["verification"]),
        server_name=None if data["server_name"] is None else str(data["server_name"]),
        check_hostname=bool(data["check_hostname"]),
        # Specs recorded before profiles existed used the default.
        profile=TlsProfile(data.get("profile", TlsProfile.BCP195_ND.value)),
    )


def identity_to_dict(identity: UserIdentity | None) -> dict[str, Any] | None:
    """JSON-ready user identity **without the passcode**; an identity with a non-empty
    passcode travels as a user name identity (the worker adds its own password)."""
    if identity is None:
        return None
    kind = identity.kind
    if kind is IdentityKind.USERNAME_PASSCODE and identity.passcode:
        kind = IdentityKind.USERNAME
    return {
        "kind": int(kind),
        "primary": identity.primary,
        "positive_response": identity.positive_response,
    }


def identity_from_dict(data: dict[str, Any] | None) -> UserIdentity | None:
    """Inverse of :func:`identity_to_dict` (an -epw identity keeps its empty passcode)."""
    if not data:
        return None
    return UserIdentity(
        IdentityKind(int(data["kind"])),
        str(data["primary"]),
        "",
        bool(data["positive_response"]),
    )


def policy_to_dict(policy: SendPolicy) -> dict[str, Any]:
    """JSON-ready form of :class:`SendPolicy` (every field; the read mode as text)."""
    data = asdict(policy)
    data["read_mode"] = policy.read_mode.value
    return data


def policy_from_dict(data: dict[str, Any]) -> SendPolicy:
    """Inverse of :func:`policy_to_dict`; fields a newer sender added are ignored."""
    known = {f.name for f in fields(SendPolicy)}
    values = {k: v for k, v in data.items() if k in known}
    values["read_mode"] = ReadMode(values.get("read_mode", ReadMode.FILE.value))
    return SendPolicy(**values)


def failure_key(outcome: FileOutcome) -> str:
    """The key under which a job counts an unsuccessful outcome ("" for a stored one):
    the status described (``0xC000 (Error: cannot understand)``) or the reason."""
    if outcome.outcome is Outcome.STORED:
        return ""
    if outcome.status is not None:
        return describe(outcome.status)
    if outcome.outcome is Outcome.NOT_SENT:
        return f"not sent: {outcome.reason}"
    return outcome.reason or "failed"


def outcome_to_dict(outcome: FileOutcome) -> dict[str, Any]:
    """The JSON form of a per-file outcome as a job stores it (``failure_key`` added)."""
    data = outcome.to_json()
    data["failure_key"] = failure_key(outcome)
    return data


def outcome_from_dict(data: dict[str, Any]) -> FileOutcome:
    """Inverse of :func:`outcome_to_dict` (see :meth:`FileOutcome.from_json`)."""
    return FileOutcome.from_json(data)


MAX_PLAIN_US = 2**32 - 1
"""The longest C-STORE (in microseconds) a plain stored outcome can keep."""


def plain_stored(ref: FileRef, micros: int) -> FileOutcome:
    """The outcome of a file stored as its scan described it: success status, its
    SOP class and instance, its own transfer syntax, its data set's bytes, and
    ``micros`` microseconds. A job store keeps such an outcome as the time alone."""
    info = ref.info
    assert info is not None
    return FileOutcome(
        ref.path,
        Outcome.STORED,
        status=0,
        bytes=info.dataset_length,
        sop_class_uid=info.sop_class_uid,
        sop_instance_uid=info.sop_instance_uid,
        transfer_syntax=info.transfer_syntax,
        seconds=micros / 1e6,
    )


def plain_micros(ref: FileRef, outcome: FileOutcome) -> int | None:
    """The microseconds to keep ``outcome`` as a plain stored outcome of ``ref`` (see
    :func:`plain_stored`; its seconds rounded to the microsecond), or None when the
    outcome says more than that (a warning, another syntax or instance, other bytes)."""
    info = ref.info
    if outcome.outcome is not Outcome.STORED or info is None or outcome.status != 0:
        return None
    micros = round(outcome.seconds * 1e6)
    # Field by field what plain_stored(ref, micros) holds, spelled out rather than
    # built and compared (a third of the cost): this runs once per file recorded.
    # tests/jobs/test_model.py changes each field of FileOutcome in turn.
    if (
        0 <= micros <= MAX_PLAIN_US
        and outcome.path == ref.path
        and outcome.reason == ""
        and outcome.bytes == info.dataset_length
        and outcome.sop_class_uid == info.sop_class_uid
        and outcome.sop_instance_uid == info.sop_instance_uid
        and outcome.transfer_syntax == info.transfer_syntax
    ):
        return micros
    return None
