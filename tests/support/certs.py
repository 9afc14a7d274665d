"""Certificates made by the tests with the ``openssl`` command: a CA, a server
certificate for 127.0.0.1 and localhost, a client certificate, an expired client
certificate, an encrypted client key, and a second CA with its own client certificate.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.programs import require_program

KEY_PASSWORD = "correct horse"


@dataclass(frozen=True)
class Pair:
    key: Path
    cert: Path


@dataclass(frozen=True)
class TlsCerts:
    ca: Path
    server: Pair
    client: Pair
    expired: Pair
    encrypted: Pair
    """The client certificate with its key encrypted under :data:`KEY_PASSWORD`."""
    other_ca: Path
    stranger: Pair
    """A client certificate issued by ``other_ca``."""


def _openssl(*args: str | Path) -> None:
    subprocess.run(
        [str(require_program("openssl")), *map(str, args)],
        check=True,
        capture_output=True,
    )


def _ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key, "-out", cert, "-days", "30", "-subj", f"/CN={name}")  # fmt: skip
    return key, cert


def _issue(directory: Path, name: str, ca: tuple[Path, Path], days: int = 30) -> Pair:
    key, csr, cert = (directory / f"{name}{ext}" for ext in (".key", ".csr", ".pem"))
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key, "-out", csr, "-subj", f"/CN={name}")  # fmt: skip
    # A negative number of days gives a certificate whose end lies in the past.
    _openssl("x509", "-req", "-in", csr, "-CA", ca[1], "-CAkey", ca[0], "-CAcreateserial",
             "-out", cert, "-days", str(days), "-extfile", ext)  # fmt: skip
    return Pair(key, cert)


def make_certs(directory: Path) -> TlsCerts:
    """Make every certificate in ``directory`` (a few hundred milliseconds)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _ca(directory, "ca")
    other = _ca(directory, "other-ca")
    client = _issue(directory, "client", ca)
    encrypted_key = directory / "client-encrypted.key"
    _openssl("pkey", "-in", client.key, "-aes256", "-passout", f"pass:{KEY_PASSWORD}",
             "-out", encrypted_key)  # fmt: skip
    return TlsCerts(
        ca=ca[1],
        server=_issue(directory, "server", ca),
        client=client,
        expired=_issue(directory, "expired", ca, days=-1),
        encrypted=Pair(encrypted_key, client.cert),
        other_ca=other[1],
        stranger=_issue(directory, "stranger", other),
    )
