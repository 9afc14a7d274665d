"""Frozen settings objects, built once (from the command line, a config file or the
environment) and passed down. Nothing below this layer reads ``os.environ``.

Times are seconds; ``None`` means "no limit".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

DEFAULT_CALLING_AE = "STORESCU"
DEFAULT_CALLED_AE = "ANY-SCP"
DEFAULT_MAX_PDU = 16384
MIN_PDU = 4096
MAX_PDU = 131072


@dataclass(frozen=True)
class Timeouts:
    """The four timeouts of an association, as storescu names them.

    ``connect_s`` (-to) bounds the TCP connect; ``socket_s`` (-ts) every blocking send
    and receive; ``acse_s`` (-ta) the wait for A-ASSOCIATE-AC/RJ and A-RELEASE-RP;
    ``dimse_s`` (-td) the wait for a C-STORE response.
    """

    connect_s: float | None = None
    socket_s: float | None = 60.0
    acse_s: float | None = 30.0
    dimse_s: float | None = None


@dataclass(frozen=True)
class PresentationContext:
    """One proposed presentation context: an odd id, an abstract syntax, its syntaxes."""

    context_id: int
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]


@dataclass(frozen=True)
class RoleSelection:
    """An SCP/SCU role selection item proposed for one SOP class (PS3.7 D.3.3.4).

    ``scu`` / ``scp``: whether we propose to act in that role for the class; a profile's
    ``SCU`` is (True, False), ``SCP`` (False, True), ``BOTH`` (True, True).
    """

    sop_class: str
    scu: bool
    scp: bool


@dataclass(frozen=True)
class ExtendedNegotiation:
    """An SOP class extended negotiation item (PS3.7 D.3.3.5): opaque service class
    application information for one SOP class, at most 1024 bytes."""

    sop_class: str
    data: bytes


@dataclass(frozen=True)
class AssociationSettings:
    """Everything needed to open one association to one peer."""

    host: str
    port: int
    contexts: tuple[PresentationContext, ...]
    calling_ae: str = DEFAULT_CALLING_AE
    called_ae: str = DEFAULT_CALLED_AE
    max_pdu: int = DEFAULT_MAX_PDU
    """Largest PDU we accept (-pdu); announced to the peer and enforced on what it sends."""
    max_send_pdu: int | None = None
    """Cap on the PDUs we send (--max-send-pdu); the peer's own limit applies too."""
    timeouts: Timeouts = field(default_factory=Timeouts)
    roles: tuple[RoleSelection, ...] = ()
    """SCP/SCU role selection items of the A-ASSOCIATE-RQ (from a profile, -xf)."""
    extended: tuple[ExtendedNegotiation, ...] = ()
    """SOP class extended negotiation items of the A-ASSOCIATE-RQ (from a profile, -xf)."""
    tls: TlsSettings | None = None
    """TLS on the connection (+tls, +tla); None is plain TCP."""
    identity: UserIdentity | None = None
    """User identity negotiation (-usr, -kt, --saml, --jwt); None proposes none."""


class PeerVerification(StrEnum):
    """How the peer's certificate is checked (-rc, -vc, -ic)."""

    REQUIRE = "require"
    """Verify it against the trusted CAs; fail without one (the default)."""
    VERIFY = "verify"
    """Verify it if present. A server always presents one (the cipher suites allowed
    here all authenticate the server), so for a client this is the same as REQUIRE."""
    IGNORE = "ignore"
    """Take any certificate, or none."""


class CrlCheck(StrEnum):
    """Certificate revocation checking (+crv, +cra; +crl implies leaf)."""

    NONE = "none"
    LEAF = "leaf"
    CHAIN = "chain"


class TlsProfile(StrEnum):
    """DCMTK's TLS security profiles (+py, +px, +pz, +pa, +pn); see
    :mod:`dispatch.net.tls` for the versions and suites of each."""

    BCP195_ND = "bcp195-nd"
    """Non-downgrading BCP 195 (the default): TLS 1.2 or newer."""
    BCP195 = "bcp195"
    """BCP 195: TLS 1.0 or newer, one CBC suite more for older peers."""
    BCP195_EX = "bcp195-ex"
    """Extended BCP 195: TLS 1.2 only, its six suites only (no +cs)."""
    AES = "aes"
    """AES (retired): TLS up to 1.2 with TLS_RSA_WITH_AES_128_CBC_SHA."""
    NULL = "null"
    """Authenticated unencrypted (retired): TLS up to 1.2 with TLS_RSA_WITH_NULL_SHA."""


