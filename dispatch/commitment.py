"""Storage commitment, Push Model (PS3.4 Annex J; IHE RAD-10), as the SCU: after files
are stored, ask the peer to take responsibility for them and collect its answer.

The request is an N-ACTION-RQ (action type 1, Request Storage Commitment) on an
association of its own, opened after the storing association ended: storescu's
proposal already fills the 128 presentation contexts an association may carry, and the
storing association stays byte for byte storescu's. Its data set holds a new
Transaction UID and the Referenced SOP Sequence of the stored instances.

The answer is an N-EVENT-REPORT-RQ (event type 1: all committed; 2: some failed, with
the Failed SOP Sequence and a reason for each). It may come on the requesting
association, while it is kept open, or later on an association the peer opens to us,
received by a :class:`ReportSource` (see :mod:`dispatch.commit_listener`). Each stored
instance then is :attr:`CommitState.COMMITTED`, :attr:`CommitState.FAILED` (with the
reason) or, when no report came in time, :attr:`CommitState.PENDING`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import struct
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from dispatch.errors import DispatchError, NoPresentationContext, ProtocolError
from dispatch.net import Association
from dispatch.net.dimse import (
    N_ACTION_RSP,
    N_EVENT_REPORT_RQ,
    encode_n_action_rq,
    encode_n_event_report_rsp,
    ui_element,
    us_element,
)
from dispatch.net.messages import Message
from dispatch.settings import AssociationSettings, PresentationContext
from dispatch.uids import IMPLICIT_LE

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = [
    "FAILURE_REASONS",
    "STORAGE_COMMITMENT",
    "CommitState",
    "CommitmentReport",
    "CommitmentSettings",
    "Reference",
    "ReportSource",
    "commitment_states",
    "describe_failure",
    "encode_action_information",
    "report_from_dataset",
    "report_from_json",
    "report_to_json",
    "request_commitment",
    "states_by_path",
]

log = logging.getLogger("dispatch.commit")

STORAGE_COMMITMENT = "1.2.840.10008.1.20.1"
"""Storage Commitment Push Model SOP Class."""
STORAGE_COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"
"""Its well-known SOP Instance."""
REQUEST_COMMITMENT = 1
"""N-ACTION action type: Request Storage Commitment."""
EVENT_ALL_COMMITTED = 1
EVENT_SOME_FAILED = 2

FAILURE_REASONS = {
    0x0110: "processing failure",
    0x0112: "no such object instance",
    0x0213: "resource limitation",
    0x0122: "referenced SOP class not supported",
    0x0119: "class / instance conflict",
    0x0131: "duplicate transaction UID",
}
"""Failure Reason (0008,1197) values of PS3.3 C.14.1.1 and their meaning."""


def describe_failure(reason: int | None) -> str:
    """``0x0112 (no such object instance)``; a reason the peer left out is said so."""
    if reason is None:
        return "no failure reason given"
    return f"0x{reason:04X} ({FAILURE_REASONS.get(reason, 'unknown reason')})"


class CommitState(StrEnum):
    """What became of a stored instance's commitment."""

    COMMITTED = "committed"
    FAILED = "commit_failed"
    PENDING = "commit_pending"
    """No report within the commitment timeout: ask again later."""


@dataclass(frozen=True)
class Reference:
    """A stored instance to be committed."""

    sop_class_uid: str
    sop_instance_uid: str


@dataclass(frozen=True)
class CommitmentReport:
    """What one N-EVENT-REPORT said of a transaction."""

    transaction_uid: str
    committed: frozenset[str] = frozenset()
    """SOP instance UIDs the peer committed."""
    failed: Mapping[str, int | None] = field(default_factory=dict)
    """SOP instance UID -> Failure Reason (None when the peer gave none)."""


@dataclass(frozen=True)
class CommitmentSettings:
    """How commitment is asked for and waited for (``--commit`` and its options)."""

    timeout_s: float = 300.0
    """How long to wait for the report after the N-ACTION was answered."""
    same_association_s: float = 5.0
    """With a listener, how long the requesting association is kept open for a report
    sent on it; without one it is kept open for the whole timeout."""
    listen: tuple[str, int] | None = None
    """``--commit-port [HOST:]PORT``: where the peer opens associations to us ("" host:
    every interface); None: the report is only taken on the requesting association."""
    resends: int = 1
    """``--commit-resends N`` (``dispatch submit``): how many times a file whose
    commitment failed is sent again and asked for again before the failure is final."""


class ReportSource(Protocol):
    """Where reports sent on an association the peer opens arrive."""

    def wait(self, transaction_uid: str, timeout_s: float) -> CommitmentReport | None:
        """The report of ``transaction_uid``, waited for at most ``timeout_s``."""


# -- the N-ACTION data set -------------------------------------------------------------


