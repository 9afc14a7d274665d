"""What ``-d`` and ``+v`` show of an association, in DCMTK's layout.

storescu's debug output is read by people and by scripts: the section markers
("====================== BEGIN A-ASSOCIATE-RQ =====================") and the field
names ("Our Max PDU Receive Size:", "Context ID:", "DIMSE Status") are what they look
for. The functions here render the same text from this package's own records: the
A-ASSOCIATE-RQ from the settings proposed, the A-ASSOCIATE-AC from the PDU the peer
sent, a C-STORE request or response from its fields. Each returns lines joined by
newlines, without the log prefix ("D: ") that the log format adds to each line.

The status texts are DCMTK's too: :func:`store_status` is the one of storescu's
"Received Store Response (...)" line, :func:`dimse_status` the one of a dumped
C-STORE-RSP.

Unlike DCMTK, a dumped user identity never shows a passcode (only its length).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from dispatch.dcmtk_names import name_of_uid
from dispatch.net import acse
from dispatch.settings import (
    AssociationSettings,
    ExtendedNegotiation,
    IdentityKind,
    RoleSelection,
    UserIdentity,
)
from dispatch.uids import APPLICATION_CONTEXT, IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

if TYPE_CHECKING:
    from dispatch.net.association import Association

__all__ = [
    "associate_ac",
    "associate_rq",
    "dimse_status",
    "log_accepted",
    "log_request",
    "max_send_pdv",
    "store_rq",
    "store_rsp",
    "store_status",
]

_TRACE = logging.DEBUG - 5
"""The level of ``-ll trace``."""

_MAX_PDV_BUFFER = 131072
"""DCMTK's largest send buffer (ASC_MAXIMUMPDUSIZE), also used when the peer sets no
limit."""

_RESULTS = {
    0: "Accepted",
    1: "User Rejection",
    2: "No Reason",
    3: "Abstract Syntax Not Supported",
    4: "Transfer Syntaxes Not Supported",
}

# A-ASSOCIATE-AC item and sub-item types read here beyond what acse decodes.
_USER_INFORMATION = 0x50
_ROLE_SELECTION = 0x54
_EXTENDED_NEGOTIATION = 0x56
_AC_FIXED_LENGTH = 74


def log_request(log: logging.Logger, settings: AssociationSettings, show: bool) -> None:
    """Log the A-ASSOCIATE-RQ about to be sent, as storescu: at info level with ``+v``
    (``show``), else at debug level."""
    level = logging.INFO if show else logging.DEBUG
    if log.isEnabledFor(level):
        log.log(level, "Request Parameters:\n%s", associate_rq(settings))


def log_accepted(
    log: logging.Logger, settings: AssociationSettings, assoc: Association, show: bool
) -> None:
    """Log the A-ASSOCIATE-AC of ``assoc`` (info level with ``+v``, ``show``, else
    debug) and storescu's "Association Accepted (Max Send PDV: N)" line (info); with
    ``-ll trace`` also one line per proposed context and its verdict."""
    if log.isEnabledFor(logging.DEBUG):
        # DCMTK also names the TLS protocol, cipher suite and peer certificate here.
        secure = "TLS over TCP/IP" if settings.tls is not None else "TCP/IP, unencrypted."
        log.debug("Transport connection: %s", secure)
    level = logging.INFO if show else logging.DEBUG
    if log.isEnabledFor(level) and assoc.associate_ac:
        text = associate_ac(settings, assoc.associate_ac)
        log.log(level, "Association Parameters Negotiated:\n%s", text)
    log.info("Association Accepted (Max Send PDV: %d)", max_send_pdv(assoc.peer_max_pdu))
    if not log.isEnabledFor(_TRACE):
        return
    # -ll trace: one line per proposed context with its verdict, for grepping.
    accepted = {c.context_id: c for c in assoc.accepted}
    for proposed in settings.contexts:
        got = accepted.get(proposed.context_id)
        state = f"accepted {got.transfer_syntax}" if got else "rejected"
        log.log(
            _TRACE,
            "Context %d: %s [%s] %s",
            proposed.context_id,
            proposed.abstract_syntax,
            ", ".join(proposed.transfer_syntaxes),
            state,
        )


def max_send_pdv(peer_max_pdu: int) -> int:
    """The "Max Send PDV" storescu reports for a peer's maximum PDU length (0: none):
    the length capped at 128 KiB, made even, less the 12 bytes of PDU and PDV
    headers."""
    length = peer_max_pdu if 0 < peer_max_pdu <= _MAX_PDV_BUFFER else _MAX_PDV_BUFFER
    return (length - length % 2) - 12


def associate_rq(settings: AssociationSettings) -> str:
    """The A-ASSOCIATE-RQ ``settings`` propose, as storescu dumps its request."""
    lines = _head("RQ", settings, "", "", 0)
    roles = _roles(settings.roles)
    lines.append("Presentation Contexts:")
    for context in settings.contexts:
        lines += _proposed_context(context.context_id, context.abstract_syntax, roles)
        lines += (f"      {_named(ts)}" for ts in context.transfer_syntaxes)
    lines += _tail(settings, "RQ", [], None)
    return "\n".join(lines)


def associate_ac(settings: AssociationSettings, pdu: bytes) -> str:
    """The A-ASSOCIATE-AC ``pdu`` (the whole PDU, as received) that answered
    ``settings``, as storescu dumps the negotiated parameters. The PDU was decoded
    once already: it is well formed."""
    negotiated = acse.decode_associate_ac(pdu)
    accepted_roles, accepted_extended = _ac_user_items(pdu)
    lines = _head(
        "AC",
        settings,
        negotiated.implementation_class_uid,
        negotiated.implementation_version_name,
        negotiated.max_pdu,
    )
    proposed_roles = _roles(settings.roles)
    lines.append("Presentation Contexts:")
    for context in settings.contexts:
        found = negotiated.results.get(context.context_id)
        if found is None:  # not answered: as DCMTK, still "Proposed"
            lines += _proposed_context(context.context_id, context.abstract_syntax, proposed_roles)
            lines += (f"      {_named(ts)}" for ts in context.transfer_syntaxes)
            continue
        result, syntax = found
        state = _RESULTS.get(result, "--Invalid Result/Reason--")
        lines += [
            f"  Context ID:        {context.context_id} ({state})",
            f"    Abstract Syntax: {_named(context.abstract_syntax)}",
            f"    Proposed SCP/SCU Role: {proposed_roles.get(context.abstract_syntax, 'Default')}",
            "    Accepted SCP/SCU Role: " + accepted_roles.get(context.abstract_syntax, "Default"),
        ]
        if result == 0:
            lines.append(f"    Accepted Transfer Syntax: {_named(syntax)}")
    lines += _tail(settings, "AC", accepted_extended, negotiated.identity_response)
    return "\n".join(lines)


def store_rq(message_id: int, sop_class_uid: str, sop_instance_uid: str) -> str:
    """A C-STORE-RQ (medium priority, with a data set) as storescu dumps it."""
    return "\n".join(
        [
            "===================== OUTGOING DIMSE MESSAGE ====================",
            "Message Type                  : C-STORE RQ",
            f"Message ID                    : {message_id}",
            f"Affected SOP Class UID        : {name_of_uid(sop_class_uid) or sop_class_uid}",
            f"Affected SOP Instance UID     : {sop_instance_uid}",
            "Data Set                      : present",
            "Priority                      : medium",
            "======================= END DIMSE MESSAGE =======================",
        ]
    )


def store_rsp(
    context_id: int,
    message_id: int,
    sop_class_uid: str,
    sop_instance_uid: str,
    status: int,
) -> str:
    """A C-STORE-RSP received on ``context_id`` as storescu dumps it; an empty UID is
    one the response left out ("none")."""
    sop_class = (name_of_uid(sop_class_uid) or sop_class_uid) if sop_class_uid else "none"
    return "\n".join(
        [
            "===================== INCOMING DIMSE MESSAGE ====================",
            "Message Type                  : C-STORE RSP",
            f"Presentation Context ID       : {context_id}",
            f"Message ID Being Responded To : {message_id}",
            f"Affected SOP Class UID        : {sop_class}",
            f"Affected SOP Instance UID     : {sop_instance_uid or 'none'}",
            "Data Set                      : none",
            f"DIMSE Status                  : {dimse_status(status)}",
            "======================= END DIMSE MESSAGE =======================",
        ]
    )


def store_status(status: int) -> str:
    """DCMTK's short text of a C-STORE status, as in storescu's "Received Store
    Response (Refused: OutOfResources)" (``DU_cstoreStatusString``)."""
    exact = {
        0x0000: "Success",
        0x0122: "Refused: SOPClassNotSupported",
        0xB000: "Warning: CoercionOfDataElements",
        0xB007: "Warning: DataSetDoesNotMatchSOPClass",
        0xB006: "Warning: ElementsDiscarded",
    }.get(status)
    if exact is not None:
        return exact
    if status & 0xFF00 == 0xA700:
        return "Refused: OutOfResources"
    if status & 0xFF00 == 0xA900:
        return "Error: DataSetDoesNotMatchSOPClass"
    if status & 0xF000 == 0xC000:
        return "Error: CannotUnderstand"
    return f"Unknown Status: 0x{status:x}"


