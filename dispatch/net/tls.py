"""TLS for associations: the client :class:`ssl.SSLContext` a :class:`TlsSettings`
asks for, and plain words for TLS failures.

DCMTK 3.6.7's security profiles, with its suites in its order (IANA names; TLS 1.3
suites are OpenSSL's defaults, all AEAD):

- non-downgrading BCP 195 (``+py``, the default): TLS 1.2 or newer; for TLS 1.2
  ECDHE-RSA and DHE-RSA with AES-GCM;
- BCP 195 (``+px``): the same plus TLS_RSA_WITH_AES_128_CBC_SHA, TLS 1.0 or newer;
- extended BCP 195 (``+pz``): TLS 1.2 only, the non-downgrading suites plus
  ECDHE-ECDSA with AES-GCM, and no others (``+cs`` is refused);
- AES (``+pa``, retired): TLS up to 1.2, TLS_RSA_WITH_AES_128_CBC_SHA;
- authenticated unencrypted (``+pn``, retired): TLS up to 1.2, TLS_RSA_WITH_NULL_SHA
  (OpenSSL's security level 0, which an unencrypted suite needs).

TLS_RSA_WITH_3DES_EDE_CBC_SHA is added to ``+px`` and ``+pa`` when OpenSSL here offers
it (OpenSSL 3 does not). ``+cs`` adds suites after the profile's, last option first as
DCMTK does; an unencrypted one only with ``+pn``.
As DCMTK 3.6.7 does, the client offers no ALPN protocol and sends no server name
unless ``--request-sni`` names one; sessions are never resumed (DCMTK turns the
session cache off). Host names are not checked unless ``check_hostname`` is set: DCMTK
never checks them, and DICOM certificates often do not name the host.

Only the CA certificates given (``+cf``, ``+cd``) are trusted, not the system's store,
as in DCMTK.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import logging
import os
import ssl
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from dispatch.errors import (
    ConnectionLost,
    DispatchError,
    NetworkTimeout,
    TlsError,
    UsageError,
)
from dispatch.settings import CrlCheck, PeerVerification, TlsProfile, TlsSettings

log = logging.getLogger("dispatch.tls")

__all__ = [
    "PROFILE_NAMES",
    "client_context",
    "iana_to_openssl",
    "peer_alert",
    "supported_suites",
    "translate_tls",
]

_SUITES: tuple[tuple[str, str], ...] = (
    ("TLS_RSA_WITH_NULL_SHA", "NULL-SHA"),
    ("TLS_RSA_WITH_3DES_EDE_CBC_SHA", "DES-CBC3-SHA"),
    ("TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA"),
    ("TLS_RSA_WITH_CAMELLIA_128_CBC_SHA", "CAMELLIA128-SHA"),
    ("TLS_RSA_WITH_AES_128_CBC_SHA256", "AES128-SHA256"),
    ("TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256"),
    ("TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA", "ECDH-ECDSA-AES128-SHA"),
    ("TLS_ECDH_RSA_WITH_AES_128_CBC_SHA", "ECDH-RSA-AES128-SHA"),
    ("TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256", "ECDH-ECDSA-AES128-SHA256"),
    ("TLS_ECDH_RSA_WITH_AES_128_CBC_SHA256", "ECDH-RSA-AES128-SHA256"),
    ("TLS_ECDH_ECDSA_WITH_AES_128_GCM_SHA256", "ECDH-ECDSA-AES128-GCM-SHA256"),
    ("TLS_ECDH_RSA_WITH_AES_128_GCM_SHA256", "ECDH-RSA-AES128-GCM-SHA256"),
    ("TLS_RSA_WITH_CAMELLIA_256_CBC_SHA", "CAMELLIA256-SHA"),
    ("TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA"),
    ("TLS_RSA_WITH_AES_256_CBC_SHA256", "AES256-SHA256"),
    ("TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384"),
    ("TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA", "ECDH-ECDSA-AES256-SHA"),
    ("TLS_ECDH_RSA_WITH_AES_256_CBC_SHA", "ECDH-RSA-AES256-SHA"),
    ("TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA384", "ECDH-ECDSA-AES256-SHA384"),
    ("TLS_ECDH_RSA_WITH_AES_256_CBC_SHA384", "ECDH-RSA-AES256-SHA384"),
    ("TLS_ECDH_ECDSA_WITH_AES_256_GCM_SHA384", "ECDH-ECDSA-AES256-GCM-SHA384"),
    ("TLS_ECDH_RSA_WITH_AES_256_GCM_SHA384", "ECDH-RSA-AES256-GCM-SHA384"),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA"),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA"),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "ECDHE-ECDSA-AES128-SHA256"),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "ECDHE-RSA-AES128-SHA256"),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"),
    ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"),
    ("TLS_DHE_DSS_WITH_AES_128_CBC_SHA", "DHE-DSS-AES128-SHA"),
    ("TLS_DHE_DSS_WITH_CAMELLIA_128_CBC_SHA", "DHE-DSS-CAMELLIA128-SHA"),
    ("TLS_DHE_RSA_WITH_AES_128_CBC_SHA", "DHE-RSA-AES128-SHA"),
    ("TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA", "DHE-RSA-CAMELLIA128-SHA"),
    ("TLS_DHE_DSS_WITH_AES_128_CBC_SHA256", "DHE-DSS-AES128-SHA256"),
    ("TLS_DHE_RSA_WITH_AES_128_CBC_SHA256", "DHE-RSA-AES128-SHA256"),
    ("TLS_DHE_DSS_WITH_AES_128_GCM_SHA256", "DHE-DSS-AES128-GCM-SHA256"),
    ("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", "DHE-RSA-AES128-GCM-SHA256"),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA"),
    ("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA"),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", "ECDHE-ECDSA-AES256-SHA384"),
    ("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", "ECDHE-RSA-AES256-SHA384"),
    ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"),
    ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"),
    ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"),
    ("TLS_DHE_DSS_WITH_AES_256_CBC_SHA", "DHE-DSS-AES256-SHA"),
    ("TLS_DHE_RSA_WITH_AES_256_CBC_SHA", "DHE-RSA-AES256-SHA"),
    ("TLS_DHE_DSS_WITH_CAMELLIA_256_CBC_SHA", "DHE-DSS-CAMELLIA256-SHA"),
    ("TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA", "DHE-RSA-CAMELLIA256-SHA"),
    ("TLS_DHE_DSS_WITH_AES_256_CBC_SHA256", "DHE-DSS-AES256-SHA256"),
    ("TLS_DHE_RSA_WITH_AES_256_CBC_SHA256", "DHE-RSA-AES256-SHA256"),
    ("TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "DHE-RSA-CHACHA20-POLY1305"),
    ("TLS_DHE_DSS_WITH_AES_256_GCM_SHA384", "DHE-DSS-AES256-GCM-SHA384"),
    ("TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", "DHE-RSA-AES256-GCM-SHA384"),
)
"""DCMTK 3.6.7's TLS 1.2 (and older) suites, IANA and OpenSSL names, weakest first in
its order: the ones ``+cs`` may name and ``+cc`` lists (those OpenSSL offers here)."""

_IANA_TO_OPENSSL = dict(_SUITES)
_UNENCRYPTED = frozenset({"TLS_RSA_WITH_NULL_SHA"})
_RSA_TRANSPORT = frozenset(name for name, _ in _SUITES if name.startswith("TLS_RSA_"))

_TLS13_SUITES = frozenset(
    {
        "TLS_AES_128_GCM_SHA256",
        "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_AES_128_CCM_SHA256",
    }
)
"""TLS 1.3 suites: always offered by OpenSSL's defaults; naming one changes nothing."""

