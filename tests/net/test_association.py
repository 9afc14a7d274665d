"""The association engine against real peers: the pynetdicom SCP fixture, and a
scripted raw peer for what no well-behaved SCP does."""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dispatch.dicomfile import read_info
from dispatch.errors import (
    AssociationRejectedPermanent,
    AssociationRejectedTransient,
    BadFile,
    ConnectFailed,
    NetworkTimeout,
    PeerAborted,
    PeerSilent,
    ProtocolError,
)
from dispatch.net import Association, DataSource
from dispatch.proposals import build_contexts
from dispatch.settings import AssociationSettings, SendPolicy, Timeouts
from dispatch.uids import EXPLICIT_LE, IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from tests.net.exchange import store
from tests.net.rawpeer import (
    RELEASE_RP,
    Message,
    RawPeer,
    accept_all,
    command_set,
    read_pdu,
    receive_message,
    store_response,
)
from tests.support.dicom_files import make_file
from tests.support.scp import StorageScp
from tests.support.sending import store_file
from tests.support.storescp import free_port

CT = "1.2.840.10008.5.1.4.1.1.2"


def _settings(port: int, **kwargs: object) -> AssociationSettings:
    return AssociationSettings(
        "127.0.0.1",
        port,
        build_contexts("uncompressed", [CT]),
        **kwargs,  # type: ignore[arg-type]
    )


def _store(assoc: Association, path: Path) -> int:
    info = read_info(str(path))
    context = next(c for c in assoc.accepted if c.transfer_syntax == info.transfer_syntax)
    with open(path, "rb") as f:
        data = DataSource.file_range(str(path), f, info.dataset_offset, info.dataset_length)
        return store(assoc, context, info.sop_class_uid, info.sop_instance_uid, data).status


def _dataset_bytes(path: Path) -> bytes:
    info = read_info(str(path))
    return path.read_bytes()[info.dataset_offset :]


def test_negotiation_items_and_stores_reach_the_peer(scp: StorageScp, tmp_path: Path) -> None:
    files = [make_file(tmp_path / f"{n}.dcm", instance_number=n) for n in (1, 2, 3)]
    assoc = Association.open(_settings(scp.port, calling_ae="ME", called_ae="ANY-SCP"))
    statuses = [_store(assoc, f) for f in files]
    assoc.release()

    record = scp.wait_for_associations(1)[0]
    assert statuses == [0, 0, 0]
    assert (record.calling_ae, record.called_ae) == ("ME", "ANY-SCP")
    assert record.max_pdu == 16384
    assert record.implementation_class_uid == IMPLEMENTATION_CLASS_UID
    assert record.implementation_version_name == IMPLEMENTATION_VERSION_NAME
    assert record.ended == "released"
    stores = scp.stores
    assert [s.message_id for s in stores] == [1, 2, 3]
    assert {s.priority for s in stores} == {0}
    sent_uids = [read_info(str(f)).sop_instance_uid for f in files]
    assert [s.sop_instance_uid for s in stores] == sent_uids
    assert [s.data for s in stores] == [_dataset_bytes(f) for f in files]


@pytest.mark.parametrize(
    ("peer_max", "send_cap", "limit"),
    [
        (4096, None, 4096),  # batched copies: small fragments
        (0, 8192, 8192),
        (16384, 5000, 5000),
        (0, None, 131072),  # zero-copy: large fragments
        (131072, None, 131072),
    ],
)
def test_fragments_respect_peer_limit_and_max_send_pdu(
    scp: StorageScp, tmp_path: Path, peer_max: int, send_cap: int | None, limit: int
) -> None:
    scp.max_pdu = peer_max
    big = make_file(tmp_path / "big.dcm", size=300_000)  # zero-copy path
    small = make_file(tmp_path / "small.dcm", size=20_000)  # inline path, several PDUs
    assoc = Association.open(_settings(scp.port, max_send_pdu=send_cap))
    assert [_store(assoc, big), _store(assoc, small)] == [0, 0]
    assoc.release()

    record = scp.wait_for_associations(1)[0]
    assert 0 < record.largest_pdu - 6 <= limit
    assert [s.data for s in scp.wait_for_stores(2)] == [_dataset_bytes(big), _dataset_bytes(small)]


