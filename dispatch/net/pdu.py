"""Upper layer PDUs (PS3.8 9.3): A-ASSOCIATE through pynetdicom's PDU and primitive
classes, so negotiation stays standard; the small fixed PDUs and P-DATA-TF headers as
plain bytes, because they are on the hot path.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ASSOCIATE_RQ
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityNegotiation,
)
from pynetdicom.presentation import PresentationContext as _PNContext

from dispatch.errors import ProtocolError, UsageError
from dispatch.settings import AssociationSettings, IdentityKind, UserIdentity
from dispatch.uids import (
    APPLICATION_CONTEXT,
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
)

ASSOCIATE_RQ = 0x01
ASSOCIATE_AC = 0x02
ASSOCIATE_RJ = 0x03
P_DATA_TF = 0x04
RELEASE_RQ = 0x05
RELEASE_RP = 0x06
ABORT = 0x07

PDU_HEADER = struct.Struct(">BxL")
"""Type, reserved byte, length of what follows."""

PDATA_HEADER = struct.Struct(">BxLLBB")
"""A P-DATA-TF holding one PDV: type, length, PDV item length, context id, control."""

PDV_OVERHEAD = 6
"""Bytes of a PDV item that are not fragment data: item length (4), context id, control."""

RELEASE_RQ_BYTES = bytes([RELEASE_RQ, 0, 0, 0, 0, 4, 0, 0, 0, 0])
RELEASE_RP_BYTES = bytes([RELEASE_RP, 0, 0, 0, 0, 4, 0, 0, 0, 0])

#: Abort sources (PS3.8 Table 9-26).
ABORT_SOURCE_USER = 0
ABORT_SOURCE_PROVIDER = 2

#: Reasons for a provider abort we send.
ABORT_REASON_NOT_SPECIFIED = 0
ABORT_REASON_UNEXPECTED_PDU = 2
ABORT_REASON_INVALID_PARAMETER = 6


def abort_bytes(source: int = ABORT_SOURCE_USER, reason: int = 0) -> bytes:
    """An A-ABORT PDU."""
    return bytes([ABORT, 0, 0, 0, 0, 4, 0, 0, source, reason])


def pdata_header(fragment_length: int, context_id: int, control: int) -> bytes:
    """The 12 bytes that precede one PDV's fragment in a one-PDV P-DATA-TF.

    ``control`` bit 0: command (1) or data set (0); bit 1: last fragment.
    """
    item = fragment_length + 2
    return PDATA_HEADER.pack(P_DATA_TF, item + 4, item, context_id, control)


@dataclass(frozen=True)
class Negotiated:
    """What the peer's A-ASSOCIATE-AC said."""

    results: dict[int, tuple[int, str]]
    """Context id -> (result, accepted transfer syntax or "")."""
    max_pdu: int
    """The peer's maximum PDU length received; 0 means unlimited."""
    implementation_class_uid: str
    implementation_version_name: str
    identity_response: bytes | None = None
    """The server response of a user identity item, None when the AC had none."""


def encode_associate_rq(settings: AssociationSettings) -> bytes:
    """The A-ASSOCIATE-RQ PDU proposing ``settings.contexts``.

    Raises :class:`UsageError` for values the standard does not allow (an AE title
    longer than 16 characters, a malformed UID).
    """
    try:
        cached = _RQ_CACHE.get(settings)
    except TypeError:  # settings holding something unhashable: encode every time
        cached = None
    if cached is not None:
        return cached
    try:
        encoded = _encode_associate_rq(settings)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    try:
        if len(_RQ_CACHE) >= _RQ_CACHE_SIZE:
            _RQ_CACHE.pop(next(iter(_RQ_CACHE)))
        _RQ_CACHE[settings] = encoded
    except TypeError:
        pass
    return encoded


_RQ_CACHE: dict[AssociationSettings, bytes] = {}
"""Encoded requests by settings: building the proposed contexts costs milliseconds
(UID validation), and a worker opens one association per chunk with the same settings."""
_RQ_CACHE_SIZE = 16


def _encode_associate_rq(settings: AssociationSettings) -> bytes:
    primitive = A_ASSOCIATE()
    primitive.application_context_name = APPLICATION_CONTEXT
    primitive.calling_ae_title = settings.calling_ae
    primitive.called_ae_title = settings.called_ae
    max_length = MaximumLengthNotification()
    max_length.maximum_length_received = settings.max_pdu
    class_uid = ImplementationClassUIDNotification()
    class_uid.implementation_class_uid = IMPLEMENTATION_CLASS_UID
    version = ImplementationVersionNameNotification()
    version.implementation_version_name = IMPLEMENTATION_VERSION_NAME
    primitive.user_information = [max_length, class_uid, version]
    # Role selection and extended negotiation items follow, in the profile's order
    # (PS3.7 D.3.3: the order of user information sub-items is free).
    for role in settings.roles:
        item = SCP_SCU_RoleSelectionNegotiation()
        item.sop_class_uid = role.sop_class
        item.scu_role = role.scu
        item.scp_role = role.scp
        primitive.user_information.append(item)
    for ext in settings.extended:
        ext_item = SOPClassExtendedNegotiation()
        ext_item.sop_class_uid = ext.sop_class
        ext_item.service_class_application_information = ext.data
        primitive.user_information.append(ext_item)
    if settings.identity is not None:
        primitive.user_information.append(identity_item(settings.identity))
    contexts = []
    for proposed in settings.contexts:
        context = _PNContext()
        context.context_id = proposed.context_id
        context.abstract_syntax = proposed.abstract_syntax
        context.transfer_syntax = list(proposed.transfer_syntaxes)
        contexts.append(context)
    primitive.presentation_context_definition_list = contexts
    pdu = A_ASSOCIATE_RQ()
    pdu.from_primitive(primitive)
    return bytes(pdu.encode())


