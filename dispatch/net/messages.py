"""DIMSE messages other than C-STORE on an open association: sent whole from memory,
received whole into memory (C-ECHO, N-ACTION, N-EVENT-REPORT: a command set and at
most a small data set).

C-STORE keeps its own hot path (:meth:`dispatch.net.wire.Wire.send_message` and
:meth:`dispatch.net.association.Association.receive_response`).
"""

from __future__ import annotations

from dataclasses import dataclass

from dispatch.errors import PeerAborted, ProtocolError
from dispatch.net import pdu as P
from dispatch.net.dimse import NO_DATA_SET, command_elements, us_element
from dispatch.net.wire import Wire


@dataclass(frozen=True)
class Message:
    """One received DIMSE message."""

    context_id: int
    command: dict[int, bytes]
    """The command set's elements by element number (see
    :func:`dispatch.net.dimse.command_elements`)."""
    data_set: bytes | None
    """The data set's bytes (in the context's transfer syntax), None when none came."""

    @property
    def command_field(self) -> int:
        value = us_element(self.command, 0x0100)
        assert value is not None  # checked on receipt
        return value


def send(
    wire: Wire, context_id: int, fragment: int, command: bytes, data_set: bytes | None
) -> None:
    """Send ``command`` (and ``data_set``) on ``context_id`` as P-DATA-TF PDUs of one PDV
    with at most ``fragment`` bytes each, the last of each marked last."""
    parts = _framed(command, context_id, fragment, 0x01)
    if data_set is not None:
        parts += _framed(data_set, context_id, fragment, 0x00)
    wire.send(b"".join(parts), "sending a DIMSE message")


def _framed(data: bytes, context_id: int, fragment: int, control: int) -> list[bytes]:
    pieces = [data[start : start + fragment] for start in range(0, len(data), fragment)] or [b""]
    out: list[bytes] = []
    for number, piece in enumerate(pieces, 1):
        last = 0x02 if number == len(pieces) else 0x00
        out += (P.pdata_header(len(piece), context_id, control | last), piece)
    return out


def receive(wire: Wire, max_pdu: int, timeout_s: float | None, what: str) -> Message:
    """Wait at most ``timeout_s`` (None: the socket timeout) for a whole message and
    return it. Raises :class:`PeerAborted` for an A-ABORT, :class:`ProtocolError` for
    anything that is not a DIMSE message (an A-RELEASE-RQ included: the caller has not
    finished), and the wire's errors."""
    wire.wait_readable(timeout_s, what)
    command = bytearray()
    data = bytearray()
    command_done = data_done = False
    context_id = 0
    while True:
        pdu_type, pdu = wire.read_pdu(max_pdu, what)
        if pdu_type == P.ABORT:
            raise PeerAborted(P.describe_abort(pdu[8], pdu[9]), pdu[8], pdu[9])
        if pdu_type != P.P_DATA_TF:
            raise ProtocolError(f"{what}: unexpected PDU type 0x{pdu_type:02X}")
        pos, end = 6, len(pdu)
        while pos < end:
            if pos + 6 > end:
                raise ProtocolError("truncated PDV item")
            item = int.from_bytes(pdu[pos : pos + 4], "big")
            if item < 2 or pos + 4 + item > end:
                raise ProtocolError("bad PDV item length")
            context_id, control = pdu[pos + 4], pdu[pos + 5]
            fragment = pdu[pos + 6 : pos + 4 + item]
            if control & 0x01:
                command += fragment
                command_done = bool(control & 0x02)
            else:
                if not command_done:
                    raise ProtocolError("data set fragment before the command set")
                data += fragment
                data_done = bool(control & 0x02)
            pos += 4 + item
        if command_done:
            elements = command_elements(bytes(command))
            if us_element(elements, 0x0100) is None:
                raise ProtocolError("command set without Command Field")
            if us_element(elements, 0x0800) == NO_DATA_SET:
                return Message(context_id, elements, None)
            if data_done:
                return Message(context_id, elements, bytes(data))