@pytest.mark.parametrize(("peer_max", "limit"), [(4096, 4096), (0, 131072)])
def test_data_sets_in_memory_are_cut_like_those_of_files(
    scp: StorageScp, tmp_path: Path, peer_max: int, limit: int
) -> None:
    scp.max_pdu = peer_max
    path = make_file(tmp_path / "a.dcm", size=20_000)
    info = read_info(str(path))
    assoc = Association.open(_settings(scp.port))
    context = next(c for c in assoc.accepted if c.transfer_syntax == info.transfer_syntax)
    data = DataSource.memory(str(path), _dataset_bytes(path))
    assert store(assoc, context, info.sop_class_uid, info.sop_instance_uid, data).status == 0
    assoc.release()

    record = scp.wait_for_associations(1)[0]
    assert 0 < record.largest_pdu - 6 <= limit
    assert [s.data for s in scp.wait_for_stores(1)] == [_dataset_bytes(path)]


def test_a_file_shorter_than_its_info_fails_after_an_abort(scp: StorageScp, tmp_path: Path) -> None:
    path = make_file(tmp_path / "a.dcm", size=20_000)
    info = read_info(str(path))
    os.truncate(path, path.stat().st_size - 100)
    assoc = Association.open(_settings(scp.port))
    with pytest.raises(BadFile, match="file ended early"):
        store_file(assoc, str(path), SendPolicy(), info)
    assert not assoc.is_open
    assert scp.wait_for_associations(1)[0].ended in ("aborted", "closed")
    assert scp.stores == []


@pytest.mark.parametrize(
    ("result", "kind"),
    [(1, AssociationRejectedPermanent), (2, AssociationRejectedTransient)],
)
def test_rejections_map_to_transient_and_permanent(
    scp: StorageScp, result: int, kind: type[Exception]
) -> None:
    scp.reject_associations(result=result, source=3, reason=2)
    with pytest.raises(kind, match="local limit exceeded"):
        Association.open(_settings(scp.port))


def test_connection_refused() -> None:
    with pytest.raises(ConnectFailed, match="refused"):
        Association.open(_settings(free_port()))


def test_peer_abort_during_store(scp: StorageScp, tmp_path: Path) -> None:
    scp.abort_on_store(1)
    assoc = Association.open(_settings(scp.port))
    with pytest.raises(PeerAborted):
        _store(assoc, make_file(tmp_path / "a.dcm"))
    assert not assoc.is_open


def test_dimse_timeout_aborts_the_association(scp: StorageScp, tmp_path: Path) -> None:
    scp.stall_on_store(1)
    assoc = Association.open(_settings(scp.port, timeouts=Timeouts(dimse_s=0.3)))
    started = time.monotonic()
    with pytest.raises(NetworkTimeout, match=r"no reply within 0\.3 s"):
        _store(assoc, make_file(tmp_path / "a.dcm"))
    assert time.monotonic() - started < 3
    assert not assoc.is_open
    scp.release_stall()
    assert scp.wait_for_associations(1)[0].ended in ("aborted", "closed")


def test_acse_timeout(scp: StorageScp) -> None:
    scp.stall_associations()
    with pytest.raises(NetworkTimeout, match="A-ASSOCIATE-AC"):
        Association.open(_settings(scp.port, timeouts=Timeouts(acse_s=0.3)))


def test_socket_timeout_applies_without_dimse_timeout(scp: StorageScp, tmp_path: Path) -> None:
    """It is taken for a vanished peer, as storescu takes it (a peer abort)."""
    scp.stall_on_store(1)
    assoc = Association.open(_settings(scp.port, timeouts=Timeouts(socket_s=0.3)))
    with pytest.raises(PeerSilent) as caught:
        _store(assoc, make_file(tmp_path / "a.dcm"))
    assert isinstance(caught.value.__cause__, NetworkTimeout)
    assert not assoc.is_open


