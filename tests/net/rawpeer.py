"""A scripted peer for protocol edge cases a real SCP will not produce: it accepts an
association with pynetdicom's PDU classes, then does exactly what the test says."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable

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
