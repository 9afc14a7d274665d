"""A peer that sends A-RELEASE-RQ in the middle of a run, while the sender waits for a
C-STORE response: storescu and ``dispatch send`` both answer with A-ABORT and exit 10."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.net.rawpeer import RawPeer, accept_all, read_pdu, receive_message, store_response
from tests.net.send_cli import run_send
from tests.support.dicom_files import make_file
from tests.support.programs import require_program

RELEASE_RQ = bytes([0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0])
USER_ABORT = bytes([0x07, 0, 0, 0, 0, 4, 0, 0, 0, 0])


def releasing_script(stored_first: int, after: list[tuple[int, bytes]]) -> Callable[..., None]:
    """Accept, answer the first ``stored_first`` C-STOREs, then send A-RELEASE-RQ instead
    of the next response; record every PDU that follows in ``after`` up to an A-ABORT,
    after which the peer closes the connection (storescu waits for that)."""

    def script(conn: socket.socket) -> None:
        _type, rq = read_pdu(conn)
        conn.sendall(accept_all(rq))
        for _ in range(stored_first):
            _t, _p, message = receive_message(conn)
            conn.sendall(
                store_response(
                    message.field("MessageID"),
                    message.field("AffectedSOPClassUID"),
                    message.field("AffectedSOPInstanceUID"),
                )
            )
        receive_message(conn)
        conn.sendall(RELEASE_RQ)
        while True:
            pdu_type, pdu = read_pdu(conn)
            after.append((pdu_type, pdu))
            if pdu_type in (0, 0x07):
                return

    return script


WHEN = pytest.mark.parametrize(
    "stored_first", [0, 1], ids=["awaiting-first-response", "between-files"]
)


@WHEN
def test_storescu_aborts_and_exits_10(tmp_path: Path, stored_first: int) -> None:
    storescu = require_program("storescu")
    files = [make_file(tmp_path / f"{n}.dcm", instance_number=n) for n in (1, 2, 3)]
    after: list[tuple[int, bytes]] = []
    peer = RawPeer(releasing_script(stored_first, after))
    run = subprocess.run(
        [str(storescu), "127.0.0.1", str(peer.port), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    peer.join()

    assert run.returncode == 10
    assert "Peer requested release (Aborting)" in run.stderr
    assert after == [(0x07, USER_ABORT)]


@WHEN
def test_dispatch_send_aborts_and_exits_10(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stored_first: int
) -> None:
    files = [make_file(tmp_path / f"{n}.dcm", instance_number=n) for n in (1, 2, 3)]
    after: list[tuple[int, bytes]] = []
    peer = RawPeer(releasing_script(stored_first, after))
    report = tmp_path / "report.jsonl"

    run = run_send(monkeypatch, "--report", report, "127.0.0.1", peer.port, *files)
    peer.join()

    assert run.code == 10
    assert "Peer requested release (Aborting)" in run.stderr
    assert after == [(0x07, USER_ABORT)]
    outcomes = [json.loads(line)["outcome"] for line in report.read_text().splitlines()]
    expected = ["stored"] * stored_first + ["failed"] + ["not_sent"] * (2 - stored_first)
    assert outcomes == expected