def test_oversized_pdu_from_peer_is_refused_with_an_abort(tmp_path: Path) -> None:
    aborts: list[bytes] = []

    def script(conn: socket.socket) -> None:
        _type, rq = read_pdu(conn)
        conn.sendall(accept_all(rq))
        read_pdu(conn)  # the command
        read_pdu(conn)  # the data set
        # Announce a P-DATA-TF of 2 GB: the sender must not try to read it.
        conn.sendall(struct.pack(">BxL", 0x04, 0x7FFFFFFF) + b"\0" * 64)
        pdu_type, pdu = read_pdu(conn)
        if pdu_type == 0x07:
            aborts.append(pdu)

    peer = RawPeer(script)
    assoc = Association.open(_settings(peer.port, max_pdu=16384))
    with pytest.raises(ProtocolError, match="more than the 16384 we accept"):
        _store(assoc, make_file(tmp_path / "a.dcm"))
    peer.join()
    assert aborts and aborts[0][8] == 2  # a provider abort


def test_wrong_message_id_in_response_is_a_protocol_error(tmp_path: Path) -> None:
    from dispatch.net.dimse import encode_c_store_rq
    from dispatch.net.pdu import pdata_header

    def script(conn: socket.socket) -> None:
        _type, rq = read_pdu(conn)
        conn.sendall(accept_all(rq))
        read_pdu(conn)
        read_pdu(conn)
        # A command set that is a C-STORE-RQ, not the response we wait for.
        command = encode_c_store_rq(99, CT, "1.2.3")
        conn.sendall(pdata_header(len(command), 1, 0x03) + command)
        read_pdu(conn)

    peer = RawPeer(script)
    assoc = Association.open(_settings(peer.port))
    with pytest.raises(ProtocolError, match="unexpected command"):
        _store(assoc, make_file(tmp_path / "a.dcm"))
    peer.join()


def _pdv(fragment: bytes, control: int) -> bytes:
    return struct.pack(">LBB", len(fragment) + 2, 1, control) + fragment


def test_a_response_in_several_fragments_and_pdus_is_put_together(tmp_path: Path) -> None:
    response = command_set(
        [
            (0x0002, CT.encode() + b"\0"),
            (0x0100, struct.pack("<H", 0x8001)),
            (0x0120, struct.pack("<H", 1)),
            (0x0800, struct.pack("<H", 0x0101)),
            (0x0900, struct.pack("<H", 0xB000)),
            (0x0902, b"odd "),
        ]
    )
    # Two fragments in the first P-DATA-TF, the last one in a second.
    first = _pdv(response[:10], 0x01) + _pdv(response[10:30], 0x01)
    second = _pdv(response[30:], 0x03)

    def script(conn: socket.socket) -> None:
        _type, rq = read_pdu(conn)
        conn.sendall(accept_all(rq))
        read_pdu(conn)
        read_pdu(conn)
        for pdu in (first, second):
            conn.sendall(struct.pack(">BxL", 0x04, len(pdu)) + pdu)
        read_pdu(conn)

    peer = RawPeer(script)
    assoc = Association.open(_settings(peer.port))
    assert _store(assoc, make_file(tmp_path / "a.dcm")) == 0xB000
    assoc.abort()
    peer.join()


def test_release_answers_and_closes(scp: StorageScp) -> None:
    assoc = Association.open(_settings(scp.port))
    assert [c.transfer_syntax for c in assoc.accepted] == [EXPLICIT_LE, "1.2.840.10008.1.2.2"]
    assoc.release()
    assert not assoc.is_open
    assert scp.wait_for_associations(1)[0].ended == "released"


def test_abort_is_seen_by_the_peer(scp: StorageScp) -> None:
    assoc = Association.open(_settings(scp.port))
    assoc.abort()
    assert scp.wait_for_associations(1)[0].ended in ("aborted", "closed")


def _answering_peer(
    response: Callable[[Message], bytes], after: list[int]
) -> Callable[[socket.socket], None]:
    """A peer script that answers the first C-STORE with ``response(message)`` and
    records the type of the PDU that follows in ``after``."""

    def script(conn: socket.socket) -> None:
        _type, rq = read_pdu(conn)
        conn.sendall(accept_all(rq))
        _type, _pdu, message = receive_message(conn)
        conn.sendall(response(message))
        after.append(read_pdu(conn)[0])
        if after[-1] == 0x05:
            conn.sendall(RELEASE_RP)

    return script