_DIMSE_STATUS = {
    0x0000: "Success",
    0x0122: "Refused: SOP Class not supported",
    0x0124: "Refused: Not authorized",
    0x0117: "Invalid SOP Class",
    0x0210: "Duplicate invocation",
    0x0211: "Unrecognized operation",
    0x0212: "Mistyped argument",
    0xB000: "Warning: Coercion of Data Elements",
    0xB007: "Warning: Data Set does not match SOP Class",
    0xB006: "Warning: Elements discarded",
}


def dimse_status(status: int) -> str:
    """A C-STORE status as a dumped response shows it: "0xa700: Refused: Out of
    resources" (DCMTK's ``DIMSE_printCStoreStatusString``)."""
    text = _DIMSE_STATUS.get(status)
    if text is None:
        if status & 0xFF00 == 0xA700:
            text = "Refused: Out of resources"
        elif status & 0xFF00 == 0xA900:
            text = "Error: Data Set does not match SOP Class"
        elif status & 0xF000 == 0xC000:
            text = "Error: Cannot understand"
        else:
            text = _status_class(status)
    return f"0x{status:04x}: {text}"


def _status_class(status: int) -> str:
    high, byte = status & 0xF000, status & 0xFF00
    if status == 0x0000:
        return "Success"
    warning = high == 0xB000 or status in (0x0001, 0x0107, 0x0116)
    if high in (0xA000, 0xC000) or byte == 0x0200 or (byte == 0x0100 and not warning):
        return "Failure"
    if warning:
        return "Warning"
    if status == 0xFE00:
        return "Cancel"
    if status in (0xFF00, 0xFF01):
        return "Pending"
    return "Unknown Status Code (non-standard)"


