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
_US = struct.Struct("<HHLH")


def _ui(value: str) -> bytes:
    raw = value.encode("ascii")
    return raw + b"\0" if len(raw) % 2 else raw


def encode_c_store_rq(
    message_id: int, sop_class_uid: str, sop_instance_uid: str, priority: int = PRIORITY_MEDIUM
) -> bytes:
    """The command set of a C-STORE-RQ with a data set to follow."""
    sop_class = _ui(sop_class_uid)
    sop_instance = _ui(sop_instance_uid)
    body = b"".join(
        (
            _ELEMENT.pack(0x0000, 0x0002, len(sop_class)),
            sop_class,
            _US.pack(0x0000, 0x0100, 2, C_STORE_RQ),
            _US.pack(0x0000, 0x0110, 2, message_id),
            _US.pack(0x0000, 0x0700, 2, priority),
            _US.pack(0x0000, 0x0800, 2, _DATA_SET_PRESENT),
            _ELEMENT.pack(0x0000, 0x1000, len(sop_instance)),
            sop_instance,
        )
    )
    return _ELEMENT.pack(0x0000, 0x0000, 4) + struct.pack("<L", len(body)) + body


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
    view = memoryview(data)
    pos, end = 0, len(data)
    fields: dict[int, bytes] = {}
    while pos < end:
        if pos + 8 > end:
            raise ProtocolError("truncated command set")
        group, element, length = _ELEMENT.unpack_from(view, pos)
        pos += 8
        if group != 0x0000 or pos + length > end:
            raise ProtocolError("malformed command set")
        fields[element] = bytes(view[pos : pos + length])
        pos += length
    if 0x0100 not in fields:
        raise ProtocolError("command set without Command Field")

    def us(element: int) -> int | None:
        raw = fields.get(element)
        if raw is None:
            return None
        if len(raw) != 2:
            raise ProtocolError(f"bad length of (0000,{element:04X})")
        return int.from_bytes(raw, "little")

    def text(element: int) -> str:
        return fields.get(element, b"").rstrip(b"\0 ").decode("ascii", "replace")

    command_field = us(0x0100)
    assert command_field is not None
    return CommandSet(
        command_field=command_field,
        message_id_responded=us(0x0120),
        status=us(0x0900),
        sop_class_uid=text(0x0002),
        sop_instance_uid=text(0x1000),
        error_comment=text(0x0902),
    )