_BCP195_ND = (
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
)


@dataclass(frozen=True)
class _Profile:
    """What a security profile offers: its TLS 1.2 suites in order (then an optional one
    when OpenSSL here has it), the oldest TLS version, and whether TLS 1.3 is on."""

    name: str
    suites: tuple[str, ...]
    oldest: ssl.TLSVersion
    tls13: bool
    optional: str = ""


_PROFILES: dict[TlsProfile, _Profile] = {
    TlsProfile.BCP195_ND: _Profile(
        "Non-downgrading BCP 195 TLS Profile", _BCP195_ND, ssl.TLSVersion.TLSv1_2, True
    ),
    TlsProfile.BCP195: _Profile(
        "BCP 195 TLS Profile",
        (*_BCP195_ND, "TLS_RSA_WITH_AES_128_CBC_SHA"),
        ssl.TLSVersion.TLSv1,
        True,
        optional="TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    ),
    TlsProfile.BCP195_EX: _Profile(
        "Extended BCP 195 TLS Profile",
        (
            *_BCP195_ND,
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        ),
        ssl.TLSVersion.TLSv1_2,
        False,
    ),
    TlsProfile.AES: _Profile(
        "AES TLS Secure Transport Connection Profile",
        ("TLS_RSA_WITH_AES_128_CBC_SHA",),
        ssl.TLSVersion.TLSv1,
        False,
        optional="TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    ),
    TlsProfile.NULL: _Profile(
        "Authenticated unencrypted communication",
        ("TLS_RSA_WITH_NULL_SHA",),
        ssl.TLSVersion.TLSv1,
        False,
    ),
}

PROFILE_NAMES = {profile: spec.name for profile, spec in _PROFILES.items()}
"""DCMTK's name of each security profile."""


def iana_to_openssl(name: str) -> str | None:
    """The OpenSSL name of the TLS 1.2 suite ``name`` (IANA spelling); "" for a TLS 1.3
    suite (always enabled); None when the name is unknown."""
    if name in _TLS13_SUITES:
        return ""
    return _IANA_TO_OPENSSL.get(name)


@functools.cache
def _available() -> frozenset[str]:
    """OpenSSL names of every suite the OpenSSL library here offers, unencrypted ones
    included (what DCMTK asks it for)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers("ALL:eNULL")
    return frozenset(str(suite["name"]) for suite in ctx.get_ciphers())


def supported_suites() -> list[str]:
    """The IANA names ``+cc`` lists: DCMTK's suites that OpenSSL here offers, in DCMTK's
    order."""
    available = _available()
    return [name for name, openssl in _SUITES if openssl in available]


def _profile_ciphers(settings: TlsSettings) -> tuple[str, int]:
    """The OpenSSL cipher string for ``settings``' profile and ``+cs`` suites, and the
    security level it needs. Raises :class:`UsageError` as DCMTK refuses a suite."""
    profile = _PROFILES[settings.profile]
    available = _available()
    names = list(profile.suites)
    if profile.optional and _IANA_TO_OPENSSL[profile.optional] in available:
        names.append(profile.optional)
    # DCMTK adds the +cs suites last option first.
    for name in reversed(settings.ciphers):
        mapped = iana_to_openssl(name)
        if mapped is None:
            raise UsageError(
                f"unknown cipher suite {name} (IANA name expected, such as"
                " TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)"
            )
        if not mapped:
            continue
        if mapped not in available:
            raise UsageError(f"Ciphersuite '{name}' not supported by the OpenSSL library in use")
        if settings.profile is TlsProfile.BCP195_EX:
            raise UsageError(
                f"Additional ciphersuites not permitted with security profile '{profile.name}'"
            )
        if settings.profile is not TlsProfile.NULL:
            if name in _UNENCRYPTED:
                raise UsageError(
                    f"Unencrypted ciphersuite '{name}' not permitted with security profile"
                    f" '{profile.name}'"
                )
            if name in _RSA_TRANSPORT:
                log.warning(
                    "Ciphersuite '%s' uses RSA key transport. RFC 7525 recommends that such"
                    " cipher suites should not be used.",
                    name,
                )
        names.append(name)
    # OpenSSL offers an unencrypted suite only at security level 0 (DCMTK's +pn works
    # here, so DCMTK lowers it too); otherwise the ssl module's level stays.
    level = 0 if any(name in _UNENCRYPTED for name in names) else 2
    return ":".join(_IANA_TO_OPENSSL[name] for name in names), level


# -- the context ----------------------------------------------------------------------

_contexts: dict[TlsSettings, ssl.SSLContext] = {}
_lock = threading.Lock()


def client_context(settings: TlsSettings) -> ssl.SSLContext:
    """The client context for ``settings``, built once per process and then shared.

    Building loads the key, which may prompt for its password on the terminal (``+ps``,
    never echoed), so the first call should come before any work starts; threads that
    race here wait for the one that builds. Raises :class:`UsageError` for files that
    cannot be read or used, a wrong or missing key password, or an unknown cipher suite;
    a CA certificate file (``+cf``) that cannot be used only draws a warning, as in
    storescu.
    """
    with _lock:
        found = _contexts.get(settings)
        if found is None:
            found = _build(settings)
            _contexts[settings] = found
        return found


def _build(settings: TlsSettings) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    profile = _PROFILES[settings.profile]
    ciphers, level = _profile_ciphers(settings)
    try:
        ctx.set_ciphers(f"{ciphers}:@SECLEVEL={level}")
    except ssl.SSLError as exc:
        raise UsageError(f"no usable cipher suite: {exc.reason or exc}") from None
    with warnings.catch_warnings():
        # The retired profiles and BCP 195 accept TLS 1.0 and 1.1, as DCMTK's do; the
        # ssl module warns about setting them.
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = profile.oldest
    if not profile.tls13:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_TICKET
    if settings.verification is PeerVerification.IGNORE:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.check_hostname = settings.check_hostname
        ctx.verify_mode = ssl.CERT_REQUIRED
    for path in settings.ca_files:
        _load_trusted(ctx, path, settings.der)
    for directory in settings.ca_dirs:
        if not os.path.isdir(directory):
            raise UsageError(f"cannot read certificate directory {directory}")
        ctx.load_verify_locations(capath=directory)
    for path in settings.crl_files:
        _load_crl(ctx, path, settings.der)
    check = settings.crl_check
    if settings.crl_files and check is CrlCheck.NONE:
        check = CrlCheck.LEAF  # +crl implies +crv, as in DCMTK
    if check is CrlCheck.LEAF:
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    elif check is CrlCheck.CHAIN:
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_CHAIN
    if settings.key_file is not None and settings.cert_file is not None:
        _load_identity(ctx, settings)
    return ctx


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise UsageError(f"cannot read {what} {path}: {reason}") from None


def _load_trusted(ctx: ssl.SSLContext, path: str, der: bool) -> None:
    """Trust the certificates in ``path``. One that cannot be read or holds no
    certificate (in the form ``der`` says) is passed over with storescu's warning: the
    run goes on, and fails later only if the peer needs the missing CA."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        if der:
            ctx.load_verify_locations(cadata=data)
        else:
            ctx.load_verify_locations(cadata=data.decode("ascii", "replace"))
    except (OSError, ssl.SSLError, ValueError):
        log.warning("unable to load certificate file '%s', ignoring", path)


def _load_crl(ctx: ssl.SSLContext, path: str, der: bool) -> None:
    data = _read(path, "certificate revocation list")
    pem = _pem("X509 CRL", data) if der else data
    try:
        with _memory_file(pem) as name:
            ctx.load_verify_locations(cafile=name)
    except (ssl.SSLError, ValueError) as exc:
        raise UsageError(f"cannot load certificate revocation list {path}: {exc}") from None


def _load_identity(ctx: ssl.SSLContext, settings: TlsSettings) -> None:
    key_path, cert_path = settings.key_file or "", settings.cert_file or ""
    key = _read(key_path, "private key")
    cert = _read(cert_path, "certificate")
    if settings.der:
        key = _pem(_der_key_label(key, key_path), key)
        cert = ssl.DER_cert_to_PEM_cert(cert).encode("ascii")
    try:
        with _memory_file(cert) as cert_name, _memory_file(key) as key_name:
            ctx.load_cert_chain(cert_name, key_name, password=_password(settings))
    except _NoPassword:
        raise UsageError(
            f"private key {key_path} is encrypted and no password was given"
            " (+pw, or on a worker DISPATCH_TLS_KEY_PASSWORD)"
        ) from None
    except ssl.SSLError as exc:
        text = f"{exc.library or ''} {exc.reason or exc}".strip()
        upper = text.upper()
        if any(mark in upper for mark in ("DECRYPT", "BAD PASSWORD", "PEM LIB", "PEM_LIB")):
            raise UsageError(
                f"cannot load private key {key_path}: wrong password, or not a private key"
                f" [OpenSSL: {text}]"
            ) from None
        if "KEY_VALUES_MISMATCH" in text.upper():
            raise UsageError(
                f"private key {key_path} does not belong to certificate {cert_path}"
            ) from None
        raise UsageError(
            f"cannot load private key {key_path} and certificate {cert_path}: {text}"
        ) from None


class _NoPassword(Exception):
    """The key is encrypted and nobody can say its password."""


def _password(settings: TlsSettings) -> str | Callable[[], str]:
    """What ``load_cert_chain`` gets: OpenSSL calls a callable only for an encrypted key."""
    if settings.key_password is not None:
        return settings.key_password
    if settings.prompt_password:
        prompt = f"Enter pass phrase for {settings.key_file}: "
        return lambda: getpass.getpass(prompt)

    def missing() -> str:
        raise _NoPassword

    return missing


def _pem(label: str, der: bytes) -> bytes:
    import base64

    body = base64.encodebytes(der).decode("ascii")
    return f"-----BEGIN {label}-----\n{body}-----END {label}-----\n".encode("ascii")


def _der_key_label(der: bytes, path: str) -> str:
    """The PEM label of a DER private key, told from its first ASN.1 elements:
    PKCS#8 (plain or encrypted), PKCS#1 RSA or SEC 1 EC."""

    def element(pos: int) -> tuple[int, int]:
        """(tag, position after the element's header)."""
        if pos + 2 > len(der):
            raise UsageError(f"{path} is not a DER private key")
        tag, length = der[pos], der[pos + 1]
        pos += 2
        if length & 0x80:
            pos += length & 0x7F
        return tag, pos

    tag, inner = element(0)
    if tag != 0x30:
        raise UsageError(f"{path} is not a DER private key")
    first, after_first = element(inner)
    if first == 0x30:
        return "ENCRYPTED PRIVATE KEY"
    if first != 0x02:
        raise UsageError(f"{path} is not a DER private key")
    version_len = der[inner + 1]
    second, _ = element(after_first + version_len)
    if second == 0x30:
        return "PRIVATE KEY"
    if second == 0x04:
        return "EC PRIVATE KEY"
    return "RSA PRIVATE KEY"


@contextlib.contextmanager
def _memory_file(data: bytes) -> Iterator[str]:
    """A file name holding ``data``, for OpenSSL calls that only take names.

    On Linux an anonymous in-memory file, so that a converted key never touches the
    disk; elsewhere a private temporary file, removed at once.
    """
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fd = os.memfd_create("dispatch-tls", os.MFD_CLOEXEC)
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory() as directory:
        name = os.path.join(directory, "material.pem")
        with open(os.open(name, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as handle:
            handle.write(data)
        yield name


# -- errors ---------------------------------------------------------------------------

_VERIFY_CODES: dict[int, str] = {
    2: "was issued by a CA we do not know (unknown CA)",
    9: "is not valid yet",
    10: "has expired",
    18: "is self-signed and not trusted (unknown CA)",
    19: "chains up to a CA we do not trust (unknown CA)",
    20: "was issued by a CA we do not know (unknown CA)",
    21: "cannot be verified against the trusted CAs (unknown CA)",
    23: "has been revoked",
    3: "cannot be checked: no certificate revocation list for its issuer",
    11: "cannot be checked: the certificate revocation list is not valid yet",
    12: "cannot be checked: the certificate revocation list has expired",
    26: "is not meant for a TLS server",
    62: "does not name the host we connected to (wrong host)",
    64: "does not name the address we connected to (wrong host)",
}

_ALERTS: dict[str, str] = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": (
        "the peer requires a client certificate and none was presented"
    ),
    "TLSV1_ALERT_UNKNOWN_CA": "the peer does not trust our certificate (unknown CA)",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "the peer refused our certificate: it has expired",
    "SSLV3_ALERT_CERTIFICATE_REVOKED": "the peer refused our certificate: it was revoked",
    "SSLV3_ALERT_BAD_CERTIFICATE": "the peer refused our certificate",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "the peer refused our certificate",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": "the peer refused our certificate (unsupported)",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": (
        "the peer ended the handshake: no cipher suite in common, or it wanted a client certificate"
    ),
    "TLSV1_ALERT_PROTOCOL_VERSION": "the peer does not accept TLS 1.2 or newer",
    "UNSUPPORTED_PROTOCOL": "the peer offers no TLS version we accept (TLS 1.2 or newer)",
    "NO_PROTOCOLS_AVAILABLE": "no TLS version is enabled",
    "NO_SHARED_CIPHER": "no cipher suite in common with the peer",
    "NO_CIPHERS_AVAILABLE": "no cipher suite in common with the peer",
    "WRONG_VERSION_NUMBER": "the peer does not answer in TLS (a plain TCP port?)",
    "PACKET_LENGTH_TOO_LONG": "the peer does not answer in TLS (a plain TCP port?)",
    "TLSV1_ALERT_DECRYPT_ERROR": "the peer could not verify our handshake signature",
    "TLSV1_ALERT_ACCESS_DENIED": "the peer denied access",
}


def translate_tls(exc: ssl.SSLError, what: str) -> DispatchError:
    """The project's error for an SSL error met while doing ``what``.

    Certificate and handshake problems become :class:`TlsError` with plain words first
    and OpenSSL's text after; a receive or send timeout on the TLS socket
    :class:`NetworkTimeout`; the peer closing in the middle :class:`ConnectionLost`.
    """
    if isinstance(exc, ssl.SSLWantReadError | ssl.SSLWantWriteError):
        return NetworkTimeout(f"{what}: timed out")
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = int(exc.verify_code or 0)
        plain = _VERIFY_CODES.get(code, "was refused")
        return TlsError(
            f"{what}: TLS: the peer's certificate {plain} [OpenSSL: {exc.verify_message}]"
        )
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return ConnectionLost(f"{what}: connection closed by peer during TLS")
    reason = str(exc.reason or "")
    alert = _ALERTS.get(reason)
    openssl = f"{exc.library}: {reason}" if exc.library else (reason or str(exc))
    if alert is None:
        return TlsError(f"{what}: TLS error [OpenSSL: {openssl}]")
    return TlsError(f"{what}: TLS: {alert} [OpenSSL: {openssl}]")


def peer_alert(sock: ssl.SSLSocket, what: str) -> DispatchError | None:
    """After a failed write on a TLS socket: the peer's reason, if it sent an alert
    before closing (with TLS 1.3 a server judges our certificate only after our side
    of the handshake is done, so its verdict arrives while we write). None when there
    is no alert to read."""
    try:
        sock.setblocking(False)
        sock.recv(1)
    except ssl.SSLError as exc:
        if isinstance(exc, ssl.SSLWantReadError | ssl.SSLEOFError | ssl.SSLZeroReturnError):
            return None
        return translate_tls(exc, what)
    except OSError:
        return None
    return None
