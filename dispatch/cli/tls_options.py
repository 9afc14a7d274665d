"""storescu's TLS and user identity options: their table entries and their conversion
into :class:`~dispatch.settings.TlsSettings` and :class:`~dispatch.settings.UserIdentity`,
with DCMTK's dependency checks and messages.

Options that have no effect on a modern client (``+dp``; ``+rs``, ``+ws``, ``+wf``) are
accepted and draw a one-line warning saying why. Nothing here touches a file: keys and
certificates are loaded when the TLS context is built (see :mod:`dispatch.net.tls`).
"""

from __future__ import annotations

import sys
from typing import TextIO

from dispatch.cli.cmdline import CommandLineError, OptionSpec, ParsedCommandLine
from dispatch.settings import (
    CrlCheck,
    IdentityKind,
    PeerVerification,
    TlsProfile,
    TlsSettings,
    UserIdentity,
)

__all__ = [
    "TLS_SECTION",
    "cipher_listing",
    "identity_from",
    "identity_options",
    "tls_from",
    "tls_options",
]

TLS_SECTION = "transport layer security (TLS) options"

_NO_EFFECT = {
    "dhparam": "--dhparam has no effect: DH parameters matter to servers only",
    "seed": "--seed has no effect: the operating system's random source seeds TLS",
    "write_seed": "--write-seed has no effect: no random seed file is used",
    "write_seed_file": "--write-seed-file has no effect: no random seed file is used",
}


def identity_options(section: str) -> list[OptionSpec]:
    """-usr, -pwd, -epw, -kt, --saml, --jwt, -rsp (in ``section``)."""
    sub = "user identity negotiation"

    def opt(
        names: tuple[str, ...],
        dest: str,
        metavar: str,
        text: str,
        const: object = True,
        nargs: int = 1,
    ) -> OptionSpec:
        return OptionSpec(names, dest, nargs=nargs, const=const, section=section,
                          subsection=sub, metavar=metavar, help=text)  # fmt: skip

    return [
        opt(("-usr", "--user"), "identity", "[u]ser name: string",
            "authenticate using user name u", const=IdentityKind.USERNAME),
        opt(("-pwd", "--password"), "identity_password",
            "[p]assword: string (only with --user)", "authenticate using password p"),
        opt(("-epw", "--empty-password"), "identity_empty", "",
            "send empty password (only with --user)", nargs=0),
        opt(("-kt", "--kerberos"), "identity", "[f]ilename: string",
            "read kerberos ticket from file f", const=IdentityKind.KERBEROS),
        opt(("--saml",), "identity", "[f]ilename: string", "read SAML request from file f",
            const=IdentityKind.SAML),
        opt(("--jwt",), "identity", "[f]ilename: string", "read JWT data from file f",
            const=IdentityKind.JWT),
        opt(("-rsp", "--pos-response"), "identity_response", "", "expect positive response",
            nargs=0),
    ]  # fmt: skip


