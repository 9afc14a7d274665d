"""Upper layer PDUs (PS3.8 9.3): every PDU type and the header they share, and the small
fixed PDUs and P-DATA-TF headers as plain bytes, because they are on the hot path. The
A-ASSOCIATE PDUs are encoded and decoded in :mod:`dispatch.net.acse`, which builds on
this module.
"""

from __future__ import annotations

import struct

PDU_HEADER = struct.Struct(">BxL")
"""Every PDU's header: type, reserved byte, length of what follows."""

ASSOCIATE_RQ = 0x01
ASSOCIATE_AC = 0x02
ASSOCIATE_RJ = 0x03
P_DATA_TF = 0x04
RELEASE_RQ = 0x05
RELEASE_RP = 0x06
ABORT = 0x07

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


__all__ = [
    "ABORT",
    "ABORT_REASON_INVALID_PARAMETER",
    "ABORT_REASON_NOT_SPECIFIED",
    "ABORT_REASON_UNEXPECTED_PDU",
    "ABORT_SOURCE_PROVIDER",
    "ABORT_SOURCE_USER",
    "ASSOCIATE_AC",
    "ASSOCIATE_RJ",
    "ASSOCIATE_RQ",
    "PDATA_HEADER",
    "PDU_HEADER",
    "PDV_OVERHEAD",
    "P_DATA_TF",
    "RELEASE_RP",
    "RELEASE_RP_BYTES",
    "RELEASE_RQ",
    "RELEASE_RQ_BYTES",
    "abort_bytes",
    "describe_abort",
    "pdata_header",
]
