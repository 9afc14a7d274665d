"""A scripted peer for protocol edge cases a real SCP will not produce: it accepts an
association with pynetdicom's PDU classes, then does exactly what the test says."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from pynetdicom.dsutils import decode
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ
from pynetdicom.pdu_primitives import MaximumLengthNotification
from pynetdicom.presentation import PresentationContext


def read_pdu(conn: socket.socket) -> tuple[int, bytes]:
    """One whole PDU: (type, bytes including the header); (0, b"") when closed."""
    head = b""
    while len(head) < 6:
        chunk = conn.recv(6 - len(head))
        if not chunk:
            return 0, b""
        head += chunk
    length = struct.unpack(">L", head[2:6])[0]
    body = b""
    while len(body) < length:
        chunk = conn.recv(length - len(body))
        if not chunk:
            return 0, b""
        body += chunk
    return head[0], head + body


def accept_all(rq_bytes: bytes, max_pdu: int = 16384) -> bytes:
    """An A-ASSOCIATE-AC accepting every proposed context in its first syntax."""
    rq = A_ASSOCIATE_RQ()
    rq.decode(rq_bytes)
    primitive = rq.to_primitive()
    results = []
    for proposed in primitive.presentation_context_definition_list:
        context = PresentationContext()
        context.context_id = proposed.context_id
        context.result = 0
        context.transfer_syntax = [proposed.transfer_syntax[0]]
        results.append(context)
    primitive.presentation_context_definition_results_list = results
    primitive.result = 0
    item = MaximumLengthNotification()
    item.maximum_length_received = max_pdu
    primitive.user_information = [item]
    ac = A_ASSOCIATE_AC()
    ac.from_primitive(primitive)
    return bytes(ac.encode())


RELEASE_RP = bytes([0x06, 0, 0, 0, 0, 4, 0, 0, 0, 0])


def command_set(elements: list[tuple[int, bytes]]) -> bytes:
    """An implicit VR little endian command set of ``(element, value)`` in group 0000,
    with its group length."""
    body = b"".join(struct.pack("<HHL", 0, e, len(v)) + v for e, v in elements)
    return struct.pack("<HHLL", 0, 0, 4, len(body)) + body


def _ui(uid: str) -> bytes:
    raw = uid.encode("ascii")
    return raw + b"\0" if len(raw) % 2 else raw


def store_response(
    message_id: int, sop_class_uid: str, sop_instance_uid: str, status: int = 0x0000
) -> bytes:
    """A P-DATA-TF PDU holding a whole C-STORE-RSP on context 1 (UIDs left out when
    empty)."""
    elements = [
        (0x0100, struct.pack("<H", 0x8001)),
        (0x0120, struct.pack("<H", message_id)),
        (0x0800, struct.pack("<H", 0x0101)),
        (0x0900, struct.pack("<H", status)),
    ]
    if sop_class_uid:
        elements.insert(0, (0x0002, _ui(sop_class_uid)))
    if sop_instance_uid:
        elements.append((0x1000, _ui(sop_instance_uid)))
    command = command_set(elements)
    pdv = struct.pack(">LBB", len(command) + 2, 1, 0x03) + command
    return struct.pack(">BxL", 0x04, len(pdv)) + pdv


@dataclass
class Message:
    """One DIMSE message as received, and how it came."""

    command: bytes = b""
    data_set: bytes = b""
    pdu_lengths: list[int] = field(default_factory=list)
    """The length field of every P-DATA-TF PDU it came in."""

    def field(self, keyword: str) -> Any:
        """An element of the command set, e.g. ``"MessageID"`` (decoded by pynetdicom)."""
        return decode(BytesIO(self.command), True, True)[keyword].value


def receive_message(conn: socket.socket) -> tuple[int, bytes, Message]:
    """Read P-DATA-TF PDUs until a command and its data set are complete.

    Returns (0, b"", message) when they are; else the type and bytes of the PDU that came
    instead (the connection closed: type 0), with what had arrived of the message.
    """
    message = Message()
    command_done = False
    while True:
        pdu_type, pdu = read_pdu(conn)
        if pdu_type != 0x04:
            return pdu_type, pdu, message
        message.pdu_lengths.append(len(pdu) - 6)
        pos = 6
        while pos < len(pdu):
            item, control = struct.unpack_from(">L", pdu, pos)[0], pdu[pos + 5]
            fragment = pdu[pos + 6 : pos + 4 + item]
            pos += 4 + item
            if control & 0x01:
                message.command += fragment
                command_done = bool(control & 0x02)
            else:
                message.data_set += fragment
                if control & 0x02:
                    return 0, b"", message
        if command_done and message.field("CommandDataSetType") == 0x0101:
            return 0, b"", message


def storing_script(
    max_pdu: int, messages: list[Message], answer_instance: str | None = None
) -> Callable[[socket.socket], None]:
    """A peer script: accept announcing ``max_pdu``, answer every C-STORE with success
    (naming ``answer_instance`` instead of the instance stored, when given) and record
    it in ``messages``, release when asked."""

    def script(conn: socket.socket) -> None:
        _type, rq = read_pdu(conn)
        conn.sendall(accept_all(rq, max_pdu))
        while True:
            pdu_type, _pdu, message = receive_message(conn)
            if pdu_type == 0x05:
                conn.sendall(RELEASE_RP)
            if pdu_type:
                return
            messages.append(message)
            instance = answer_instance or message.field("AffectedSOPInstanceUID")
            conn.sendall(
                store_response(
                    message.field("MessageID"),
                    message.field("AffectedSOPClassUID"),
                    instance,
                )
            )

    return script


class RawPeer:
    """Listens on 127.0.0.1; runs ``script(conn)`` for the first connection."""

    def __init__(self, script: Callable[[socket.socket], None]) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.received: list[tuple[int, bytes]] = []
        self.error: BaseException | None = None
        self._script = script
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn, _ = self._server.accept()
        try:
            with conn:
                self._script(conn)
        except BaseException as exc:  # reported to the test through .error
            self.error = exc

    def join(self, timeout_s: float = 5.0) -> None:
        self._thread.join(timeout_s)
        self._server.close()
        if self.error is not None:
            raise self.error
