"""AE titles as storescu treats them: an empty -aet / -aec is refused ("Illegal service
parameter", exit 1), one over 16 characters is cut to 16 and sent."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.net.rawpeer import RawPeer, read_pdu
from tests.net.send_cli import run_send
from tests.support.dicom_files import make_file
from tests.support.programs import require_program

REJECT = bytes([0x03, 0, 0, 0, 0, 4, 0, 1, 1, 1])
"""A-ASSOCIATE-RJ: rejected-permanent, by the service user, no reason given."""


@pytest.fixture
def listener() -> Iterator[int]:
    """A port that takes connections and never answers."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


EMPTY = pytest.mark.parametrize(
    ("args", "title"),
    [
        (["-aet", ""], "Calling AP Title"),
        (["-aec", ""], "Called AP Title"),
        (["-aec", "", "-aet", ""], "Called AP Title"),
    ],
    ids=["calling", "called", "both"],
)


@EMPTY
def test_storescu_refuses_an_empty_title(
    tmp_path: Path, listener: int, args: list[str], title: str
) -> None:
    storescu = require_program("storescu")
    path = make_file(tmp_path / "1.dcm")
    run = subprocess.run(
        [str(storescu), *args, "127.0.0.1", str(listener), str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 1
    assert f"F: Association Request Failed: 0006:030c Illegal service parameter: {title}" in (
        run.stderr
    )


@EMPTY
def test_dispatch_send_refuses_an_empty_title(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listener: int, args: list[str], title: str
) -> None:
    path = make_file(tmp_path / "1.dcm")
    run = run_send(monkeypatch, *args, "127.0.0.1", listener, path)
    assert run.code == 1
    assert f"F: Association Request Failed: Illegal service parameter: {title}" in run.stderr


def _titles_sent(command: list[str], monkeypatch: pytest.MonkeyPatch, path: Path) -> bytes:
    """The called and calling AE title fields of the A-ASSOCIATE-RQ ``command`` sends
    (``dispatch send`` when the command is empty); the peer rejects the request."""
    seen: list[bytes] = []

    def script(conn: socket.socket) -> None:
        _type, rq = read_pdu(conn)
        seen.append(rq[10:42])
        conn.sendall(REJECT)

    peer = RawPeer(script)
    titles = ["-aet", "ABCDEFGHIJKLMNOPQRSTUV", "-aec", "0123456789abcdefghijXYZ"]
    if command:
        run = subprocess.run(
            [*command, *titles, "127.0.0.1", str(peer.port), str(path)],
            capture_output=True,
            timeout=30,
        )
        code = run.returncode
    else:
        code = run_send(monkeypatch, *titles, "127.0.0.1", peer.port, path).code
    peer.join()
    assert code == 1  # the rejection
    return seen[0]


def test_long_titles_are_cut_to_16_characters_as_storescu_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storescu = require_program("storescu")
    path = make_file(tmp_path / "1.dcm")
    expected = b"0123456789abcdefABCDEFGHIJKLMNOP"
    assert _titles_sent([str(storescu)], monkeypatch, path) == expected
    assert _titles_sent([], monkeypatch, path) == expected