@dataclass(frozen=True)
class TlsSettings:
    """TLS for an association, as storescu's TLS options describe it.

    Files are paths on the host that opens the association (a worker's own, for
    ``dispatch submit``). ``key_password`` is a secret: it never appears in ``repr``,
    logs or job records; ``None`` means "not given" (see ``prompt_password``).
    """

    key_file: str | None = None
    """Our private key (+tls KEY); None with anonymous TLS (+tla)."""
    cert_file: str | None = None
    """Our certificate, optionally followed by its chain (+tls CERT)."""
    der: bool = False
    """Key, certificates and CRLs are DER files (-der), not PEM (-pem)."""
    key_password: str | None = field(default=None, repr=False)
    """+pw P; "" for -pw; None when not given."""
    prompt_password: bool = True
    """+ps: ask on the terminal when the key turns out to be encrypted and no password
    was given. False where nobody can answer (a worker)."""
    ca_files: tuple[str, ...] = ()
    """Trusted CA certificates (+cf), in order."""
    ca_dirs: tuple[str, ...] = ()
    """Hashed directories of trusted CA certificates (+cd)."""
    crl_files: tuple[str, ...] = ()
    """Certificate revocation lists (+crl)."""
    crl_check: CrlCheck = CrlCheck.NONE
    profile: TlsProfile = TlsProfile.BCP195_ND
    """The security profile (+py, +px, +pz, +pa, +pn)."""
    ciphers: tuple[str, ...] = ()
    """IANA names of TLS 1.2 cipher suites added to the profile's (+cs), in command-line
    order."""
    verification: PeerVerification = PeerVerification.REQUIRE
    server_name: str | None = None
    """Server name indication to send (--request-sni); None sends none, as DCMTK."""
    check_hostname: bool = False
    """Require the peer's certificate to name the host (or ``server_name``). Off by
    default, as in DCMTK, which never checks host names."""


class IdentityKind(IntEnum):
    """User identity types of PS3.7 D.3.3.7."""

    USERNAME = 1
    USERNAME_PASSCODE = 2
    KERBEROS = 3
    SAML = 4
    JWT = 5


@dataclass(frozen=True)
class UserIdentity:
    """User identity negotiation in the A-ASSOCIATE-RQ.

    ``primary`` is the user name (USERNAME, USERNAME_PASSCODE) or the path of the file
    holding the Kerberos ticket, SAML assertion or JWT (read when the request is built,
    on the host that opens the association). ``passcode`` is a secret: never in
    ``repr``, logs or job records.
    """

    kind: IdentityKind
    primary: str
    passcode: str = field(default="", repr=False)
    positive_response: bool = False
    """-rsp: ask the peer to confirm; no confirmation is an error (user name kinds)."""


class ReadMode(StrEnum):
    """How input files are read (+f, +fo, -f)."""

    FILE = "file"
    """A Part-10 file, or a bare data set when there is no meta header (the default)."""
    FILE_ONLY = "file-only"
    """A Part-10 file; a file without meta header is an error."""
    DATASET = "dataset"
    """A bare data set starting at byte 0."""


@dataclass(frozen=True)
class SendPolicy:
    """How a run of files is sent over one association."""

    halt: bool = True
    """Stop after the first unsuccessful store (storescu's default); False is -nh."""
    repeat: int = 1
    """Send each file this many times in a row (--repeat)."""
    abort_at_end: bool = False
    """End with A-ABORT instead of A-RELEASE (--abort)."""
    uid_padding: bool = False
    """-up, accepted and without effect, as in storescu 3.6.7: the UIDs of every file
    read lose their space padding anyway (see :class:`dispatch.dicomfile.DicomFileInfo`)."""
    read_mode: ReadMode = ReadMode.FILE
    rename: bool = False
    """Rename each processed file to NAME.done or NAME.bad (+rn)."""
    prefer_deflated: bool = False
    """Send uncompressed files deflated when that context was accepted (-xd)."""
    deflate_level: int = 6
    """zlib level for data sets deflated on the way out."""
    allow_lossy: bool = False
    """Convert to a lossy transfer syntax when no lossless one was accepted
    (--allow-lossy); off by default (see :mod:`dispatch.codecs`)."""
    new_vrs: bool = True
    """Send the VRs introduced after 1993 as they are (+u); False (-u) sends UN, UT, UC,
    UR, OD, OF, OL, OV, SV and UV as OB in explicit VR syntaxes, as DCMTK does."""
    invent_identities: bool = False
    """Invent SOP instance, series, study and patient identities (+II; see
    :mod:`dispatch.identities`)."""
    invent_series: int = 100
    """+IR: a new series after this many images."""
    invent_study: int = 50
    """+IS: a new study after this many series."""
    invent_patient: int = 25
    """+IP: a new patient after this many studies."""
    invent_stamp: int = 0
    """The time (seconds) written into invented IDs and names, fixed when the command
    line is read so that every worker of a job writes the same."""