def _element(group: int, element: int, value: bytes) -> bytes:
    if len(value) % 2:
        value += b"\0"
    return struct.pack("<HHL", group, element, len(value)) + value


def encode_action_information(transaction_uid: str, references: Iterable[Reference]) -> bytes:
    """The Action Information of a storage commitment request in implicit VR little
    endian: Referenced SOP Sequence (0008,1199) of (Referenced SOP Class UID,
    Referenced SOP Instance UID) items, then Transaction UID (0008,1195)."""
    items = b""
    for ref in references:
        body = _element(0x0008, 0x1150, ref.sop_class_uid.encode("ascii"))
        body += _element(0x0008, 0x1155, ref.sop_instance_uid.encode("ascii"))
        items += struct.pack("<HHL", 0xFFFE, 0xE000, len(body)) + body
    return _element(0x0008, 0x1199, items) + _element(
        0x0008, 0x1195, transaction_uid.encode("ascii")
    )


def report_from_dataset(ds: Dataset) -> CommitmentReport:
    """The report an N-EVENT-REPORT's Event Information ``ds`` makes. Raises
    :class:`ProtocolError` when it names no Transaction UID."""
    transaction = str(ds.get("TransactionUID", "") or "")
    if not transaction:
        raise ProtocolError("storage commitment report without a Transaction UID")
    referenced = ds.get("ReferencedSOPSequence", [])
    committed = frozenset(str(item.get("ReferencedSOPInstanceUID", "")) for item in referenced)
    failed: dict[str, int | None] = {}
    for item in ds.get("FailedSOPSequence", []):
        reason = item.get("FailureReason")
        failed[str(item.get("ReferencedSOPInstanceUID", ""))] = (
            None if reason is None else int(reason)
        )
    return CommitmentReport(transaction, committed - {""}, failed)


def _decode_event_information(data: bytes) -> Dataset:
    from io import BytesIO

    from pydicom.filereader import read_dataset

    try:
        return read_dataset(BytesIO(data), is_implicit_VR=True, is_little_endian=True)
    except Exception as exc:  # pydicom raises many kinds for bytes it cannot parse
        raise ProtocolError(f"unreadable storage commitment report: {exc}") from exc


def new_transaction_uid() -> str:
    """A new UID under the 2.25 root (PS3.5 B.2): a random UUID as a decimal number."""
    return f"2.25.{uuid.uuid4().int}"


# -- the request -----------------------------------------------------------------------


def commitment_settings(settings: AssociationSettings) -> AssociationSettings:
    """The association settings for the request: the same peer, AE titles, TLS and
    identity, one context proposing Storage Commitment in implicit VR little endian."""
    context = PresentationContext(1, STORAGE_COMMITMENT, (IMPLICIT_LE,))
    return dataclasses.replace(settings, contexts=(context,), roles=(), extended=())


def request_commitment(
    settings: AssociationSettings,
    references: Sequence[Reference],
    commit: CommitmentSettings,
    source: ReportSource | None,
    transaction_uid: str | None = None,
) -> tuple[str, CommitmentReport | None]:
    """Ask the peer of ``settings`` to commit ``references``; return the Transaction UID
    and the report (None: none came within ``commit.timeout_s``).

    Raises :class:`~dispatch.errors.DispatchError` when the request cannot be made or
    is refused (association failure, no accepted context, an N-ACTION failure status):
    then nothing is committed. A report on the requesting association is answered
    with success; a broken association while waiting there leaves ``source`` to wait.
    """
    transaction = transaction_uid or new_transaction_uid()
    assoc = Association.open(commitment_settings(settings))
    accepted = assoc.contexts_for(STORAGE_COMMITMENT)
    if not accepted:
        assoc.abort()
        raise NoPresentationContext("the peer does not accept storage commitment")
    context_id = accepted[0].context_id
    log.info(
        "Requesting storage commitment of %d instances (transaction %s)",
        len(references), transaction,
    )  # fmt: skip
    command = encode_n_action_rq(1, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE, 1)
    assoc.send_dimse(context_id, command, encode_action_information(transaction, references))
    report: CommitmentReport | None = None
    while True:  # a report may come before the N-ACTION-RSP: both are taken
        message = assoc.receive_dimse(
            assoc.settings.timeouts.dimse_s, "waiting for the N-ACTION response"
        )
        if message.command_field == N_EVENT_REPORT_RQ:
            report = _answer_report(assoc, message, transaction) or report
            continue
        status = us_element(message.command, 0x0900)
        if message.command_field != N_ACTION_RSP or status is None:
            assoc.abort()
            raise ProtocolError(f"unexpected reply 0x{message.command_field:04X} to N-ACTION")
        break
    if status != 0x0000:
        _end(assoc)
        raise ProtocolError(f"the peer refused the storage commitment request: 0x{status:04X}")
    deadline = time.monotonic() + commit.timeout_s
    here_until = deadline if source is None else time.monotonic() + commit.same_association_s
    if report is None:
        report = _wait_here(assoc, transaction, min(here_until, deadline), source)
    _end(assoc)
    if report is None and source is not None:
        report = source.wait(transaction, max(0.0, deadline - time.monotonic()))
    return transaction, report


