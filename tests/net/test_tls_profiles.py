"""DCMTK's TLS security profiles on the wire: for each profile (and added suites) the
ClientHello of ``dispatch send`` offers what storescu's offers: the same cipher suites in
the same order and the same TLS versions."""

from __future__ import annotations

import socket
import ssl
import struct
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from dispatch.errors import UsageError
from dispatch.net.tls import client_context, supported_suites
from dispatch.settings import PeerVerification, TlsProfile, TlsSettings
from tests.net.send_cli import run_send
from tests.support.dicom_files import make_file
from tests.support.programs import require_program


@dataclass(frozen=True)
class Hello:
    suites: tuple[str, ...]
    """Cipher suite code points, hex, in the order offered."""
    versions: str | None
    """The supported_versions extension's list, hex (None: absent, TLS 1.2 at most)."""


def parse_hello(record: bytes) -> Hello:
    """The suites and versions of a ClientHello (one TLS record, header included)."""
    body = record[5:]
    assert body[0] == 1, "not a ClientHello"
    pos = 4 + 2 + 32
    pos += 1 + body[pos]  # session id
    (length,) = struct.unpack_from(">H", body, pos)
    suites = tuple(body[pos + 2 + i : pos + 4 + i].hex() for i in range(0, length, 2))
    pos += 2 + length
    pos += 1 + body[pos]  # compression methods
    (ext_length,) = struct.unpack_from(">H", body, pos)
    pos += 2
    end, versions = pos + ext_length, None
    while pos < end:
        ext_type, size = struct.unpack_from(">HH", body, pos)
        if ext_type == 43:
            versions = body[pos + 5 : pos + 4 + size].hex()
        pos += 4 + size
    return Hello(suites, versions)


class HelloCatcher:
    """Listens on 127.0.0.1, reads the first ClientHello, then closes the connection."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self.record = b""
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn, _ = self._server.accept()
        with conn:
            conn.settimeout(10)
            while len(self.record) < 5 or len(self.record) < 5 + int.from_bytes(
                self.record[3:5], "big"
            ):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                self.record += chunk

    def hello(self) -> Hello:
        self._thread.join(10)
        self._server.close()
        return parse_hello(self.record)


CASES = {
    "default": [],
    "+py": ["+py"],
    "+px": ["+px"],
    "+pz": ["+pz"],
    "+pa": ["+pa"],
    "+pn": ["+pn"],
    "+cs twice": [
        "+cs",
        "TLS_RSA_WITH_AES_256_GCM_SHA384",
        "+cs",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    ],
    "+pn +cs": ["+pn", "+cs", "TLS_RSA_WITH_AES_256_GCM_SHA384"],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_client_hello_is_storescus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    storescu = require_program("storescu")
    path = make_file(tmp_path / "a.dcm")
    args = ["+tla", "-ic", *CASES[case]]

    theirs = HelloCatcher()
    subprocess.run(
        [str(storescu), *args, "127.0.0.1", str(theirs.port), str(path)],
        capture_output=True,
        timeout=30,
    )
    ours = HelloCatcher()
    run = run_send(monkeypatch, *args, "127.0.0.1", ours.port, path)

    assert run.code == 1  # the catcher closes after the hello
    assert ours.hello() == theirs.hello()


def test_profiles_as_dcmtk_defines_them() -> None:
    """TLS 1.2 suites (OpenSSL names) and versions of each profile, as the wire test
    above found them in storescu's ClientHello."""
    expected = {
        TlsProfile.BCP195_ND: (
            ["ECDHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES128-GCM-SHA256",
             "ECDHE-RSA-AES256-GCM-SHA384", "DHE-RSA-AES256-GCM-SHA384"],
            True,
        ),
        TlsProfile.BCP195: (
            ["ECDHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES128-GCM-SHA256",
             "ECDHE-RSA-AES256-GCM-SHA384", "DHE-RSA-AES256-GCM-SHA384", "AES128-SHA"],
            True,
        ),
        TlsProfile.BCP195_EX: (
            ["ECDHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES128-GCM-SHA256",
             "ECDHE-RSA-AES256-GCM-SHA384", "DHE-RSA-AES256-GCM-SHA384",
             "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-GCM-SHA256"],
            False,
        ),
        TlsProfile.AES: (["AES128-SHA"], False),
        TlsProfile.NULL: (["NULL-SHA"], False),
    }  # fmt: skip
    for profile, (suites, tls13) in expected.items():
        ctx = client_context(TlsSettings(profile=profile, verification=PeerVerification.IGNORE))
        names = [c["name"] for c in ctx.get_ciphers()]
        assert [n for n in names if not n.startswith("TLS_")] == suites, profile
        assert (ctx.maximum_version is not ssl.TLSVersion.TLSv1_2) is tls13, profile


@pytest.mark.parametrize(
    ("profile", "suite", "message"),
    [
        (TlsProfile.BCP195_ND, "TLS_RSA_WITH_NULL_SHA",
         "Unencrypted ciphersuite 'TLS_RSA_WITH_NULL_SHA' not permitted with security"
         " profile 'Non-downgrading BCP 195 TLS Profile'"),
        (TlsProfile.AES, "TLS_RSA_WITH_NULL_SHA",
         "Unencrypted ciphersuite 'TLS_RSA_WITH_NULL_SHA' not permitted with security"
         " profile 'AES TLS Secure Transport Connection Profile'"),
        (TlsProfile.BCP195_EX, "TLS_RSA_WITH_AES_128_CBC_SHA",
         "Additional ciphersuites not permitted with security profile"
         " 'Extended BCP 195 TLS Profile'"),
        (TlsProfile.BCP195_ND, "TLS_ECDH_RSA_WITH_AES_128_CBC_SHA",
         "Ciphersuite 'TLS_ECDH_RSA_WITH_AES_128_CBC_SHA' not supported by the OpenSSL"
         " library in use"),
    ],
)  # fmt: skip
def test_suites_a_profile_does_not_allow_are_refused_in_dcmtks_words(
    profile: TlsProfile, suite: str, message: str
) -> None:
    with pytest.raises(UsageError) as caught:
        client_context(TlsSettings(profile=profile, ciphers=(suite,)))
    assert str(caught.value) == message


def test_the_null_suite_may_be_added_to_the_null_profile_only() -> None:
    settings = TlsSettings(profile=TlsProfile.NULL, ciphers=("TLS_RSA_WITH_NULL_SHA",))
    assert "NULL-SHA" in [c["name"] for c in client_context(settings).get_ciphers()]


def test_the_listed_suites_are_storescus() -> None:
    storescu = require_program("storescu")
    listing = subprocess.run(
        [str(storescu), "+cc"], capture_output=True, text=True, timeout=30
    ).stdout
    theirs = listing.split("Supported TLS ciphersuites are:\n", 1)[1].split()
    assert supported_suites() == theirs