def decode_associate_ac(pdu_bytes: bytes) -> Negotiated:
    """Decode a whole A-ASSOCIATE-AC PDU (header included)."""
    pdu = A_ASSOCIATE_AC()
    try:
        pdu.decode(pdu_bytes)
        primitive = pdu.to_primitive()
    except Exception as exc:  # pynetdicom raises assorted errors on bad input
        raise ProtocolError(f"malformed A-ASSOCIATE-AC: {exc}") from exc
    results: dict[int, tuple[int, str]] = {}
    for item in primitive.presentation_context_definition_results_list:
        syntaxes = item.transfer_syntax
        results[int(item.context_id or 0)] = (
            int(item.result if item.result is not None else 0),
            str(syntaxes[0]) if syntaxes else "",
        )
    max_pdu, class_uid, version = 0, "", ""
    identity: bytes | None = None
    for info in primitive.user_information:
        if isinstance(info, MaximumLengthNotification):
            max_pdu = int(info.maximum_length_received or 0)
        elif isinstance(info, ImplementationClassUIDNotification):
            class_uid = str(info.implementation_class_uid or "")
        elif isinstance(info, ImplementationVersionNameNotification):
            version = str(info.implementation_version_name or "")
        elif isinstance(info, UserIdentityNegotiation):
            identity = bytes(info.server_response or b"")
    return Negotiated(results, max_pdu, class_uid, version, identity)


def decode_associate_rj(pdu_bytes: bytes) -> tuple[int, int, int]:
    """Decode a whole A-ASSOCIATE-RJ PDU: (result, source, reason)."""
    pdu = A_ASSOCIATE_RJ()
    try:
        pdu.decode(pdu_bytes)
    except Exception as exc:  # pynetdicom raises assorted errors on bad input
        raise ProtocolError(f"malformed A-ASSOCIATE-RJ: {exc}") from exc
    return int(pdu.result or 0), int(pdu.source or 0), int(pdu.reason_diagnostic or 0)


_REJECT_REASONS: dict[tuple[int, int], str] = {
    (1, 1): "no reason given",
    (1, 2): "application context name not supported",
    (1, 3): "calling AE title not recognised",
    (1, 7): "called AE title not recognised",
    (2, 1): "no reason given",
    (2, 2): "protocol version not supported",
    (3, 1): "temporary congestion",
    (3, 2): "local limit exceeded",
}


def describe_reject(result: int, source: int, reason: int) -> str:
    """Plain words for an A-ASSOCIATE-RJ, e.g. 'rejected-transient: local limit exceeded'."""
    kind = {1: "rejected-permanent", 2: "rejected-transient"}.get(result, f"result {result}")
    why = _REJECT_REASONS.get((source, reason), f"source {source}, reason {reason}")
    return f"association rejected ({kind}): {why}"


_ABORT_REASONS = {
    0: "reason not specified",
    1: "unrecognised PDU",
    2: "unexpected PDU",
    4: "unrecognised PDU parameter",
    5: "unexpected PDU parameter",
    6: "invalid PDU parameter value",
}


def describe_abort(source: int, reason: int) -> str:
    """Plain words for a received A-ABORT."""
    if source == ABORT_SOURCE_PROVIDER:
        return f"peer aborted the association (provider: {_ABORT_REASONS.get(reason, reason)})"
    return "peer aborted the association"


IDENTITY_FILE_LIMIT = 65535
"""Bytes of a Kerberos ticket, SAML assertion or JWT file that are sent (the field's
2-byte length); the rest is ignored, as in DCMTK."""


def identity_item(identity: UserIdentity) -> UserIdentityNegotiation:
    """The user identity sub-item for ``identity``; a Kerberos, SAML or JWT file is read
    now. Raises :class:`UsageError` for a file that cannot be read or is empty."""
    item = UserIdentityNegotiation()
    item.user_identity_type = int(identity.kind)
    item.positive_response_requested = identity.positive_response
    if identity.kind in (IdentityKind.USERNAME, IdentityKind.USERNAME_PASSCODE):
        item.primary_field = identity.primary.encode("utf-8")
        if identity.kind is IdentityKind.USERNAME_PASSCODE:
            item.secondary_field = identity.passcode.encode("utf-8")
        return item
    try:
        with open(identity.primary, "rb") as handle:
            data = handle.read(IDENTITY_FILE_LIMIT)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise UsageError(
            f"Unable to open Kerberos, SAML or JWT file: {identity.primary}: {reason}"
        ) from None
    if not data:
        raise UsageError(
            f"Unable to read Kerberos, SAML or JWT info from file: {identity.primary}: File empty?"
        )
    item.primary_field = data
    return item