# -- pieces ----------------------------------------------------------------------------


def _named(uid: str) -> str:
    """A UID as DCMTK shows it in an association dump: "=Name", or the number."""
    name = name_of_uid(uid)
    return f"={name}" if name else uid


def _head(
    kind: str, settings: AssociationSettings, their_uid: str, their_version: str, their_max: int
) -> list[str]:
    return [
        f"====================== BEGIN A-ASSOCIATE-{kind} =====================",
        f"Our Implementation Class UID:      {IMPLEMENTATION_CLASS_UID}",
        f"Our Implementation Version Name:   {IMPLEMENTATION_VERSION_NAME}",
        f"Their Implementation Class UID:    {their_uid}",
        f"Their Implementation Version Name: {their_version}",
        f"Application Context Name:    {APPLICATION_CONTEXT}",
        f"Calling Application Name:    {settings.calling_ae}",
        f"Called Application Name:     {settings.called_ae}",
        f"Responding Application Name: {settings.called_ae}",
        f"Our Max PDU Receive Size:    {settings.max_pdu}",
        f"Their Max PDU Receive Size:  {their_max}",
    ]


def _proposed_context(context_id: int, abstract_syntax: str, roles: dict[str, str]) -> list[str]:
    return [
        f"  Context ID:        {context_id} (Proposed)",
        f"    Abstract Syntax: {_named(abstract_syntax)}",
        f"    Proposed SCP/SCU Role: {roles.get(abstract_syntax, 'Default')}",
        "    Proposed Transfer Syntax(es):",
    ]


