"""TLS and user identity in the association engine, against real peers: DCMTK's
storescp with ``+tls`` and a pynetdicom SCP with an ``ssl`` context. Certificates are
made by the tests (:mod:`tests.support.certs`)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pynetdicom import AE, evt
from pynetdicom.sop_class import CTImageStorage

from dispatch.errors import ConnectionLost, IdentityNotConfirmed, TlsError, UsageError
from dispatch.net import Association
from dispatch.net.association import DataSource
from dispatch.net.tls import client_context
from dispatch.settings import (
    AssociationSettings,
    IdentityKind,
    PeerVerification,
    PresentationContext,
    Timeouts,
    TlsSettings,
    UserIdentity,
)
from tests.support.certs import KEY_PASSWORD, TlsCerts, make_certs
from tests.support.dicom_files import make_file

CT = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
MARKER = "TLSLEAKCHECKMARKER"


@pytest.fixture(scope="module")
def tls_certs(tmp_path_factory: pytest.TempPathFactory) -> TlsCerts:
    return make_certs(tmp_path_factory.mktemp("certs"))


def settings(port: int, tls: TlsSettings | None, **more: Any) -> AssociationSettings:
    contexts = (PresentationContext(1, CT, (EXPLICIT_LE, IMPLICIT_LE)),)
    return AssociationSettings(
        "127.0.0.1", port, contexts, timeouts=Timeouts(5.0, 10.0, 10.0, 10.0), tls=tls, **more
    )


def mutual(certs: TlsCerts, **more: Any) -> TlsSettings:
    return TlsSettings(str(certs.client.key), str(certs.client.cert),
                       ca_files=(str(certs.ca),), **more)  # fmt: skip


def send_one(config: AssociationSettings, path: Path) -> int:
    """Open, store ``path`` (its whole bytes after the preamble as a data set), release."""
    from dispatch.dicomfile import read_info

    info = read_info(str(path))
    assoc = Association.open(config)
    try:
        with open(path, "rb") as handle:
            context = assoc.contexts_for(CT)[0]
            response = assoc.store(
                context, info.sop_class_uid, info.sop_instance_uid,
                DataSource.file_range(str(path), handle, info.dataset_offset,
                                      info.dataset_length),
            )  # fmt: skip
    finally:
        assoc.release()
    return response.status


@pytest.fixture
def ct_file(tmp_path: Path) -> Path:
    path = tmp_path / "ct.dcm"
    make_file(path, patient_id=MARKER, size=64)
    return path


# -- DCMTK storescp -----------------------------------------------------------------


def tls_storescp(storescp: Callable[..., Any], certs: TlsCerts, *more: str) -> Any:
    return storescp("+tls", str(certs.server.key), str(certs.server.cert),
                    "+cf", str(certs.ca), *more)  # fmt: skip


def test_mutual_authentication_with_storescp(
    storescp: Callable[..., Any], tls_certs: TlsCerts, ct_file: Path
) -> None:
    peer = tls_storescp(storescp, tls_certs)
    assert send_one(settings(peer.port, mutual(tls_certs)), ct_file) == 0
    assert len(peer.files()) == 1


@pytest.mark.parametrize("mode", ["-vc", "-ic"])
def test_anonymous_tls_with_storescp_that_does_not_require_a_certificate(
    storescp: Callable[..., Any], tls_certs: TlsCerts, ct_file: Path, mode: str
) -> None:
    peer = tls_storescp(storescp, tls_certs, mode)
    anonymous = TlsSettings(ca_files=(str(tls_certs.ca),))
    assert send_one(settings(peer.port, anonymous), ct_file) == 0


def test_anonymous_tls_against_a_peer_requiring_a_certificate_says_so(
    storescp: Callable[..., Any], tls_certs: TlsCerts, ct_file: Path
) -> None:
    peer = tls_storescp(storescp, tls_certs)
    anonymous = TlsSettings(ca_files=(str(tls_certs.ca),))
    with pytest.raises((TlsError, ConnectionLost)) as caught:
        send_one(settings(peer.port, anonymous), ct_file)
    if isinstance(caught.value, TlsError):
        assert "client certificate" in str(caught.value)


def test_server_from_an_unknown_ca_is_refused_in_plain_words(
    storescp: Callable[..., Any], tls_certs: TlsCerts, ct_file: Path
) -> None:
    peer = tls_storescp(storescp, tls_certs)
    wrong_ca = replace(mutual(tls_certs), ca_files=(str(tls_certs.other_ca),))
    with pytest.raises(TlsError, match=r"unknown CA.*\[OpenSSL: "):
        send_one(settings(peer.port, wrong_ca), ct_file)


def test_ignore_peer_cert_accepts_a_server_from_an_unknown_ca(
    storescp: Callable[..., Any], tls_certs: TlsCerts, ct_file: Path
) -> None:
    peer = tls_storescp(storescp, tls_certs)
    ignoring = replace(mutual(tls_certs), ca_files=(), verification=PeerVerification.IGNORE)
    assert send_one(settings(peer.port, ignoring), ct_file) == 0


def test_our_expired_certificate_is_reported_as_expired(
    storescp: Callable[..., Any], tls_certs: TlsCerts, ct_file: Path
) -> None:
    peer = tls_storescp(storescp, tls_certs)
    expired = TlsSettings(str(tls_certs.expired.key), str(tls_certs.expired.cert),
                          ca_files=(str(tls_certs.ca),))  # fmt: skip
    with pytest.raises((TlsError, ConnectionLost)) as caught:
        send_one(settings(peer.port, expired), ct_file)
    if isinstance(caught.value, TlsError):
        assert "expired" in str(caught.value)


def test_a_certificate_from_another_ca_is_refused_by_the_peer(
    storescp: Callable[..., Any], tls_certs: TlsCerts, ct_file: Path
) -> None:
    peer = tls_storescp(storescp, tls_certs)
    stranger = TlsSettings(str(tls_certs.stranger.key), str(tls_certs.stranger.cert),
                           ca_files=(str(tls_certs.ca),))  # fmt: skip
    with pytest.raises((TlsError, ConnectionLost)):
        send_one(settings(peer.port, stranger), ct_file)
    assert peer.files() == []


def test_wrong_host_is_reported_when_host_names_are_checked(
    storescp: Callable[..., Any], tls_certs: TlsCerts, ct_file: Path
) -> None:
    peer = tls_storescp(storescp, tls_certs)
    checking = mutual(tls_certs, check_hostname=True, server_name="archive.example")
    with pytest.raises(TlsError, match="wrong host"):
        send_one(settings(peer.port, checking), ct_file)
    # The same name is fine while host names are not checked (DCMTK's default).
    assert send_one(settings(peer.port, replace(checking, check_hostname=False)), ct_file) == 0


def test_a_plain_tcp_peer_is_a_tls_error(
    storescp: Callable[..., Any], tls_certs: TlsCerts, ct_file: Path
) -> None:
    peer = storescp()
    with pytest.raises((TlsError, ConnectionLost)):
        send_one(settings(peer.port, mutual(tls_certs)), ct_file)


# -- key files ----------------------------------------------------------------------


def test_encrypted_key_with_the_password_loads(tls_certs: TlsCerts) -> None:
    good = TlsSettings(str(tls_certs.encrypted.key), str(tls_certs.encrypted.cert),
                       key_password=KEY_PASSWORD, prompt_password=False)  # fmt: skip
    assert isinstance(client_context(good), ssl.SSLContext)


def test_encrypted_key_with_a_wrong_or_missing_password_is_a_usage_error(
    tls_certs: TlsCerts,
) -> None:
    key, cert = str(tls_certs.encrypted.key), str(tls_certs.encrypted.cert)
    with pytest.raises(UsageError, match="wrong password"):
        client_context(TlsSettings(key, cert, key_password="nope", prompt_password=False))
    with pytest.raises(UsageError, match="encrypted and no password"):
        client_context(TlsSettings(key, cert, prompt_password=False))


def test_der_key_and_certificates_load(tls_certs: TlsCerts, tmp_path: Path) -> None:
    def der(kind: str, source: Path, target: Path) -> str:
        subprocess.run(["openssl", kind, "-in", str(source), "-outform", "DER",
                        "-out", str(target)], check=True, capture_output=True)  # fmt: skip
        return str(target)

    der_settings = TlsSettings(
        der("pkey", tls_certs.client.key, tmp_path / "k.der"),
        der("x509", tls_certs.client.cert, tmp_path / "c.der"),
        der=True,
        ca_files=(der("x509", tls_certs.ca, tmp_path / "ca.der"),),
    )
    assert isinstance(client_context(der_settings), ssl.SSLContext)


def test_unknown_cipher_suite_is_a_usage_error(tls_certs: TlsCerts) -> None:
    with pytest.raises(UsageError, match="unknown cipher suite TLS_NOPE"):
        client_context(mutual(tls_certs, ciphers=("TLS_NOPE",)))


def test_missing_files_are_usage_errors(tls_certs: TlsCerts, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read private key"):
        client_context(TlsSettings(str(tmp_path / "none.key"), str(tls_certs.client.cert)))
    with pytest.raises(UsageError, match="cannot read certificate file"):
        client_context(TlsSettings(ca_files=(str(tmp_path / "none.pem"),)))


def test_default_profile_is_tls_1_2_or_newer_with_ecdhe_aes_gcm(tls_certs: TlsCerts) -> None:
    ctx = client_context(mutual(tls_certs))
    assert ctx.minimum_version is ssl.TLSVersion.TLSv1_2
    tls12 = [c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12
    assert all(name.startswith("ECDHE-") and "GCM" in name for name in tls12)


# -- pynetdicom SCP with an ssl context ----------------------------------------------


class TlsScp:
    """A pynetdicom Storage SCP behind TLS that records stores and user identities."""

    def __init__(self, certs: TlsCerts, answer_identity: bool | None) -> None:
        self.identities: list[tuple[int, bytes, bytes]] = []
        self.datasets: list[str] = []
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certs.server.cert, certs.server.key)
        ctx.load_verify_locations(certs.ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ae = AE()
        ae.add_supported_context(CTImageStorage, [EXPLICIT_LE, IMPLICIT_LE])
        handlers: list[Any] = [(evt.EVT_C_STORE, self._store)]
        if answer_identity is not None:
            handlers.append((evt.EVT_USER_ID, self._identity(answer_identity)))
        self.server = ae.start_server(("127.0.0.1", 0), block=False, ssl_context=ctx,
                                      evt_handlers=handlers)  # fmt: skip
        self.port = int(self.server.server_address[1])

    def _store(self, event: Any) -> int:
        self.datasets.append(str(event.dataset.PatientID))
        return 0

    def _identity(self, respond: bool) -> Callable[..., tuple[bool, bytes | None]]:
        def handler(event: Any, *args: Any) -> tuple[bool, bytes | None]:
            self.identities.append(
                (int(event.user_id_type), bytes(event.primary_field),
                 bytes(event.secondary_field or b""))
            )  # fmt: skip
            return True, (b"welcome" if respond else None)

        return handler

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture
def tls_scp(tls_certs: TlsCerts) -> Iterator[Callable[[bool | None], TlsScp]]:
    started: list[TlsScp] = []

    def start(answer_identity: bool | None = None) -> TlsScp:
        scp = TlsScp(tls_certs, answer_identity)
        started.append(scp)
        return scp

    yield start
    for scp in started:
        scp.stop()


def test_store_to_a_pynetdicom_scp_over_tls(
    tls_scp: Callable[[bool | None], TlsScp], tls_certs: TlsCerts, ct_file: Path
) -> None:
    scp = tls_scp(None)
    assert send_one(settings(scp.port, mutual(tls_certs)), ct_file) == 0
    assert scp.datasets == [MARKER]


def test_user_name_and_passcode_reach_the_peer(
    tls_scp: Callable[[bool | None], TlsScp], tls_certs: TlsCerts, ct_file: Path
) -> None:
    scp = tls_scp(True)
    identity = UserIdentity(IdentityKind.USERNAME_PASSCODE, "alice", "s3cret")
    assert send_one(settings(scp.port, mutual(tls_certs), identity=identity), ct_file) == 0
    assert scp.identities == [(2, b"alice", b"s3cret")]


def test_jwt_is_read_from_its_file(
    tls_scp: Callable[[bool | None], TlsScp], tls_certs: TlsCerts, ct_file: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    token = tmp_path / "token.jwt"
    token.write_bytes(b"eyJhbGciOiJub25lIn0.e30.")
    scp = tls_scp(False)
    identity = UserIdentity(IdentityKind.JWT, str(token))
    assert send_one(settings(scp.port, mutual(tls_certs), identity=identity), ct_file) == 0
    assert scp.identities == [(5, b"eyJhbGciOiJub25lIn0.e30.", b"")]


def test_positive_response_requested_but_not_given_fails_as_dcmtk(
    tls_scp: Callable[[bool | None], TlsScp], tls_certs: TlsCerts, ct_file: Path
) -> None:
    # pynetdicom never answers user name identities, whatever its handler returns.
    scp = tls_scp(True)
    identity = UserIdentity(IdentityKind.USERNAME, "alice", positive_response=True)
    with pytest.raises(IdentityNotConfirmed, match="Positive response requested but none"):
        send_one(settings(scp.port, mutual(tls_certs), identity=identity), ct_file)
    assert scp.datasets == []


def test_identity_passcode_is_not_in_the_settings_repr() -> None:
    identity = UserIdentity(IdentityKind.USERNAME_PASSCODE, "alice", "s3cret")
    tls = TlsSettings("k", "c", key_password="hunter2")
    assert "s3cret" not in repr(identity)
    assert "hunter2" not in repr(tls)


# -- nothing leaves unencrypted ------------------------------------------------------


class RecordingProxy:
    """A TCP proxy on 127.0.0.1 that forwards to ``port`` and records every byte."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.seen = bytearray()
        self._lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                with self._lock:
                    self.seen += chunk
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.close()


@pytest.mark.parametrize("pdu", [16384, 131072])
def test_no_byte_of_the_data_set_crosses_the_wire_unencrypted(
    storescp: Callable[..., Any], tls_certs: TlsCerts, ct_file: Path, pdu: int
) -> None:
    plain_peer = storescp("-pdu", str(pdu))
    tls_peer = tls_storescp(storescp, tls_certs, "-pdu", str(pdu))
    plain_proxy, tls_proxy = RecordingProxy(plain_peer.port), RecordingProxy(tls_peer.port)
    try:
        assert send_one(settings(plain_proxy.port, None), ct_file) == 0
        assert send_one(settings(tls_proxy.port, mutual(tls_certs)), ct_file) == 0
    finally:
        plain_proxy.close()
        tls_proxy.close()
    # The capture works: without TLS the marker is on the wire ...
    assert MARKER.encode() in plain_proxy.seen
    # ... and with TLS neither it nor the UIDs of the request are.
    assert MARKER.encode() not in tls_proxy.seen
    assert CT.encode() not in tls_proxy.seen
    assert len(tls_peer.files()) == 1
