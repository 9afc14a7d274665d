"""C-STORE command sets (PS3.7 9.3.1), encoded and decoded directly as implicit VR
little endian group 0000 bytes.

Building them through pydicom costs more CPU than the rest of a tiny file's send; the
layout is fixed, so it is written here by hand. ``tests/net/test_dimse.py`` checks the
bytes against pynetdicom's own encoder.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from dispatch.errors import ProtocolError

C_STORE_RQ = 0x0001
C_STORE_RSP = 0x8001
PRIORITY_MEDIUM = 0x0000
_DATA_SET_PRESENT = 0x0001
_ELEMENT = struct.Struct("<HHL")


def _ui(value: str) -> bytes:
    raw = value.encode("ascii")
    return raw + b"\0" if len(raw) % 2 else raw


_RQ_HEAD = struct.Struct("<HHLLHHL")
"""Group length (0000,0000) and the header of Affected SOP Class UID (0000,0002)."""
_RQ_MIDDLE = struct.Struct("<" + "HHLH" * 4 + "HHL")
"""Command Field, Message ID, Priority, Command Data Set Type, and the header of
Affected SOP Instance UID (0000,1000)."""
_RQ_FIXED = _ELEMENT.size + _RQ_MIDDLE.size
"""Bytes after the group length element that do not depend on the UIDs."""


def encode_c_store_rq(
    message_id: int, sop_class_uid: str, sop_instance_uid: str, priority: int = PRIORITY_MEDIUM
) -> bytes:
    """The command set of a C-STORE-RQ with a data set to follow."""
    sop_class = _ui(sop_class_uid)
    sop_instance = _ui(sop_instance_uid)
    body_length = _RQ_FIXED + len(sop_class) + len(sop_instance)
    head = _RQ_HEAD.pack(0x0000, 0x0000, 4, body_length, 0x0000, 0x0002, len(sop_class))
    middle = _RQ_MIDDLE.pack(
        0x0000, 0x0100, 2, C_STORE_RQ,
        0x0000, 0x0110, 2, message_id,
        0x0000, 0x0700, 2, priority,
        0x0000, 0x0800, 2, _DATA_SET_PRESENT,
        0x0000, 0x1000, len(sop_instance),
    )  # fmt: skip
    return head + sop_class + middle + sop_instance


@dataclass(frozen=True)
class CommandSet:
    """The fields of a received command set that a C-STORE SCU looks at."""

    command_field: int
    message_id_responded: int | None
    status: int | None
    sop_class_uid: str
    sop_instance_uid: str
    error_comment: str


def decode_command(data: bytes) -> CommandSet:
    """Decode an implicit VR little endian command set (any command).

    Raises :class:`ProtocolError` when the bytes are not a well-formed command set or
    lack the Command Field.
    """
    unpack = _ELEMENT.unpack_from
    pos, end = 0, len(data)
    # Values of the elements looked at, by element number; the last occurrence wins.
    command_field = responded = status = None
    sop_class = sop_instance = comment = b""
    while pos < end:
        if pos + 8 > end:
            raise ProtocolError("truncated command set")
        group, element, length = unpack(data, pos)
        pos += 8
        stop = pos + length
        if group != 0x0000 or stop > end:
            raise ProtocolError("malformed command set")
        if element == 0x0100:
            command_field = data[pos:stop]
        elif element == 0x0120:
            responded = data[pos:stop]
        elif element == 0x0900:
            status = data[pos:stop]
        elif element == 0x0002:
            sop_class = data[pos:stop]
        elif element == 0x1000:
            sop_instance = data[pos:stop]
        elif element == 0x0902:
            comment = data[pos:stop]
        pos = stop
    if command_field is None:
        raise ProtocolError("command set without Command Field")
    return CommandSet(
        command_field=_us(0x0100, command_field),
        message_id_responded=None if responded is None else _us(0x0120, responded),
        status=None if status is None else _us(0x0900, status),
        sop_class_uid=_text(sop_class),
        sop_instance_uid=_text(sop_instance),
        error_comment=_text(comment),
    )


def _us(element: int, raw: bytes) -> int:
    if len(raw) != 2:
        raise ProtocolError(f"bad length of (0000,{element:04X})")
    return raw[0] | raw[1] << 8


def _text(raw: bytes) -> str:
    return raw.rstrip(b"\0 ").decode("ascii", "replace") if raw else ""


# -- other command sets: C-ECHO, and the N-services of storage commitment ---------------

C_ECHO_RQ = 0x0030
C_ECHO_RSP = 0x8030
N_EVENT_REPORT_RQ = 0x0100
N_EVENT_REPORT_RSP = 0x8100
N_ACTION_RQ = 0x0130
N_ACTION_RSP = 0x8130
NO_DATA_SET = 0x0101
"""Command Data Set Type (0000,0800) of a message without a data set."""


def encode_command(elements: list[tuple[int, bytes]]) -> bytes:
    """A command set of ``(element number, value)`` pairs in group 0000, in the order
    given (the caller keeps element order ascending), with its group length; values of
    odd length are padded with a NUL (the padding of UIDs)."""
    padded = [(element, value + b"\0" * (len(value) % 2)) for element, value in elements]
    body = b"".join(_ELEMENT.pack(0x0000, e, len(value)) + value for e, value in padded)
    return _ELEMENT.pack(0x0000, 0x0000, 4) + len(body).to_bytes(4, "little") + body


def _us_value(value: int) -> bytes:
    return value.to_bytes(2, "little")


def encode_c_echo_rq(message_id: int) -> bytes:
    """The command set of a C-ECHO-RQ (PS3.7 9.3.5.1)."""
    return encode_command(
        [
            (0x0002, VERIFICATION_SOP_CLASS.encode("ascii")),
            (0x0100, _us_value(C_ECHO_RQ)),
            (0x0110, _us_value(message_id)),
            (0x0800, _us_value(NO_DATA_SET)),
        ]
    )


def encode_n_action_rq(
    message_id: int, sop_class_uid: str, sop_instance_uid: str, action_type: int
) -> bytes:
    """The command set of an N-ACTION-RQ with a data set to follow (PS3.7 10.3.4.1)."""
    return encode_command(
        [
            (0x0003, sop_class_uid.encode("ascii")),
            (0x0100, _us_value(N_ACTION_RQ)),
            (0x0110, _us_value(message_id)),
            (0x0800, _us_value(_DATA_SET_PRESENT)),
            (0x1001, sop_instance_uid.encode("ascii")),
            (0x1008, _us_value(action_type)),
        ]
    )


def encode_n_event_report_rsp(
    message_id: int, sop_class_uid: str, sop_instance_uid: str, event_type: int, status: int
) -> bytes:
    """The command set of an N-EVENT-REPORT-RSP without a data set (PS3.7 10.3.1.2)."""
    return encode_command(
        [
            (0x0002, sop_class_uid.encode("ascii")),
            (0x0100, _us_value(N_EVENT_REPORT_RSP)),
            (0x0120, _us_value(message_id)),
            (0x0800, _us_value(NO_DATA_SET)),
            (0x0900, _us_value(status)),
            (0x1000, sop_instance_uid.encode("ascii")),
            (0x1002, _us_value(event_type)),
        ]
    )


VERIFICATION_SOP_CLASS = "1.2.840.10008.1.1"


def command_elements(data: bytes) -> dict[int, bytes]:
    """Every element of a command set (group 0000), by element number, raw values; the
    last occurrence wins. Raises :class:`ProtocolError` for malformed bytes."""
    unpack = _ELEMENT.unpack_from
    pos, end = 0, len(data)
    found: dict[int, bytes] = {}
    while pos < end:
        if pos + 8 > end:
            raise ProtocolError("truncated command set")
        group, element, length = unpack(data, pos)
        pos += 8
        stop = pos + length
        if group != 0x0000 or stop > end:
            raise ProtocolError("malformed command set")
        found[element] = data[pos:stop]
        pos = stop
    return found


def us_element(elements: dict[int, bytes], element: int) -> int | None:
    """An US element of :func:`command_elements`'s result, None when absent."""
    raw = elements.get(element)
    return None if raw is None else _us(element, raw)


def ui_element(elements: dict[int, bytes], element: int) -> str:
    """A UI element of :func:`command_elements`'s result without padding; "" when absent."""
    return _text(elements.get(element, b""))