@pytest.mark.parametrize(
    ("answer_class", "answer_instance", "words"),
    [
        (CT, "1.2.3.4.5.6.7.8.9", "names instance 1.2.3.4.5.6.7.8.9, not {instance}"),
        ("1.2.840.10008.5.1.4.1.1.4", "", "names SOP class 1.2.840.10008.5.1.4.1.1.4, not {cls}"),
    ],
    ids=["instance", "class"],
)
def test_a_response_naming_another_instance_or_class_is_no_confirmation(
    tmp_path: Path, answer_class: str, answer_instance: str, words: str
) -> None:
    after: list[int] = []
    peer = RawPeer(
        _answering_peer(
            lambda m: store_response(m.field("MessageID"), answer_class, answer_instance), after
        )
    )
    path = make_file(tmp_path / "a.dcm")
    info = read_info(str(path))
    assoc = Association.open(_settings(peer.port))
    with pytest.raises(ProtocolError) as caught:
        _store(assoc, path)
    peer.join()
    expected = "the peer's response " + words.format(instance=info.sop_instance_uid, cls=CT)
    assert str(caught.value) == expected
    assert not assoc.is_open
    assert after == [0x07]  # aborted


@pytest.mark.parametrize(
    "uid_value",
    [None, "{instance}", "{instance}\0", "{instance} "],
    ids=["absent", "same", "NUL-padded", "space-padded"],
)
def test_a_response_naming_this_instance_or_none_confirms_it(
    tmp_path: Path, uid_value: str | None
) -> None:
    def response(message: Message) -> bytes:
        elements = [
            (0x0002, CT.encode() + b"\0"),
            (0x0100, struct.pack("<H", 0x8001)),
            (0x0120, struct.pack("<H", message.field("MessageID"))),
            (0x0800, struct.pack("<H", 0x0101)),
            (0x0900, struct.pack("<H", 0x0000)),
        ]
        if uid_value is not None:
            value = uid_value.format(instance=message.field("AffectedSOPInstanceUID")).encode()
            elements.append((0x1000, value + (b" " if len(value) % 2 else b"")))
        pdv = _pdv(command_set(elements), 0x03)
        return struct.pack(">BxL", 0x04, len(pdv)) + pdv

    after: list[int] = []
    peer = RawPeer(_answering_peer(response, after))
    assoc = Association.open(_settings(peer.port))
    assert _store(assoc, make_file(tmp_path / "a.dcm")) == 0
    assoc.release()
    peer.join()
    assert after == [0x05]  # released


def test_a_rotated_identity_token_goes_out_from_the_next_association(tmp_path: Path) -> None:
    from pynetdicom.pdu import A_ASSOCIATE_RQ
    from pynetdicom.pdu_primitives import UserIdentityNegotiation

    from dispatch.settings import IdentityKind, UserIdentity

    def token_sent() -> tuple[RawPeer, list[bytes]]:
        tokens: list[bytes] = []

        def script(conn: socket.socket) -> None:
            _type, rq = read_pdu(conn)
            decoded = A_ASSOCIATE_RQ()
            decoded.decode(rq)
            for item in decoded.to_primitive().user_information:
                if isinstance(item, UserIdentityNegotiation) and item.primary_field:
                    tokens.append(item.primary_field)
            conn.sendall(accept_all(rq))
            if read_pdu(conn)[0] == 0x05:
                conn.sendall(RELEASE_RP)

        return RawPeer(script), tokens

    jwt = tmp_path / "token.jwt"
    jwt.write_bytes(b"first.token.value")
    seen: list[bytes] = []
    for new_token in (b"second.token.value, longer", b"third.token.same"):
        peer, tokens = token_sent()
        identity = UserIdentity(IdentityKind.JWT, str(jwt))
        Association.open(_settings(peer.port, identity=identity)).release()
        peer.join()
        seen += tokens
        jwt.write_bytes(new_token)  # rotated on disk between two associations
    assert seen == [b"first.token.value", b"second.token.value, longer"]
