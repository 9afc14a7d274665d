"""The peer's maximum PDU length, however small, is what every P-DATA-TF we send
respects, command and data set alike; one too small to send with is refused in words
before anything is sent."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dispatch.dicomfile import read_info
from dispatch.errors import SendLimitTooSmall
from dispatch.net import Association, DataSource
from dispatch.net.association import MIN_SEND_PDU
from dispatch.proposals import build_contexts
from dispatch.settings import AssociationSettings
from tests.net.exchange import store
from tests.net.rawpeer import Message, RawPeer, accept_all, read_pdu, storing_script
from tests.net.send_cli import run_send
from tests.support.dicom_files import make_file
from tests.support.storescp import Storescp, free_port

CT = "1.2.840.10008.5.1.4.1.1.2"


def _settings(port: int, **kwargs: object) -> AssociationSettings:
    return AssociationSettings(
        "127.0.0.1",
        port,
        build_contexts("uncompressed", [CT]),
        **kwargs,  # type: ignore[arg-type]
    )


def _dataset_bytes(path: Path) -> bytes:
    info = read_info(str(path))
    return path.read_bytes()[info.dataset_offset :]


def _chunks(data: bytes) -> Iterator[bytes]:
    """``data`` in uneven pieces, as a conversion yields them."""
    sizes = (1, 4095, 7, 30_000, 13)
    pos = 0
    while pos < len(data):
        for size in sizes:
            yield data[pos : pos + size]
            pos += size


def _source(kind: str, path: Path, fd: int) -> DataSource:
    info = read_info(str(path))
    if kind == "file":
        return DataSource.file_range(str(path), fd, info.dataset_offset, info.dataset_length)
    if kind == "memory":
        return DataSource.memory(str(path), _dataset_bytes(path))
    return DataSource.stream(str(path), _chunks(_dataset_bytes(path)))


@pytest.mark.parametrize("kind", ["file", "memory", "stream"])
@pytest.mark.parametrize(
    ("peer_max", "size"),
    [(MIN_SEND_PDU, 3_000), (100, 60_000), (1024, 300_000), (2048, 1_500_000)],
)
def test_small_peer_limits_carry_the_file_intact(
    tmp_path: Path, kind: str, peer_max: int, size: int
) -> None:
    received: list[Message] = []
    peer = RawPeer(storing_script(peer_max, received))
    path = make_file(tmp_path / "a.dcm", size=size)
    info = read_info(str(path))
    assoc = Association.open(_settings(peer.port))
    context = assoc.contexts_for(CT)[0]
    with open(path, "rb") as f:
        data = _source(kind, path, f.fileno())
        response = store(assoc, context, info.sop_class_uid, info.sop_instance_uid, data)
    assoc.release()
    peer.join()

    assert response.status == 0
    (message,) = received
    assert message.data_set == _dataset_bytes(path)
    assert message.field("AffectedSOPInstanceUID") == info.sop_instance_uid
    assert max(message.pdu_lengths) <= peer_max
    # Whole fragments but the last one of the command and of the data set.
    assert message.pdu_lengths.count(peer_max) >= len(message.pdu_lengths) - 2


@pytest.mark.parametrize("peer_max", [1, 6, 7, MIN_SEND_PDU - 1])
def test_a_peer_limit_too_small_is_refused_with_an_abort(peer_max: int) -> None:
    after_accept: list[int] = []

    def script(conn: socket.socket) -> None:
        _type, rq = read_pdu(conn)
        conn.sendall(accept_all(rq, peer_max))
        after_accept.append(read_pdu(conn)[0])

    peer = RawPeer(script)
    with pytest.raises(SendLimitTooSmall) as caught:
        Association.open(_settings(peer.port))
    peer.join()
    assert str(caught.value) == (
        f"the peer's maximum PDU length is {peer_max} bytes, too small to send with"
        f" (at least {MIN_SEND_PDU})"
    )
    assert after_accept == [0x07]  # an A-ABORT, nothing else


@pytest.mark.parametrize("limit", [1, 7, MIN_SEND_PDU - 1])
def test_a_send_limit_too_small_is_refused_before_connecting(limit: int) -> None:
    # Nothing listens there: connecting would fail otherwise.
    with pytest.raises(SendLimitTooSmall, match=f"maximum send PDU length is {limit} bytes"):
        Association.open(_settings(free_port(), max_send_pdu=limit))


def test_the_smallest_send_limit_carries_the_file_intact(tmp_path: Path) -> None:
    received: list[Message] = []
    peer = RawPeer(storing_script(0, received))
    path = make_file(tmp_path / "a.dcm", size=2_000)
    info = read_info(str(path))
    assoc = Association.open(_settings(peer.port, max_send_pdu=MIN_SEND_PDU))
    data = DataSource.memory(str(path), _dataset_bytes(path))
    response = store(
        assoc, assoc.contexts_for(CT)[0], info.sop_class_uid, info.sop_instance_uid, data
    )
    assoc.release()
    peer.join()
    assert response.status == 0
    assert received[0].data_set == _dataset_bytes(path)
    assert max(received[0].pdu_lengths) == MIN_SEND_PDU


@pytest.mark.parametrize("kind", ["file", "memory", "stream"])
def test_storescp_at_its_smallest_limit_receives_the_file_intact(
    storescp: Callable[..., Storescp], tmp_path: Path, kind: str
) -> None:
    receiver = storescp("-pdu", "4096", "+B")
    path = make_file(tmp_path / "a.dcm", size=300_000)
    info = read_info(str(path))
    assoc = Association.open(_settings(receiver.port))
    assert assoc.max_send_pdu == 4096
    with open(path, "rb") as f:
        data = _source(kind, path, f.fileno())
        context = assoc.contexts_for(CT)[0]
        response = store(assoc, context, info.sop_class_uid, info.sop_instance_uid, data)
    assoc.release()

    assert response.status == 0
    (stored,) = receiver.files()
    assert _dataset_bytes(stored) == _dataset_bytes(path)


def test_dispatch_send_says_why_a_peer_limit_cannot_be_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def script(conn: socket.socket) -> None:
        _type, rq = read_pdu(conn)
        conn.sendall(accept_all(rq, 7))
        read_pdu(conn)

    peer = RawPeer(script)
    path = make_file(tmp_path / "a.dcm")
    run = run_send(monkeypatch, "127.0.0.1", peer.port, path)
    peer.join()
    assert run.code == 1
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if "too small" in line]
    assert errors == [
        "F: Association Request Failed: the peer's maximum PDU length is 7 bytes,"
        f" too small to send with (at least {MIN_SEND_PDU})"
    ]
