"""Waiting for a C-STORE response that does not come as it should: the socket timeout
expiring (``-ts``), and a Pending answer followed by the final one. storescu and
``dispatch send`` end the same way against the same scripted peer."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.net.rawpeer import (
    RELEASE_RP,
    RawPeer,
    accept_all,
    read_pdu,
    receive_message,
    store_response,
)
from tests.net.send_cli import run_send
from tests.support.dicom_files import make_file
from tests.support.programs import require_program

Script = Callable[[socket.socket], None]


def record_until_closed(conn: socket.socket, after: list[int]) -> None:
    """Record the type of every PDU the sender sends (0: it closed the connection),
    answering A-RELEASE-RQ, until the connection ends."""
    while True:
        try:
            pdu_type, _pdu = read_pdu(conn)
        except ConnectionResetError:
            pdu_type = 0
        after.append(pdu_type)
        if pdu_type == 0x05:
            conn.sendall(RELEASE_RP)
        elif pdu_type in (0, 0x07):
            return


def silent_script(after: list[int]) -> Script:
    """Accept, take the first C-STORE and never answer it."""

    def script(conn: socket.socket) -> None:
        _type, rq = read_pdu(conn)
        conn.sendall(accept_all(rq))
        receive_message(conn)
        record_until_closed(conn, after)

    return script


def pending_script(after: list[int]) -> Script:
    """Accept, answer the first C-STORE with Pending (0xFF00), then with Success."""

    def script(conn: socket.socket) -> None:
        _type, rq = read_pdu(conn)
        conn.sendall(accept_all(rq))
        _t, _p, message = receive_message(conn)
        for status in (0xFF00, 0x0000):
            conn.sendall(
                store_response(
                    message.field("MessageID"),
                    message.field("AffectedSOPClassUID"),
                    message.field("AffectedSOPInstanceUID"),
                    status,
                )
            )
        record_until_closed(conn, after)

    return script


def sender_run(
    sender: str, peer: RawPeer, monkeypatch: pytest.MonkeyPatch, options: list[str], *files: Path
) -> int:
    """Run ``sender`` ("storescu" or "dispatch") with ``options`` against ``peer``."""
    if sender == "dispatch":
        return run_send(monkeypatch, *options, "127.0.0.1", peer.port, *files).code
    storescu = require_program("storescu")
    run = subprocess.run(
        [str(storescu), *options, "127.0.0.1", str(peer.port), *map(str, files)],
        capture_output=True,
        timeout=60,
    )
    return run.returncode


SENDERS = ["storescu", "dispatch"]


@pytest.mark.parametrize("sender", SENDERS)
def test_socket_timeout_awaiting_the_response_is_a_peer_abort(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sender: str
) -> None:
    """``-ts`` expires while the response is awaited: the peer is taken for gone (the
    connection closed, no A-ABORT), exit 10 as for a peer abort."""
    file = make_file(tmp_path / "a.dcm")
    after: list[int] = []
    peer = RawPeer(silent_script(after))
    code = sender_run(sender, peer, monkeypatch, ["-ts", "1"], file)
    peer.join()
    assert (code, after) == (10, [0])


@pytest.mark.parametrize("sender", SENDERS)
def test_pending_then_success_halts_and_the_release_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sender: str
) -> None:
    """Pending is no valid C-STORE answer: the store counts as failed (halt, release);
    the late final answer then arrives where the release's answer is due, the release
    fails, and that makes the exit code 1 (not the status's 255)."""
    files = [make_file(tmp_path / f"{n}.dcm", instance_number=n) for n in (1, 2)]
    after: list[int] = []
    peer = RawPeer(pending_script(after))
    code = sender_run(sender, peer, monkeypatch, [], *files)
    peer.join()
    assert code == 1
    assert after[0] == 0x05  # the second file is not sent: A-RELEASE-RQ comes next