_GLANCE_S = 0.05
"""While waiting on the requesting association, how often ``source`` is looked at."""


def _wait_here(
    assoc: Association, transaction: str, until: float, source: ReportSource | None
) -> CommitmentReport | None:
    """A report of ``transaction`` sent on ``assoc`` before ``until``, answered; or one
    that reached ``source`` meanwhile."""
    while assoc.is_open:
        remaining = until - time.monotonic()
        if remaining <= 0:
            return None
        if source is not None:
            found = source.wait(transaction, 0.0)
            if found is not None:
                return found
            remaining = min(remaining, _GLANCE_S)
        if not assoc.reply_arriving(remaining):
            continue
        try:
            message = assoc.receive_dimse(0.0, "waiting for the storage commitment report")
        except DispatchError as exc:
            log.info("association ended while waiting for the report: %s", exc)
            return None
        if message.command_field != N_EVENT_REPORT_RQ:
            log.warning("ignored a DIMSE message 0x%04X", message.command_field)
            continue
        report = _answer_report(assoc, message, transaction)
        if report is not None:
            return report
    return None


def _answer_report(
    assoc: Association, message: Message, transaction: str
) -> CommitmentReport | None:
    """Answer the N-EVENT-REPORT-RQ ``message``; its report when it is of
    ``transaction``."""
    event_type = us_element(message.command, 0x1002) or 0
    report: CommitmentReport | None = None
    status = 0x0000
    try:
        report = report_from_dataset(_decode_event_information(message.data_set or b""))
    except ProtocolError as exc:
        log.warning("%s", exc)
        status = 0x0110
    reply = encode_n_event_report_rsp(
        us_element(message.command, 0x0110) or 0,
        ui_element(message.command, 0x0002) or STORAGE_COMMITMENT,
        ui_element(message.command, 0x1000) or STORAGE_COMMITMENT_INSTANCE,
        event_type,
        status,
    )
    try:
        assoc.send_dimse(message.context_id, reply)
    except DispatchError as exc:
        log.info("could not answer the report: %s", exc)
    if report is not None and report.transaction_uid == transaction:
        return report
    return None


def _end(assoc: Association) -> None:
    try:
        assoc.release()
    except DispatchError as exc:
        log.info("releasing the storage commitment association: %s", exc)


# -- per-instance states ---------------------------------------------------------------


def commitment_states(
    references: Iterable[Reference], report: CommitmentReport | None, refused: str = ""
) -> dict[str, tuple[CommitState, str]]:
    """Each referenced instance's state and its reason ("" when committed): from the
    ``report``; all :attr:`CommitState.FAILED` with ``refused`` when the request itself
    failed; all pending without a report. An instance the report leaves out is
    pending."""
    states: dict[str, tuple[CommitState, str]] = {}
    for ref in references:
        uid = ref.sop_instance_uid
        if refused:
            states[uid] = (CommitState.FAILED, refused)
        elif report is None:
            states[uid] = (CommitState.PENDING, "no storage commitment report in time")
        elif uid in report.failed:
            states[uid] = (CommitState.FAILED, describe_failure(report.failed[uid]))
        elif uid in report.committed:
            states[uid] = (CommitState.COMMITTED, "")
        else:
            states[uid] = (CommitState.PENDING, "not named in the storage commitment report")
    return states


# -- records ---------------------------------------------------------------------------


def report_to_json(report: CommitmentReport) -> str:
    """The JSON form of ``report`` in a job store."""
    return json.dumps(
        {
            "transaction": report.transaction_uid,
            "committed": sorted(report.committed),
            "failed": dict(report.failed),
        }
    )


def report_from_json(text: str) -> CommitmentReport:
    """Inverse of :func:`report_to_json`."""
    data = json.loads(text)
    failed = {str(k): None if v is None else int(v) for k, v in data["failed"].items()}
    return CommitmentReport(str(data["transaction"]), frozenset(data["committed"]), failed)


def states_by_path(
    instances: Mapping[str, str], report: CommitmentReport
) -> dict[str, tuple[CommitState, str]]:
    """What ``report`` says of the files ``instances`` (SOP instance UID -> path) as
    path -> (state, reason)."""
    refs = [Reference("", uid) for uid in instances]
    return {instances[uid]: state for uid, state in commitment_states(refs, report).items()}