def tls_options() -> list[OptionSpec]:
    """The TLS section of storescu."""

    def opt(
        names: tuple[str, ...],
        dest: str,
        sub: str,
        text: str,
        *,
        nargs: int = 0,
        const: object = True,
        metavar: str = "",
    ) -> OptionSpec:
        return OptionSpec(names, dest, nargs=nargs, const=const, section=TLS_SECTION,
                          subsection=sub, metavar=metavar, help=text)  # fmt: skip

    stack = "transport protocol stack"
    pw = "private key password (only with --enable-tls)"
    fmt = "key and certificate file format"
    ca = "certification authority"
    profile = "security profile"
    suite = "ciphersuite"
    prng = "pseudo random generator"
    peer = "peer authentication"
    out = [
        opt(("-tls", "--disable-tls"), "tls", stack, "use normal TCP/IP connection (default)",
            const=False),
        opt(("+tls", "--enable-tls"), "tls", stack, "use authenticated secure TLS connection",
            nargs=2, metavar="[p]rivate key file, [c]ertificate file: string"),
        opt(("+tla", "--anonymous-tls"), "tls", stack,
            "use secure TLS connection without certificate", const="anonymous"),
        opt(("+ps", "--std-passwd"), "key_password", pw,
            "prompt user to type password on stdin (default)", const=None),
        opt(("+pw", "--use-passwd"), "key_password", pw, "use specified password", nargs=1,
            metavar="[p]assword: string"),
        opt(("-pw", "--null-passwd"), "key_password", pw, "use empty string as password",
            const=""),
        opt(("-pem", "--pem-keys"), "der", fmt,
            "read keys and certificates as PEM file (default)", const=False),
        opt(("-der", "--der-keys"), "der", fmt, "read keys and certificates as DER file"),
        opt(("+cf", "--add-cert-file"), "ca_file", ca,
            "add certificate file to list of certificates", nargs=1,
            metavar="[f]ilename: string"),
        opt(("+cd", "--add-cert-dir"), "ca_dir", ca,
            "add certificates in d to list of certificates", nargs=1,
            metavar="[d]irectory: string"),
        opt(("+crl", "--add-crl-file"), "crl_file", ca,
            "add certificate revocation list file\n(implies --enable-crl-vfy)", nargs=1,
            metavar="[f]ilename: string"),
        opt(("+crv", "--enable-crl-vfy"), "crl_check", ca, "enable leaf CRL verification",
            const=CrlCheck.LEAF),
        opt(("+cra", "--enable-crl-all"), "crl_check", ca,
            "enable full chain CRL verification", const=CrlCheck.CHAIN),
        opt(("+py", "--profile-bcp195-nd"), "tls_profile", profile,
            "Non-downgrading BCP 195 TLS Profile (default)", const=TlsProfile.BCP195_ND),
        opt(("+px", "--profile-bcp195"), "tls_profile", profile, "BCP 195 TLS Profile",
            const=TlsProfile.BCP195),
        opt(("+pz", "--profile-bcp195-ex"), "tls_profile", profile,
            "Extended BCP 195 TLS Profile", const=TlsProfile.BCP195_EX),
        opt(("+pa", "--profile-aes"), "tls_profile", profile,
            "AES TLS Secure Transport Connection Profile\n(retired)", const=TlsProfile.AES),
        opt(("+pn", "--profile-null"), "tls_profile", profile,
            "Authenticated unencrypted communication\n(retired, was used in IHE ATNA)",
            const=TlsProfile.NULL),
        opt(("+cc", "--list-ciphers"), "list_ciphers", suite,
            "show list of supported TLS ciphersuites and exit"),
        opt(("+cs", "--cipher"), "cipher", suite,
            "add ciphersuite to list of negotiated suites\n(not with --profile-bcp195-ex)",
            nargs=1, metavar="[c]iphersuite name: string"),
        opt(("+dp", "--dhparam"), "dhparam", suite, "no effect (DH parameters: servers only)",
            nargs=1, metavar="[f]ilename: string"),
        opt(("+rs", "--seed"), "seed", prng, "no effect (the system seeds TLS)", nargs=1,
            metavar="[f]ilename: string"),
        opt(("+ws", "--write-seed"), "write_seed", prng, "no effect"),
        opt(("+wf", "--write-seed-file"), "write_seed_file", prng, "no effect", nargs=1,
            metavar="[f]ilename: string"),
        opt(("-rc", "--require-peer-cert"), "verification", peer,
            "verify peer certificate, fail if absent (default)",
            const=PeerVerification.REQUIRE),
        opt(("-vc", "--verify-peer-cert"), "verification", peer,
            "verify peer certificate if present\n(a server always presents one: as -rc)",
            const=PeerVerification.VERIFY),
        opt(("-ic", "--ignore-peer-cert"), "verification", peer,
            "don't verify peer certificate", const=PeerVerification.IGNORE),
        opt(("--request-sni",), "server_name", peer,
            "request server name n (SNI)", nargs=1, metavar="[n]ame: string"),
        opt(("--check-hostname",), "check_hostname", peer,
            "require the peer certificate to name the host\n(or the --request-sni name)"),
    ]  # fmt: skip
    return out


_NEEDS_TLS = (
    "der", "tls_profile", "ca_file", "ca_dir", "crl_file", "crl_check", "cipher", "dhparam", "seed",
    "write_seed", "write_seed_file", "verification", "server_name", "check_hostname",
)  # fmt: skip


