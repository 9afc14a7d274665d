"""The command line of ``dispatch send``: storescu's options, checked as DCMTK checks them.

Public surface:

- :data:`SEND_SPEC` - the option table of ``dispatch send`` (a
  :class:`~dispatch.cli.cmdline.CommandSpec`); ``SEND_SPEC.extended(...)`` adds options
  and help sections for a command built on it (``dispatch submit``).
- :func:`parse_send_args` - argv to :class:`SendOptions`.
- :func:`send_options_from` - the same from an already parsed command line, so that an
  extended command can read its own options from the same parse.

Both raise :class:`~dispatch.cli.cmdline.CliExit` when the program should stop: help or
version (exit 0, text for standard output) or :class:`CommandLineError` (exit 1, one
line for standard error; nothing to print when its ``quiet`` is set, like DCMTK under
``-q``). Nothing here imports pydicom or pynetdicom.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TextIO

import dispatch
from dispatch import uids
from dispatch.cli.cmdline import (
    CliExit,
    CommandLineError,
    CommandSpec,
    Occurrence,
    OptionSpec,
    ParamSpec,
    ParsedCommandLine,
    ValueSpec,
    check_params,
    convert_param,
    format_arguments,
    parse_command_line,
)
from dispatch.cli.logconfig import LogConfig, read_log_config
from dispatch.cli.tls_options import (
    cipher_listing,
    identity_from,
    identity_options,
    tls_from,
    tls_options,
)
from dispatch.settings import (
    DEFAULT_CALLED_AE,
    DEFAULT_CALLING_AE,
    DEFAULT_MAX_PDU,
    MAX_PDU,
    MIN_PDU,
    ReadMode,
    SendPolicy,
    Timeouts,
    TlsSettings,
    UserIdentity,
)

__all__ = [
    "LOG_LEVELS",
    "PROPOSALS",
    "SEND_SPEC",
    "SendOptions",
    "parse_send_args",
    "send_options_from",
]

LOG_LEVELS = ("fatal", "error", "warn", "info", "debug", "trace")
"""Log levels from the least to the most verbose."""

PROPOSALS: dict[str, str] = {
    "-x=": "uncompressed",
    "-xe": "little",
    "-xb": "big",
    "-xi": "implicit",
    "-xs": uids.JPEG_LOSSLESS_SV1,
    "-xy": uids.JPEG_BASELINE,
    "-xx": uids.JPEG_EXTENDED,
    "-xv": uids.JPEG_2000_LOSSLESS,
    "-xw": uids.JPEG_2000,
    "-xr": uids.RLE_LOSSLESS,
    "-xd": uids.DEFLATED_LE,
    "-xt": uids.JPEG_LS_LOSSLESS,
    "-xu": uids.JPEG_LS_NEAR_LOSSLESS,
}
"""What each ``-x?`` option stores in :attr:`SendOptions.proposal`."""


@dataclass(frozen=True)
class SendOptions:
    """Everything ``dispatch send`` needs, as given on its command line."""

    host: str
    port: int
    inputs: tuple[str, ...]
    """Files and directories, in command-line order (see :mod:`dispatch.inputs`)."""
    calling_ae: str = DEFAULT_CALLING_AE
    called_ae: str = DEFAULT_CALLED_AE
    proposal: str = "uncompressed"
    """"uncompressed" (-x=), "little" (-xe), "big" (-xb), "implicit" (-xi), or the
    transfer syntax UID proposed first (-xs -xy -xx -xv -xw -xr -xd -xt -xu)."""
    required_only: bool = False
    """-R: propose only the SOP classes of the input files."""
    combine: bool = False
    """+C: one presentation context per SOP class holding every proposed syntax."""
    propose_own: bool = False
    """--propose-own: read every file first and propose, per SOP class, its files' own
    transfer syntaxes before the others (split over associations beyond 128 contexts)."""
    any_class: bool = False
    """--any-class: with -R or --propose-own, also propose and send SOP classes that are
    not known storage classes (private ones), which storescu refuses."""
    profile: tuple[str, str] | None = None
    """-xf: (profile file, profile name); proposes that profile instead of -x?."""
    timeouts: Timeouts = field(default_factory=Timeouts)
    max_pdu: int = DEFAULT_MAX_PDU
    max_send_pdu: int | None = None
    policy: SendPolicy = field(default_factory=SendPolicy)
    scan_dirs: bool = False
    pattern: str | None = None
    """+sp: shell wildcard matched against the base names of scanned files."""
    recurse: bool = False
    log_level: str = "warn"
    """One of :data:`LOG_LEVELS`; -q is "fatal", -v "info", -d "debug"."""
    log_config: LogConfig | None = None
    """-lc FILE: the log configuration read from FILE (``log_level`` is its root level)."""
    verbose_pc: bool = False
    """+v: show proposed and accepted presentation contexts (needs info or lower)."""
    report: str | None = None
    """--report FILE: write one JSON line per file outcome there."""
    metrics_port: str | None = None
    """--metrics-port [HOST:]PORT: serve Prometheus metrics there while sending."""
    arguments: tuple[str, ...] | None = None
    """With --arguments: the expanded command line, options spelled long."""
    tls: TlsSettings | None = None
    """+tls / +tla and the other TLS options; None is plain TCP."""
    identity: UserIdentity | None = None
    """-usr / -kt / --saml / --jwt with -pwd, -epw, -rsp."""


def _flag(
    names: tuple[str, ...],
    dest: str,
    help: str,
    const: object = True,
    section: str = "general options",
    subsection: str = "",
) -> OptionSpec:
    return OptionSpec(names, dest, const=const, help=help, section=section, subsection=subsection)


def _refuse(names: tuple[str, ...], nargs: int = 0, reason: str = "") -> OptionSpec:
    return OptionSpec(names, "refused:" + names[-1], nargs=nargs, refused=reason or "not supported")


def _uint(minimum: int | None = None, maximum: int | None = None) -> ValueSpec:
    return ValueSpec("uint", minimum=minimum, maximum=maximum)


# Seconds may have a fraction here (DCMTK reads whole seconds); the floor of a "must be
# positive" timeout is therefore one millisecond rather than one second.
_POSITIVE_SECONDS = ValueSpec("seconds", minimum=0.001)

_G = "general options"
_I = "input options"
_N = "network options"
_O = "output options"
_NEGOTIATION = "proposed transmission transfer syntaxes"
_OTHER = "other network options"


def _general() -> list[OptionSpec]:
    return [
        _flag(("-h", "--help"), "help", "print this help text and exit", section=_G),
        _flag(("--version",), "version", "print version information and exit", section=_G),
        _flag(("--arguments",), "arguments", "print expanded command line arguments", section=_G),
        _flag(
            ("-q", "--quiet"),
            "verbosity",
            "quiet mode, print no warnings and errors",
            const="fatal",
            section=_G,
        ),
        _flag(
            ("-v", "--verbose"),
            "verbosity",
            "verbose mode, print processing details",
            const="info",
            section=_G,
        ),
        _flag(
            ("-d", "--debug"),
            "verbosity",
            "debug mode, print debug information",
            const="debug",
            section=_G,
        ),
        OptionSpec(
            ("-ll", "--log-level"),
            "log_level",
            nargs=1,
            value=ValueSpec(
                "choice", choices=LOG_LEVELS, invalid="Invalid log level for --log-level option"
            ),
            metavar="[l]evel: string constant",
            help="(fatal, error, warn, info, debug, trace)\nuse level l for the logger",
        ),
        OptionSpec(
            ("-lc", "--log-config"),
            "log_config",
            nargs=1,
            metavar="[f]ilename: string",
            help="use config file f for the logger",
        ),
        _flag(
            ("+v", "--verbose-pc"),
            "verbose_pc",
            "show presentation contexts in verbose mode",
            section=_G,
        ),
    ]


def _input() -> list[OptionSpec]:
    fmt = "input file format"
    files = "input files"
    return [
        _flag(
            ("+f", "--read-file"),
            "read_mode",
            "read file format or data set (default)",
            const=ReadMode.FILE,
            section=_I,
            subsection=fmt,
        ),
        _flag(
            ("+fo", "--read-file-only"),
            "read_mode",
            "read file format only",
            const=ReadMode.FILE_ONLY,
            section=_I,
            subsection=fmt,
        ),
        _flag(
            ("-f", "--read-dataset"),
            "read_mode",
            "read data set without file meta information",
            const=ReadMode.DATASET,
            section=_I,
            subsection=fmt,
        ),
        _flag(
            ("+sd", "--scan-directories"),
            "scan_dirs",
            "scan directories for input files (dcmfile-in)",
            section=_I,
            subsection=files,
        ),
        OptionSpec(
            ("+sp", "--scan-pattern"),
            "pattern",
            nargs=1,
            section=_I,
            subsection=files,
            metavar="[p]attern: string (only with --scan-directories)",
            help="pattern for filename matching (wildcards)",
        ),
        _flag(
            ("-r", "--no-recurse"),
            "recurse",
            "do not recurse within directories (default)",
            const=False,
            section=_I,
            subsection=files,
        ),
        _flag(
            ("+r", "--recurse"),
            "recurse",
            "recurse within specified directories",
            section=_I,
            subsection=files,
        ),
        _flag(
            ("-rn", "--no-rename"),
            "rename",
            "do not rename processed files (default)",
            const=False,
            section=_I,
            subsection=files,
        ),
        _flag(
            ("+rn", "--rename"),
            "rename",
            "append .done/.bad to processed files",
            section=_I,
            subsection=files,
        ),
    ]


_PROPOSAL_HELP = {
    "-x=": (
        "--propose-uncompr",
        "propose all uncompressed TS, explicit VR\nwith local byte ordering first (default)",
    ),
    "-xe": ("--propose-little", "propose all uncompressed TS, explicit VR\nlittle endian first"),
    "-xb": ("--propose-big", "propose all uncompressed TS, explicit VR\nbig endian first"),
    "-xi": ("--propose-implicit", "propose implicit VR little endian TS only"),
    "-xs": ("--propose-lossless", "propose default JPEG lossless TS"),
    "-xy": ("--propose-jpeg8", "propose default JPEG lossy TS for 8 bit data"),
    "-xx": ("--propose-jpeg12", "propose default JPEG lossy TS for 12 bit data"),
    "-xv": ("--propose-j2k-lossless", "propose JPEG 2000 lossless TS"),
    "-xw": ("--propose-j2k-lossy", "propose JPEG 2000 lossy TS"),
    "-xt": ("--propose-jls-lossless", "propose JPEG-LS lossless TS"),
    "-xu": ("--propose-jls-lossy", "propose JPEG-LS lossy TS"),
    "-xr": ("--propose-rle", "propose RLE lossless TS"),
    "-xd": ("--propose-deflated", "propose deflated expl. VR little endian TS"),
}

_UNSUPPORTED_PROPOSALS = (
    ("-xm", "--propose-mpeg2"),
    ("-xh", "--propose-mpeg2-high"),
    ("-xn", "--propose-mpeg4"),
    ("-xl", "--propose-mpeg4-bd"),
    ("-x2", "--propose-mpeg4-2-2d"),
    ("-x3", "--propose-mpeg4-2-3d"),
    ("-xo", "--propose-mpeg4-2-st"),
    ("-x4", "--propose-hevc"),
    ("-x5", "--propose-hevc10"),
)


def _network() -> list[OptionSpec]:
    aet = "application entity titles"
    out = [
        OptionSpec(
            ("-aet", "--aetitle"),
            "calling_ae",
            nargs=1,
            section=_N,
            subsection=aet,
            metavar="[a]etitle: string",
            help=f"set my calling AE title (default: {DEFAULT_CALLING_AE})",
        ),
        OptionSpec(
            ("-aec", "--call"),
            "called_ae",
            nargs=1,
            section=_N,
            subsection=aet,
            metavar="[a]etitle: string",
            help=f"set called AE title of peer (default: {DEFAULT_CALLED_AE})",
        ),
        OptionSpec(
            ("-xf", "--config-file"),
            "profile",
            nargs=2,
            section=_N,
            subsection="association negotiation profile from configuration file",
            metavar="[f]ilename, [p]rofile: string",
            help="use profile p from config file f",
        ),
    ]
    for short, (long, text) in _PROPOSAL_HELP.items():
        if short not in ("-x=", "-xe", "-xb", "-xi"):
            text += "\nand all uncompressed transfer syntaxes"
        out.append(
            _flag(
                (short, long),
                "proposal",
                text,
                const=PROPOSALS[short],
                section=_N,
                subsection=_NEGOTIATION,
            )
        )
    out += [_refuse(names) for names in _UNSUPPORTED_PROPOSALS]
    out += [
        _flag(
            ("-R", "--required"),
            "required_only",
            "propose only required presentation contexts\n(default: propose all supported)",
            section=_N,
            subsection=_NEGOTIATION,
        ),
        _flag(
            ("+C", "--combine"),
            "combine",
            "combine proposed transfer syntaxes\n(default: separate pres. context for each TS)",
            section=_N,
            subsection=_NEGOTIATION,
        ),
        _flag(
            ("--propose-own",),
            "propose_own",
            "propose the input files' own transfer syntaxes\n"
            "first, per SOP class (reads all files first)",
            section=_N,
            subsection=_NEGOTIATION,
        ),
        _flag(
            ("--any-class",),
            "any_class",
            "with -R: also propose and send SOP classes that\n"
            "are not known storage classes (private ones)",
            section=_N,
            subsection=_NEGOTIATION,
        ),
        _flag(
            ("--allow-lossy",),
            "allow_lossy",
            "convert to a lossy transfer syntax when no\n"
            "lossless one was accepted (default: never)",
            section=_N,
            subsection=_NEGOTIATION,
        ),
        _flag(
            ("+u", "--enable-new-vr"),
            "new_vrs",
            "enable support for new VRs (UN/UT) (default)",
            section=_N,
            subsection="post-1993 value representations",
        ),
        _flag(
            ("-u", "--disable-new-vr"),
            "new_vrs",
            "disable support for new VRs, convert to OB",
            const=False,
            section=_N,
            subsection="post-1993 value representations",
        ),
        OptionSpec(
            ("+cl", "--compression-level"),
            "compression_level",
            nargs=1,
            value=_uint(0, 9),
            section=_N,
            subsection="deflate compression level (only with --propose-deflated or --config-file)",
            metavar="[l]evel: integer (default: 6)",
            help="0=uncompressed, 1=fastest, 9=best compression",
        ),
        *identity_options(_N),
        OptionSpec(
            ("-to", "--timeout"),
            "connect_timeout",
            nargs=1,
            value=_POSITIVE_SECONDS,
            section=_N,
            subsection=_OTHER,
            metavar="[s]econds: number (default: unlimited)",
            help="timeout for connection requests",
        ),
        OptionSpec(
            ("-ts", "--socket-timeout"),
            "socket_timeout",
            nargs=1,
            value=ValueSpec("seconds", minimum=-1),
            section=_N,
            subsection=_OTHER,
            metavar="[s]econds: number (default: 60)",
            help="timeout for network socket (0 for none)",
        ),
        OptionSpec(
            ("-ta", "--acse-timeout"),
            "acse_timeout",
            nargs=1,
            value=_POSITIVE_SECONDS,
            section=_N,
            subsection=_OTHER,
            metavar="[s]econds: number (default: 30)",
            help="timeout for ACSE messages",
        ),
        OptionSpec(
            ("-td", "--dimse-timeout"),
            "dimse_timeout",
            nargs=1,
            value=_POSITIVE_SECONDS,
            section=_N,
            subsection=_OTHER,
            metavar="[s]econds: number (default: unlimited)",
            help="timeout for DIMSE messages",
        ),
        OptionSpec(
            ("-pdu", "--max-pdu"),
            "max_pdu",
            nargs=1,
            value=_uint(MIN_PDU, MAX_PDU),
            section=_N,
            subsection=_OTHER,
            metavar=f"[n]umber of bytes: integer ({MIN_PDU}..{MAX_PDU})",
            help=f"set max receive pdu to n bytes (default: {DEFAULT_MAX_PDU})",
        ),
        OptionSpec(
            ("--max-send-pdu",),
            "max_send_pdu",
            nargs=1,
            value=_uint(MIN_PDU, MAX_PDU),
            section=_N,
            subsection=_OTHER,
            metavar=f"[n]umber of bytes: integer ({MIN_PDU}..{MAX_PDU})",
            help="restrict max send pdu to n bytes",
        ),
        OptionSpec(
            ("--repeat",),
            "repeat",
            nargs=1,
            value=_uint(1),
            section=_N,
            subsection=_OTHER,
            metavar="[n]umber: integer",
            help="repeat n times",
        ),
        _flag(
            ("--abort",),
            "abort",
            "abort association instead of releasing it",
            section=_N,
            subsection=_OTHER,
        ),
        _flag(
            ("-nh", "--no-halt"),
            "no_halt",
            "do not halt if unsuccessful store encountered\n(default: do halt)",
            section=_N,
            subsection=_OTHER,
        ),
        _flag(
            ("-up", "--uid-padding"),
            "uid_padding",
            "silently correct space-padded UIDs",
            section=_N,
            subsection=_OTHER,
        ),
        _flag(
            ("+II", "--invent-instance"),
            "invent_instance",
            "invent a new SOP instance UID for every image\nsent",
            section=_N,
            subsection=_OTHER,
        ),
        *(
            OptionSpec(
                (short, long),
                dest,
                nargs=1,
                value=_uint(1),
                section=_N,
                subsection=_OTHER,
                metavar="[n]umber: integer (implies --invent-instance)",
                help=f"invent a new {what} after n {unit}\nhave been sent (default: {default})",
            )
            for short, long, dest, what, unit, default in _INVENT_OPTIONS
        ),
    ]
    return out


# +IR / +IS / +IP: (short, long, dest, what is invented, counted unit, storescu's default).
_INVENT_OPTIONS = (
    ("+IR", "--invent-series", "invent_series", "series UID", "images", 100),
    ("+IS", "--invent-study", "invent_study", "study UID", "series", 50),
    ("+IP", "--invent-patient", "invent_patient", "patient ID and name", "studies", 25),
)


def _invent(parsed: ParsedCommandLine, quiet: bool) -> dict[str, int | bool]:
    """+II, +IR, +IS, +IP as :class:`SendPolicy` fields; each of the last three implies
    +II. The time in invented IDs is fixed here, once per command line."""
    fields: dict[str, int | bool] = {}
    invent = parsed.last("invent_instance") is not None
    for _short, _long, dest, _what, _unit, default in _INVENT_OPTIONS:
        if parsed.last(dest) is not None:
            invent = True
            fields[dest] = parsed.int_value(dest, default, quiet=quiet) or default
    if invent:
        import time

        fields["invent_identities"] = True
        fields["invent_stamp"] = int(time.time())
    return fields


def _tls() -> list[OptionSpec]:
    refused = (
        ("+pg", "--profile-8996"),
        ("+pm", "--profile-8996-mod"),
        ("+pb", "--profile-basic"),
    )
    return tls_options() + [_refuse(names) for names in refused]


def _output() -> list[OptionSpec]:
    return [
        OptionSpec(
            ("--report",),
            "report",
            nargs=1,
            section=_O,
            metavar="[f]ilename: string",
            help="write the outcome of every file to f (JSON lines)",
        ),
        OptionSpec(
            ("--metrics-port",),
            "metrics_port",
            nargs=1,
            section=_O,
            metavar="[a]ddress: [host:]port",
            help="serve Prometheus metrics on a while sending (HTTP /metrics)",
        ),
    ]


def _version_text(spec: CommandSpec) -> str:
    # importlib.metadata reads the installed versions without importing the libraries.
    from importlib import metadata

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    python = ".".join(str(part) for part in sys.version_info[:3])
    return "\n".join(
        [
            f"dicom-dispatch {dispatch.__version__}",
            "",
            f"{spec.prog}: {spec.description}",
            "",
            f"Python {python}",
            "External libraries used:",
            f"- pydicom, Version {version('pydicom')}",
            f"- pynetdicom, Version {version('pynetdicom')}",
        ]
    )


SEND_SPEC = CommandSpec(
    prog="dispatch send",
    description="DICOM storage (C-STORE) SCU",
    params=(
        ParamSpec("peer", "hostname of DICOM peer"),
        ParamSpec("port", "tcp/ip port number of peer"),
        ParamSpec("dcmfile-in", "DICOM file or directory to be transmitted", many=True),
    ),
    options=tuple(_general() + _input() + _network() + _tls() + _output()),
    sections=(_G, _I, _N, "transport layer security (TLS) options", _O),
    version=_version_text,
)


def _log_level(parsed: ParsedCommandLine) -> tuple[str, LogConfig | None]:
    """-q / -v / -d (rightmost wins), or -ll, or -lc (read here), in DCMTK's order and
    words; -ll and -lc may not be combined with the others."""
    verbosity = parsed.last("verbosity")
    if parsed.last("log_config") is not None:
        if parsed.last("log_level") is not None:
            raise CommandLineError("--log-config not allowed with --log-level")
        if verbosity is not None:
            raise CommandLineError("--log-config not allowed with --verbose, --debug or --quiet")
        config = read_log_config(parsed.str_value("log_config") or "")
        return config.level_name, config
    return _plain_log_level(parsed, verbosity), None


def _plain_log_level(parsed: ParsedCommandLine, verbosity: Occurrence | None) -> str:
    if parsed.last("log_level") is not None:
        if verbosity is not None:
            raise CommandLineError("--log-level not allowed with --verbose, --debug or --quiet")
        return parsed.str_value("log_level") or "warn"
    return str(verbosity.option.const) if verbosity is not None else "warn"


def _ae_title(parsed: ParsedCommandLine, dest: str, default: str) -> str:
    """-aet / -aec: ``default`` when not given, else the value cut to 16 characters, as
    storescu sends a longer title. An empty title stays empty: the association request
    refuses it (storescu: "Illegal service parameter")."""
    value = parsed.str_value(dest)
    return default if value is None else value[:16]


def _profile_option(parsed: ParsedCommandLine, quiet: bool) -> tuple[str, str] | None:
    """-xf FILE PROFILE, refused with -x? (other than the default -x=), -R and +C in
    storescu's order and words. The file itself is read later (:mod:`dispatch.profiles`)."""
    occ = parsed.last("profile")
    if occ is None:
        return None
    proposal = parsed.last("proposal")
    conflicts = [
        proposal if proposal is not None and proposal.option.const != "uncompressed" else None,
        parsed.last("required_only"),
        parsed.last("combine"),
        parsed.last("propose_own"),
    ]
    for other in conflicts:
        if other is not None:
            raise CommandLineError(
                f"--config-file not allowed with {other.option.long_name}", quiet=quiet
            )
    return occ.values[0], occ.values[1]


