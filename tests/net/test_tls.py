"""TLS and user identity in the association engine, against real peers: DCMTK's
storescp with ``+tls`` and a pynetdicom SCP with an ``ssl`` context. Certificates are
made by the tests (:mod:`tests.support.certs`)."""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from pynetdicom import AE, evt
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]

from dispatch.errors import (
    ConnectionLost,
    IdentityNotConfirmed,
    NetworkTimeout,
    TlsError,
    UsageError,
)
from dispatch.net import Association
from dispatch.net.association import DataSource
from dispatch.net.tls import client_context
from dispatch.settings import (
    AssociationSettings,
    CrlCheck,
    IdentityKind,
    PeerVerification,
    PresentationContext,
    Timeouts,
    TlsSettings,
    UserIdentity,
)
from tests.net.exchange import store
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
            response = store(
                assoc, context, info.sop_class_uid, info.sop_instance_uid,
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


def _says_refused(error: BaseException, tls_words: str) -> None:
    """What a refused handshake says: the TLS reason when the alert arrived in time, else
    (TLS 1.3 sends the client's certificate after the server's Finished, so the refusal
    can come as the connection ending) that the peer ended the connection."""
    if isinstance(error, TlsError):
        assert tls_words.lower() in str(error).lower(), str(error)
    else:
        assert re.search(r"connection (closed|reset) by peer", str(error)), str(error)


def test_anonymous_tls_against_a_peer_requiring_a_certificate_says_so(
    storescp: Callable[..., Any], tls_certs: TlsCerts, ct_file: Path
) -> None:
    peer = tls_storescp(storescp, tls_certs)
    anonymous = TlsSettings(ca_files=(str(tls_certs.ca),))
    with pytest.raises((TlsError, ConnectionLost)) as caught:
        send_one(settings(peer.port, anonymous), ct_file)
    _says_refused(caught.value, "client certificate")


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
    _says_refused(caught.value, "expired")


def test_a_certificate_from_another_ca_is_refused_by_the_peer(
    storescp: Callable[..., Any], tls_certs: TlsCerts, ct_file: Path
) -> None:
    peer = tls_storescp(storescp, tls_certs)
    stranger = TlsSettings(str(tls_certs.stranger.key), str(tls_certs.stranger.cert),
                           ca_files=(str(tls_certs.ca),))  # fmt: skip
    with pytest.raises((TlsError, ConnectionLost)) as caught:
        send_one(settings(peer.port, stranger), ct_file)
    _says_refused(caught.value, "certificate")
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
    with pytest.raises((TlsError, ConnectionLost)) as caught:
        send_one(settings(peer.port, mutual(tls_certs)), ct_file)
    _says_refused(caught.value, "")


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


def test_a_missing_ca_file_is_only_a_warning_as_in_storescu(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = str(tmp_path / "none.pem")
    with caplog.at_level("WARNING", logger="dispatch.tls"):
        ctx = client_context(TlsSettings(ca_files=(missing,)))
    assert ctx.cert_store_stats()["x509_ca"] == 0
    assert caplog.messages == [f"unable to load certificate file '{missing}', ignoring"]


def test_default_profile_is_tls_1_2_or_newer_with_forward_secret_aes_gcm(
    tls_certs: TlsCerts,
) -> None:
    # DCMTK's default (non-downgrading BCP 195): ECDHE-RSA and DHE-RSA with AES-GCM.
    ctx = client_context(mutual(tls_certs))
    assert ctx.minimum_version is ssl.TLSVersion.TLSv1_2
    tls12 = [c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12
    assert all(name.startswith(("ECDHE-RSA-", "DHE-RSA-")) and "GCM" in name for name in tls12)


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
        server = ae.start_server(("127.0.0.1", 0), block=False, ssl_context=ctx,
                                 evt_handlers=handlers)  # fmt: skip
        assert server is not None
        self.server = server
        self.port = int(server.server_address[1])

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


@pytest.mark.parametrize("kind", ["file", "memory", "stream"])
def test_a_large_data_set_in_small_pdus_arrives_intact_over_tls(
    storescp: Callable[..., Any], tls_certs: TlsCerts, tmp_path: Path, kind: str
) -> None:
    from dispatch.dicomfile import read_info

    peer = tls_storescp(storescp, tls_certs, "-pdu", "4096", "+B")
    path = make_file(tmp_path / "big.dcm", size=300_000)
    info = read_info(str(path))
    data_set = path.read_bytes()[info.dataset_offset :]
    assoc = Association.open(settings(peer.port, mutual(tls_certs)))
    try:
        with open(path, "rb") as handle:
            if kind == "file":
                source = DataSource.file_range(
                    str(path), handle, info.dataset_offset, info.dataset_length
                )
            elif kind == "memory":
                source = DataSource.memory(str(path), data_set)
            else:
                pieces = [data_set[i : i + 5000] for i in range(0, len(data_set), 5000)]
                source = DataSource.stream(str(path), pieces)
            context = assoc.contexts_for(CT)[0]
            status = store(assoc, context, info.sop_class_uid, info.sop_instance_uid, source)
    finally:
        assoc.release()
    assert status.status == 0
    (stored,) = peer.files()
    assert stored.read_bytes()[read_info(str(stored)).dataset_offset :] == data_set


# -- certificate revocation lists (+crl, +crv, +cra) ---------------------------------


def openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


def make_crl(directory: Path, ca_cert: Path, revoked: tuple[Path, ...] = ()) -> Path:
    """A CRL signed by the CA of ``ca_cert`` (its key beside it, ``.key``) that revokes
    the certificates ``revoked``; made with ``openssl ca`` in a scratch directory."""
    directory.mkdir(parents=True, exist_ok=True)
    config, index = directory / "ca.cnf", directory / "index.txt"
    config.write_text("[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\n"
                      "default_md = sha256\ndefault_crl_days = 30\n")  # fmt: skip
    index.write_text("")
    base = ("-config", config, "-keyfile", ca_cert.with_suffix(".key"), "-cert", ca_cert)
    for cert in revoked:
        subprocess.run(["openssl", "ca", *map(str, base), "-revoke", str(cert)],
                       check=True, capture_output=True, cwd=directory)  # fmt: skip
    crl = directory / "crl.pem"
    subprocess.run(["openssl", "ca", *map(str, base), "-gencrl", "-out", str(crl)],
                   check=True, capture_output=True, cwd=directory)  # fmt: skip
    return crl


@dataclass(frozen=True)
class Chain:
    """root CA (``TlsCerts.ca``) -> intermediate CA -> server certificate."""

    intermediate: Path
    server_key: Path
    server_chain: Path
    """The server certificate followed by the intermediate's."""
    server_cert: Path


@pytest.fixture(scope="module")
def chain(tls_certs: TlsCerts, tmp_path_factory: pytest.TempPathFactory) -> Chain:
    d = tmp_path_factory.mktemp("chain")
    ca_ext, leaf_ext = d / "ca.ext", d / "leaf.ext"
    ca_ext.write_text("basicConstraints=critical,CA:TRUE\n")
    leaf_ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name, issuer, ext in (("inter", tls_certs.ca, ca_ext), ("leaf", d / "inter.pem", leaf_ext)):
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", d / f"{name}.key", "-out", d / f"{name}.csr",
                "-subj", f"/CN={name}")  # fmt: skip
        openssl("x509", "-req", "-in", d / f"{name}.csr", "-CA", issuer,
                "-CAkey", issuer.with_suffix(".key"), "-CAcreateserial",
                "-out", d / f"{name}.pem", "-days", "30", "-extfile", ext)  # fmt: skip
    both = d / "leaf-chain.pem"
    both.write_bytes((d / "leaf.pem").read_bytes() + (d / "inter.pem").read_bytes())
    return Chain(d / "inter.pem", d / "leaf.key", both, d / "leaf.pem")


def test_a_revoked_server_certificate_is_refused_in_plain_words(
    storescp: Callable[..., Any], tls_certs: TlsCerts, ct_file: Path, tmp_path: Path
) -> None:
    peer = tls_storescp(storescp, tls_certs)
    crl = make_crl(tmp_path / "crl", tls_certs.ca, revoked=(tls_certs.server.cert,))
    for check in (CrlCheck.NONE, CrlCheck.LEAF):  # +crl alone implies +crv
        checking = mutual(tls_certs, crl_files=(str(crl),), crl_check=check)
        with pytest.raises(TlsError, match=r"certificate has been revoked \[OpenSSL: "):
            send_one(settings(peer.port, checking), ct_file)
    assert peer.files() == []


def test_a_crl_that_revokes_nothing_lets_the_store_through(
    storescp: Callable[..., Any], tls_certs: TlsCerts, ct_file: Path, tmp_path: Path
) -> None:
    peer = tls_storescp(storescp, tls_certs)
    crl = make_crl(tmp_path / "crl", tls_certs.ca)
    for check in (CrlCheck.LEAF, CrlCheck.CHAIN):  # one level: the root's CRL is all there is
        checking = mutual(tls_certs, crl_files=(str(crl),), crl_check=check)
        assert send_one(settings(peer.port, checking), ct_file) == 0
    assert len(peer.files()) == 1  # the same file twice


def test_leaf_crl_check_without_a_crl_cannot_check(
    storescp: Callable[..., Any], tls_certs: TlsCerts, ct_file: Path
) -> None:
    peer = tls_storescp(storescp, tls_certs)
    with pytest.raises(TlsError, match="no certificate revocation list for its issuer"):
        send_one(settings(peer.port, mutual(tls_certs, crl_check=CrlCheck.LEAF)), ct_file)


def test_chain_crl_check_needs_a_crl_from_every_ca_of_the_chain(
    storescp: Callable[..., Any], tls_certs: TlsCerts, chain: Chain, ct_file: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    peer = storescp("+tls", str(chain.server_key), str(chain.server_chain), "+cf",
                    str(tls_certs.ca))  # fmt: skip
    inter_crl = str(make_crl(tmp_path / "inter", chain.intermediate))
    root_crl = str(make_crl(tmp_path / "root", tls_certs.ca))

    def attempt(check: CrlCheck, *crls: str) -> int:
        checking = mutual(tls_certs, crl_files=crls, crl_check=check)
        return send_one(settings(peer.port, checking), ct_file)

    # +crv checks the server's own certificate: its issuer's CRL is enough.
    assert attempt(CrlCheck.LEAF, inter_crl) == 0
    # +cra also checks the intermediate, whose issuer (the root) has no CRL here.
    with pytest.raises(TlsError, match="no certificate revocation list for its issuer"):
        attempt(CrlCheck.CHAIN, inter_crl)
    assert attempt(CrlCheck.CHAIN, inter_crl, root_crl) == 0
    # The root revoking the intermediate is seen by +cra only.
    revoking = str(make_crl(tmp_path / "root2", tls_certs.ca, revoked=(chain.intermediate,)))
    assert attempt(CrlCheck.LEAF, inter_crl, revoking) == 0
    with pytest.raises(TlsError, match="has been revoked"):
        attempt(CrlCheck.CHAIN, inter_crl, revoking)
    assert len(peer.files()) == 1  # the same file, stored three times


# -- hashed CA directory (+cd) --------------------------------------------------------


def test_hashed_ca_directory_instead_of_a_ca_file(
    storescp: Callable[..., Any], tls_certs: TlsCerts, ct_file: Path, tmp_path: Path
) -> None:
    peer = tls_storescp(storescp, tls_certs)
    hashed, empty = tmp_path / "hashed", tmp_path / "empty"
    hashed.mkdir()
    empty.mkdir()
    shutil.copy(tls_certs.ca, hashed / "ca.pem")
    openssl("rehash", hashed)
    by_dir = replace(mutual(tls_certs), ca_files=(), ca_dirs=(str(hashed),))
    assert send_one(settings(peer.port, by_dir), ct_file) == 0
    with pytest.raises(TlsError, match=r"unknown CA.*\[OpenSSL: "):
        send_one(settings(peer.port, replace(by_dir, ca_dirs=(str(empty),))), ct_file)
    assert len(peer.files()) == 1


def test_a_missing_ca_directory_is_a_usage_error(tls_certs: TlsCerts, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read certificate directory"):
        client_context(replace(mutual(tls_certs), ca_dirs=(str(tmp_path / "none"),)))


# -- cipher suites (+cs) ---------------------------------------------------------------


def test_an_added_suite_is_the_one_negotiated_with_storescp_over_tls_1_2(
    storescp: Callable[..., Any], tls_certs: TlsCerts, ct_file: Path, tmp_path: Path
) -> None:
    # DCMTK's retired AES profile (+pa) takes TLS 1.2 with RSA key exchange only: a suite
    # outside our default profile, so the store gets through only if +cs offered it.
    key, csr, cert = tmp_path / "rsa.key", tmp_path / "rsa.csr", tmp_path / "rsa.pem"
    openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
            "-subj", "/CN=rsa-server")  # fmt: skip
    openssl("x509", "-req", "-in", csr, "-CA", tls_certs.ca, "-CAkey",
            tls_certs.ca.with_suffix(".key"), "-CAcreateserial", "-out", cert,
            "-days", "30")  # fmt: skip
    peer = storescp("+tls", str(key), str(cert), "+cf", str(tls_certs.ca), "+pa", "-d")
    with pytest.raises(TlsError, match="no cipher suite in common"):
        send_one(settings(peer.port, mutual(tls_certs)), ct_file)
    asking = mutual(tls_certs, ciphers=("TLS_RSA_WITH_AES_128_CBC_SHA",))
    assert send_one(settings(peer.port, asking), ct_file) == 0
    log = peer.log()
    assert "Protocol    : TLSv1.2" in log
    assert "Ciphersuite : AES128-SHA," in log  # OpenSSL's name of the suite asked for
    assert len(peer.files()) == 1


class CipherScp:
    """A pynetdicom Storage SCP behind TLS 1.2 with one cipher suite only, recording the
    suite and protocol each connection negotiated."""

    def __init__(self, certs: TlsCerts, openssl_suite: str) -> None:
        self.ciphers: list[tuple[str, str]] = []
        self.datasets: list[str] = []
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certs.server.cert, certs.server.key)
        ctx.load_verify_locations(certs.ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(openssl_suite)
        ae = AE()
        ae.add_supported_context(CTImageStorage, [EXPLICIT_LE, IMPLICIT_LE])
        handlers: list[Any] = [(evt.EVT_C_STORE, self._store), (evt.EVT_CONN_OPEN, self._opened)]
        server = ae.start_server(("127.0.0.1", 0), block=False, ssl_context=ctx,
                                 evt_handlers=handlers)  # fmt: skip
        assert server is not None
        self.server = server
        self.port = int(server.server_address[1])

    def _store(self, event: Any) -> int:
        self.datasets.append(str(event.dataset.PatientID))
        return 0

    def _opened(self, event: Any) -> None:
        name, protocol, _bits = event.assoc.dul.socket.socket.cipher()
        self.ciphers.append((name, protocol))

    def stop(self) -> None:
        self.server.shutdown()


def test_an_added_suite_is_the_one_negotiated_with_a_python_tls_1_2_peer(
    tls_certs: TlsCerts, ct_file: Path
) -> None:
    scp = CipherScp(tls_certs, "ECDHE-ECDSA-CHACHA20-POLY1305")
    try:
        with pytest.raises(TlsError, match="no cipher suite in common"):
            send_one(settings(scp.port, mutual(tls_certs)), ct_file)
        asking = mutual(tls_certs, ciphers=("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",))
        assert send_one(settings(scp.port, asking), ct_file) == 0
    finally:
        scp.stop()
    assert scp.datasets == [MARKER]
    assert scp.ciphers[-1] == ("ECDHE-ECDSA-CHACHA20-POLY1305", "TLSv1.2")


# -- timeouts on a TLS socket -------------------------------------------------------------


class StallingTlsPeer:
    """A TLS server on 127.0.0.1 that completes the handshake, reads the A-ASSOCIATE-RQ,
    then sends ``answer`` (perhaps a piece of a PDU) and nothing more until closed."""

    def __init__(self, certs: TlsCerts, answer: bytes = b"") -> None:
        self.answer = answer
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(certs.server.cert, certs.server.key)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.request_read = threading.Event()
        self.done = threading.Event()
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        try:
            raw, _ = self.listener.accept()
            conn = self.ctx.wrap_socket(raw, server_side=True)
            self._conns.append(conn)
            if conn.recv(65536):
                self.request_read.set()
            if self.answer:
                conn.sendall(self.answer)
            self.done.wait()
        except OSError:
            pass

    def close(self) -> None:
        self.done.set()
        for s in (*self._conns, self.listener):
            with contextlib.suppress(OSError):
                s.close()


@pytest.mark.parametrize(
    ("answer", "timeouts", "message"),
    [
        # Half a PDU header, then silence: the socket timeout (-ts) ends the read.
        (b"\x02\x00\x00", Timeouts(5.0, 1.0, 10.0, 10.0), "timed out"),
        # No answer at all: the ACSE timeout (-ta) ends the wait.
        (b"", Timeouts(5.0, 10.0, 1.0, 10.0), "no reply within 1 s"),
    ],
)
def test_a_stalling_tls_peer_is_a_network_timeout(
    tls_certs: TlsCerts, ct_file: Path, answer: bytes, timeouts: Timeouts, message: str
) -> None:
    peer = StallingTlsPeer(tls_certs, answer)
    config = replace(settings(peer.port, TlsSettings(ca_files=(str(tls_certs.ca),))),
                     timeouts=timeouts)  # fmt: skip
    started = time.monotonic()
    try:
        with pytest.raises(NetworkTimeout, match=message):
            Association.open(config)
    finally:
        peer.close()
    assert peer.request_read.is_set()
    assert time.monotonic() - started < 5.0