def _tail(
    settings: AssociationSettings,
    kind: str,
    accepted: list[ExtendedNegotiation],
    identity_response: bytes | None,
) -> list[str]:
    lines = _extended("Requested Extended Negotiation:", " none", list(settings.extended))
    lines += _extended("Accepted Extended Negotiation:", "  none", accepted)
    lines += _identity(settings.identity)
    if identity_response is None:
        lines.append("User Identity Negotiation Response:  none")
    else:
        lines += [
            "User Identity Negotiation Response:",
            f"  Server Response (not dumped) length: {len(identity_response)}",
        ]
    lines.append(f"======================= END A-ASSOCIATE-{kind} ======================")
    return lines


def _role(scu: bool, scp: bool) -> str:
    return {(True, True): "SCP/SCU", (True, False): "SCU", (False, True): "SCP"}.get(
        (scu, scp), "None"
    )


def _roles(roles: tuple[RoleSelection, ...]) -> dict[str, str]:
    return {role.sop_class: _role(role.scu, role.scp) for role in roles}


def _extended(title: str, none: str, items: list[ExtendedNegotiation]) -> list[str]:
    if not items:
        return [title + none]
    lines = [title]
    for item in items:
        name = name_of_uid(item.sop_class) or "Unknown-UID"
        data = ", ".join(f"0x{byte:02x}" for byte in item.data)
        lines += [f"  ={name} ({item.sop_class})", f"    [{data}]"]
    return lines


def _identity(identity: UserIdentity | None) -> list[str]:
    if identity is None:
        return ["Requested User Identity Negotiation: none"]
    lines = ["Requested User Identity Negotiation:"]
    kind = identity.kind
    if kind is IdentityKind.USERNAME:
        lines += ["  Authentication mode 1: Username", f"  Username: [{identity.primary}]"]
    elif kind is IdentityKind.USERNAME_PASSCODE:
        lines += [
            "  Authentication mode 2: Username/Password",
            f"  Username: [{identity.primary}]",
            f"  Password (not dumped) length: {len(identity.passcode.encode('utf-8'))}",
        ]
    else:
        what = {
            IdentityKind.KERBEROS: ("3: Kerberos", "Kerberos Service Ticket"),
            IdentityKind.SAML: ("4: SAML", "SAML Assertion"),
            IdentityKind.JWT: ("5: JWT", "JSON Web Token"),
        }[kind]
        lines += [
            f"  Authentication mode {what[0]}",
            f"  {what[1]} (not dumped) length: {_file_length(identity.primary)}",
        ]
    yes = "Yes" if identity.positive_response else "No"
    lines.append(f"  Positive Response requested: {yes}")
    return lines


def _file_length(path: str) -> int:
    """Bytes of a token file that the request carries (see :mod:`dispatch.net.acse`)."""
    try:
        return min(os.path.getsize(path), acse.IDENTITY_FILE_LIMIT)
    except OSError:
        return 0


def _ac_user_items(pdu: bytes) -> tuple[dict[str, str], list[ExtendedNegotiation]]:
    """The role selection (SOP class -> role) and extended negotiation sub-items of an
    A-ASSOCIATE-AC, which the association itself has no use for."""
    roles: dict[str, str] = {}
    extended: list[ExtendedNegotiation] = []
    for item_type, start, end in _items(pdu, _AC_FIXED_LENGTH, len(pdu)):
        if item_type != _USER_INFORMATION:
            continue
        for sub_type, sub_start, sub_end in _items(pdu, start, end):
            value = pdu[sub_start:sub_end]
            if len(value) < 2:
                continue
            size = int.from_bytes(value[:2], "big")
            uid = value[2 : 2 + size].rstrip(b"\0 ").decode("ascii", "replace")
            rest = value[2 + size :]
            if sub_type == _ROLE_SELECTION and len(rest) >= 2:
                roles[uid] = _role(bool(rest[0]), bool(rest[1]))
            elif sub_type == _EXTENDED_NEGOTIATION:
                extended.append(ExtendedNegotiation(uid, bytes(rest)))
    return roles, extended


def _items(pdu: bytes, pos: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(type, value start, value end) of each item in ``pdu[pos:end]``; stops at one
    that runs past ``end``."""
    while pos + 4 <= end:
        item_type = pdu[pos]
        length = int.from_bytes(pdu[pos + 2 : pos + 4], "big")
        if pos + 4 + length > end:
            return
        yield item_type, pos + 4, pos + 4 + length
        pos += 4 + length