def send_options_from(parsed: ParsedCommandLine, stderr: TextIO | None = None) -> SendOptions:
    """Check and convert a parsed ``dispatch send`` command line (or an extension of it).

    The checks run in storescu's order, so that a command line with several mistakes
    gets DCMTK's message: parameters (count, then port), logging options, the
    ``--arguments`` listing (written to ``stderr``, default ``sys.stderr``), ``+v``,
    input options, then network options. Refused options are reported first of all.
    """
    for occ in parsed.occurrences:
        if occ.option.refused:
            name, long = occ.name or occ.option.long_name, occ.option.long_name
            spelled = name if name == long else f"{name} ({long})"
            raise CommandLineError(f"Option {spelled} is not supported by {parsed.spec.prog}")
    if parsed.last("list_ciphers") is not None:
        header = f"{parsed.spec.prog}: {parsed.spec.description}"
        raise CliExit(0, f"{header}\n\n{cipher_listing()}", "stdout")
    check_params(parsed)
    host, port_text, *inputs = parsed.params
    port = convert_param(port_text, 1, 65535)

    log_level, log_config = _log_level(parsed)
    quiet = log_level == "fatal"
    if parsed.last("arguments") is not None:
        print(format_arguments(parsed.spec.prog, parsed.arguments), file=stderr or sys.stderr)
    verbose_pc = parsed.last("verbose_pc") is not None
    if verbose_pc and LOG_LEVELS.index(log_level) < LOG_LEVELS.index("info"):
        raise CommandLineError("--verbose-pc only allowed with verbose mode", quiet=quiet)

    read_mode = ReadMode(parsed.str_value("read_mode") or ReadMode.FILE)
    scan_dirs = parsed.last("scan_dirs") is not None
    pattern = parsed.str_value("pattern", quiet=quiet)
    if pattern is not None and not scan_dirs:
        raise CommandLineError("--scan-pattern only allowed with --scan-directories", quiet=quiet)
    recurse = bool(parsed.value("recurse", False))
    if recurse and not scan_dirs:
        raise CommandLineError("--recurse only allowed with --scan-directories", quiet=quiet)
    rename = bool(parsed.value("rename", False))

    timeouts = Timeouts(
        connect_s=parsed.float_value("connect_timeout", None, quiet=quiet),
        socket_s=parsed.float_value("socket_timeout", 60.0, quiet=quiet),
        acse_s=parsed.float_value("acse_timeout", 30.0, quiet=quiet),
        dimse_s=parsed.float_value("dimse_timeout", None, quiet=quiet),
    )
    if timeouts.socket_s is not None and timeouts.socket_s <= 0:
        # DCMTK: 0 means no socket timeout; -1 leaves the socket blocking, the same here.
        timeouts = Timeouts(timeouts.connect_s, None, timeouts.acse_s, timeouts.dimse_s)
    max_pdu = parsed.int_value("max_pdu", DEFAULT_MAX_PDU, quiet=quiet) or DEFAULT_MAX_PDU
    max_send_pdu = parsed.int_value("max_send_pdu", quiet=quiet)
    repeat = parsed.int_value("repeat", 1, quiet=quiet) or 1
    proposal = parsed.str_value("proposal") or "uncompressed"
    profile = _profile_option(parsed, quiet)
    deflate_level = SendPolicy.deflate_level
    if parsed.last("compression_level") is not None:
        if not (proposal == uids.DEFLATED_LE or profile is not None):
            raise CommandLineError(
                "--compression-level only allowed with --propose-deflated or --config-file",
                quiet=quiet,
            )
        deflate_level = parsed.int_value("compression_level", quiet=quiet) or 0

    policy = SendPolicy(
        halt=parsed.last("no_halt") is None,
        repeat=repeat,
        abort_at_end=parsed.last("abort") is not None,
        uid_padding=parsed.last("uid_padding") is not None,
        read_mode=read_mode,
        rename=rename,
        prefer_deflated=proposal == uids.DEFLATED_LE,
        deflate_level=deflate_level,
        allow_lossy=parsed.last("allow_lossy") is not None,
        new_vrs=bool(parsed.value("new_vrs", True)),
        **_invent(parsed, quiet),  # type: ignore[arg-type]
    )
    return SendOptions(
        host=host,
        port=port,
        inputs=tuple(inputs),
        calling_ae=_ae_title(parsed, "calling_ae", DEFAULT_CALLING_AE),
        called_ae=_ae_title(parsed, "called_ae", DEFAULT_CALLED_AE),
        proposal=proposal,
        required_only=parsed.last("required_only") is not None,
        combine=parsed.last("combine") is not None,
        propose_own=parsed.last("propose_own") is not None,
        any_class=parsed.last("any_class") is not None,
        profile=profile,
        timeouts=timeouts,
        max_pdu=max_pdu,
        max_send_pdu=max_send_pdu,
        policy=policy,
        scan_dirs=scan_dirs,
        pattern=pattern,
        recurse=recurse,
        log_level=log_level,
        log_config=log_config,
        verbose_pc=verbose_pc,
        report=parsed.str_value("report"),
        metrics_port=parsed.str_value("metrics_port"),
        arguments=parsed.arguments if parsed.last("arguments") is not None else None,
        identity=identity_from(parsed, quiet=quiet),
        tls=tls_from(parsed, quiet=quiet, stderr=stderr),
    )


def parse_send_args(
    argv: Sequence[str],
    prog: str = "dispatch send",
    stderr: TextIO | None = None,
) -> SendOptions:
    """Parse ``dispatch send``'s arguments (without the program name).

    Raises :class:`~dispatch.cli.cmdline.CliExit` (help, version, no arguments: code 0,
    ``text`` for standard output) or :class:`~dispatch.cli.cmdline.CommandLineError`
    (code 1, ``text`` is the one line for standard error). ``--arguments`` writes its
    listing to ``stderr`` (default ``sys.stderr``) as soon as it is due.
    """
    spec = SEND_SPEC if prog == SEND_SPEC.prog else SEND_SPEC.extended(prog=prog)
    return send_options_from(parse_command_line(argv, spec), stderr)