def tls_from(
    parsed: ParsedCommandLine, *, quiet: bool = False, stderr: TextIO | None = None
) -> TlsSettings | None:
    """The TLS settings of a parsed command line, None for plain TCP.

    DCMTK's checks: password options only with ``+tls``, the other TLS options only
    with ``+tls`` or ``+tla``. Options without effect print a warning on ``stderr``
    (unless ``quiet``).
    """
    mode = parsed.value("tls", False)
    enabled = mode is not False
    for occ in parsed.occurrences:
        dest = occ.option.dest
        if dest == "key_password" and not isinstance(mode, tuple):
            raise CommandLineError(f"{occ.option.long_name} only allowed with --enable-tls",
                                   quiet=quiet)  # fmt: skip
        if dest in _NEEDS_TLS and not enabled:
            raise CommandLineError(
                f"{occ.option.long_name} only allowed with --enable-tls or --anonymous-tls",
                quiet=quiet,
            )
    if not enabled:
        return None
    profile = parsed.value("tls_profile", TlsProfile.BCP195_ND)
    assert isinstance(profile, TlsProfile)
    if profile is TlsProfile.BCP195_EX and parsed.last("cipher") is not None:
        raise CommandLineError("--cipher not allowed with --profile-bcp195-ex", quiet=quiet)
    if not quiet:
        for dest, text in _NO_EFFECT.items():
            if parsed.last(dest) is not None:
                print(f"W: {text}", file=stderr or sys.stderr)
    key_file = cert_file = None
    if isinstance(mode, tuple):
        key_file, cert_file = (str(v) for v in mode)
    password = parsed.last("key_password")
    key_password: str | None = None
    prompt = True
    if password is not None:
        if password.option.nargs:
            key_password, prompt = password.values[0], False
        elif password.option.const == "":
            key_password, prompt = "", False
    verification = parsed.value("verification", PeerVerification.REQUIRE)
    assert isinstance(verification, PeerVerification)
    crl_check = parsed.value("crl_check", CrlCheck.NONE)
    assert isinstance(crl_check, CrlCheck)
    return TlsSettings(
        key_file=key_file,
        cert_file=cert_file,
        der=bool(parsed.value("der", False)),
        key_password=key_password,
        prompt_password=prompt,
        ca_files=tuple(str(v) for v in parsed.values("ca_file")),
        ca_dirs=tuple(str(v) for v in parsed.values("ca_dir")),
        crl_files=tuple(str(v) for v in parsed.values("crl_file")),
        crl_check=crl_check,
        profile=profile,
        ciphers=tuple(str(v) for v in parsed.values("cipher")),
        verification=verification,
        server_name=parsed.str_value("server_name"),
        check_hostname=parsed.last("check_hostname") is not None,
    )


def identity_from(parsed: ParsedCommandLine, *, quiet: bool = False) -> UserIdentity | None:
    """The user identity of a parsed command line (None: none), with DCMTK's checks:
    -pwd / -epw only with -usr (and not together), -rsp only with an identity."""
    chosen = parsed.last("identity")
    kind = IdentityKind(int(chosen.option.const)) if chosen is not None else None  # type: ignore[call-overload]
    password = parsed.last("identity_password")
    empty = parsed.last("identity_empty") is not None
    if password is not None and kind is not IdentityKind.USERNAME:
        raise CommandLineError("--password only allowed with --user", quiet=quiet)
    if empty and (kind is not IdentityKind.USERNAME or password is not None):
        raise CommandLineError("--empty-password only allowed with --user", quiet=quiet)
    positive = parsed.last("identity_response") is not None
    if positive and kind is None:
        raise CommandLineError(
            "--pos-response only allowed with --user, --kerberos or --saml", quiet=quiet
        )
    if chosen is None or kind is None:
        return None
    if password is not None or empty:
        passcode = password.values[0] if password is not None else ""
        return UserIdentity(IdentityKind.USERNAME_PASSCODE, chosen.values[0], passcode, positive)
    return UserIdentity(kind, chosen.values[0], "", positive)


def cipher_listing() -> str:
    """What ``+cc`` prints after the program's name: the cipher suites ``+cs`` can add
    here, as storescu lists them."""
    from dispatch.net.tls import supported_suites

    lines = ["Supported TLS ciphersuites are:", *(f"  {name}" for name in supported_suites())]
    return "\n".join(lines)
