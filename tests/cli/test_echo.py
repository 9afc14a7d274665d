"""``dispatch echo`` against DCMTK's echoscu: the same peers (storescp accepting or
refusing, nothing listening, a peer that never answers, one that aborts or answers with
a failure status), the same exit codes and key messages; where echoscu reports a failed
echo and still exits 0, ``dispatch echo`` fails (see :mod:`dispatch.echo`)."""

from __future__ import annotations

import contextlib
import io
import socket
import struct
import subprocess

import pytest

from dispatch.cli.main import main
from dispatch.net.dimse import encode_c_echo_rq
from tests.cli.conftest import RUN_TIMEOUT_S, Run
from tests.conftest import StorescpFactory
from tests.net.rawpeer import (
    RELEASE_RP,
    RawPeer,
    accept_all,
    command_set,
    read_pdu,
    receive_message,
)
from tests.support.programs import require_program
from tests.support.scp import REJECTED_TRANSIENT, StorageScp
from tests.support.storescp import free_port


def run_echo(*args: object) -> Run:
    """``dispatch echo *args`` in this process, its output captured."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["echo", *map(str, args)])
    return Run("dispatch", code, out.getvalue(), err.getvalue())


def run_echoscu(*args: object) -> Run:
    """DCMTK's echoscu with ``args``."""
    program = require_program("echoscu")
    done = subprocess.run(
        [str(program), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    return Run("echoscu", done.returncode, done.stdout, done.stderr)


def info_lines(run: Run) -> list[str]:
    """The ``I:`` lines of a verbose run."""
    return [line for line in run.output.splitlines() if line.startswith("I: ")]


def test_echo_succeeds_as_echoscus_against_storescp(storescp: StorescpFactory) -> None:
    peer = storescp()
    theirs = run_echoscu("-v", "localhost", peer.port)
    ours = run_echo("-v", "localhost", peer.port)
    assert (ours.code, theirs.code) == (0, 0), ours.output + theirs.output
    assert info_lines(ours) == info_lines(theirs)


def test_repeat_and_abort_log_as_echoscu(storescp: StorescpFactory) -> None:
    peer = storescp()
    args = ("-v", "--repeat", 3, "--abort", "localhost", peer.port)
    theirs, ours = run_echoscu(*args), run_echo(*args)
    assert (ours.code, theirs.code) == (0, 0)
    assert info_lines(ours) == info_lines(theirs)
    assert "I: Sending Echo Request (MsgID 3)" in ours.output
    assert "I: Aborting Association" in ours.output


def test_quiet_success_prints_nothing(storescp: StorescpFactory) -> None:
    peer = storescp()
    ours = run_echo("localhost", peer.port)
    assert (ours.code, ours.output) == (0, "")


def test_connection_refused_exits_1_as_echoscu() -> None:
    port = free_port()
    theirs, ours = run_echoscu("localhost", port), run_echo("localhost", port)
    assert (ours.code, theirs.code) == (1, 1)
    assert "F: Association Request Failed:" in theirs.output
    assert ours.output.startswith("F: Association Request Failed:")
    assert "connection refused" in ours.output
    assert len(ours.output.splitlines()) == 1


def test_rejected_association_exits_1_as_echoscu(storescp: StorescpFactory) -> None:
    peer = storescp("--refuse")
    theirs, ours = run_echoscu("localhost", peer.port), run_echo("localhost", peer.port)
    assert (ours.code, theirs.code) == (1, 1)
    assert "F: Association Rejected" in theirs.output
    assert ours.output.startswith("F: Association Rejected (rejected-permanent)")


def test_transient_rejection_is_named(scp: StorageScp) -> None:
    scp.reject_associations(REJECTED_TRANSIENT, 3, 2)
    ours = run_echo(scp.host, scp.port)
    assert ours.code == 1
    assert "rejected-transient" in ours.output and "local limit exceeded" in ours.output


def test_echo_reaches_pynetdicom_scp_with_the_aes_given(scp: StorageScp) -> None:
    ours = run_echo("-aet", "CHECKER", "-aec", "ANY-SCP", scp.host, scp.port)
    assert ours.code == 0, ours.output
    (record,) = scp.wait_for_associations(1)
    assert record.calling_ae == "CHECKER"


def _silent_listener() -> socket.socket:
    server = socket.create_server(("127.0.0.1", 0))
    server.listen(4)
    return server


def test_acse_timeout_exits_1_as_echoscu() -> None:
    with _silent_listener() as server:
        port = server.getsockname()[1]
        theirs = run_echoscu("-ta", 1, "127.0.0.1", port)
        ours = run_echo("-ta", 0.3, "127.0.0.1", port)
    assert (ours.code, theirs.code) == (1, 1)
    assert "F: Association Request Failed:" in theirs.output and "timeout" in theirs.output
    assert ours.output.startswith("F: Association Request Failed:")
    assert "no reply within 0.3 s" in ours.output


def _echo_peer(action: str, status: int = 0) -> RawPeer:
    """A peer that accepts, then aborts on the C-ECHO-RQ (``abort``), never answers it
    (``silent``), or answers it with ``status`` (``answer``)."""

    def script(conn: socket.socket) -> None:
        _type, rq = read_pdu(conn)
        conn.sendall(accept_all(rq))
        _t, _pdu, message = receive_message(conn)
        if action == "abort":
            conn.sendall(bytes([7, 0, 0, 0, 0, 4, 0, 0, 0, 0]))
            return
        if action == "silent":
            read_pdu(conn)
            return
        response = command_set(
            [
                (0x0002, b"1.2.840.10008.1.1\0"),
                (0x0100, struct.pack("<H", 0x8030)),
                (0x0120, struct.pack("<H", message.field("MessageID"))),
                (0x0800, struct.pack("<H", 0x0101)),
                (0x0900, struct.pack("<H", status)),
            ]
        )
        pdv = struct.pack(">LBB", len(response) + 2, 1, 0x03) + response
        conn.sendall(struct.pack(">BxL", 0x04, len(pdv)) + pdv)
        if read_pdu(conn)[0] == 0x05:
            conn.sendall(RELEASE_RP)

    return RawPeer(script)


@pytest.mark.parametrize("runner", ["echoscu", "dispatch"])
def test_peer_abort(runner: str) -> None:
    peer = _echo_peer("abort")
    run = (run_echoscu if runner == "echoscu" else run_echo)("-v", "127.0.0.1", peer.port)
    peer.join()
    assert "I: Peer Aborted Association" in run.output
    assert "E: Echo Failed:" in run.output
    # echoscu exits 0 after a peer abort; a check must not pass then.
    assert run.code == (0 if runner == "echoscu" else 10)


@pytest.mark.parametrize("runner", ["echoscu", "dispatch"])
def test_failure_status(runner: str) -> None:
    peer = _echo_peer("answer", 0x0110)
    run = (run_echoscu if runner == "echoscu" else run_echo)("-v", "127.0.0.1", peer.port)
    peer.join()
    assert "I: Received Echo Response (Unknown Status: 0x110)" in run.output
    assert "I: Releasing Association" in run.output
    assert run.code == (0 if runner == "echoscu" else 1)


def test_dimse_timeout_aborts_and_fails() -> None:
    peer = _echo_peer("silent")
    run = run_echo("-td", 0.3, "127.0.0.1", peer.port)
    peer.join()
    assert run.code == 1
    assert run.output.startswith("E: Echo Failed: waiting for the C-ECHO response: no reply")


def test_command_line_errors_as_echoscu() -> None:
    assert run_echo().code == 0  # usage
    missing = run_echo("localhost")
    assert missing.code == 1 and "error: Missing parameter" in missing.output
    refused = run_echo("--read-file", "localhost", "104")
    assert refused.code == 1
    bad_port = run_echo("localhost", "0")
    theirs = run_echoscu("localhost", "0")
    assert (bad_port.code, theirs.code) == (1, 1)


def test_c_echo_rq_bytes_equal_pynetdicom() -> None:
    from pynetdicom.dimse_messages import C_ECHO_RQ
    from pynetdicom.dimse_primitives import C_ECHO
    from pynetdicom.dsutils import encode

    primitive = C_ECHO()
    primitive.MessageID = 7
    primitive.AffectedSOPClassUID = "1.2.840.10008.1.1"
    message = C_ECHO_RQ()
    message.primitive_to_message(primitive)
    expected = encode(message.command_set, True, True)
    assert expected is not None
    assert encode_c_echo_rq(7) == bytes(expected)
