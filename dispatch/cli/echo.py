"""``dispatch echo``: echoscu's command line (network, TLS and user identity options),
one or more C-ECHOs through the project's own association engine.

The option table is taken from ``dispatch send``'s (the same spellings, values and
checks), restricted to what echoscu has; the run is :func:`dispatch.echo.run`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from dispatch.cli.cmdline import (
    CliExit,
    CommandLineError,
    CommandSpec,
    OptionSpec,
    ParamSpec,
    ParsedCommandLine,
    check_params,
    convert_param,
    format_arguments,
    parse_command_line,
)
from dispatch.cli.logs import configure
from dispatch.cli.options import SEND_SPEC
from dispatch.cli.tls_options import identity_from, tls_from
from dispatch.errors import UsageError
from dispatch.logtext import printable
from dispatch.settings import DEFAULT_CALLED_AE, DEFAULT_MAX_PDU, AssociationSettings, Timeouts

__all__ = ["DEFAULT_ECHO_AE", "ECHO_SPEC", "parse_echo_args", "run"]

DEFAULT_ECHO_AE = "ECHOSCU"

_SEND_ONLY_NETWORK = {
    "profile",
    "proposal",
    "required_only",
    "combine",
    "propose_own",
    "any_class",
    "allow_lossy",
    "new_vrs",
    "compression_level",
    "max_send_pdu",
    "no_halt",
    "uid_padding",
    "invent_instance",
    "invent_series",
    "invent_study",
    "invent_patient",
}
"""Options of ``dispatch send``'s network section that echoscu does not have."""


def _echo_option(opt: OptionSpec) -> OptionSpec | None:
    """``opt`` as ``dispatch echo`` has it, None when echoscu has no such option."""
    if opt.section in ("input options", "output options") or opt.dest in _SEND_ONLY_NETWORK:
        return None
    if opt.dest in ("verbose_pc",) or opt.dest.startswith("refused:-x"):
        return None
    if opt.dest == "calling_ae":
        return dataclasses.replace(
            opt, help=f"set my calling AE title (default: {DEFAULT_ECHO_AE})"
        )
    return opt


ECHO_SPEC = CommandSpec(
    prog="dispatch echo",
    description="DICOM verification (C-ECHO) SCU",
    params=(
        ParamSpec("peer", "hostname of DICOM peer"),
        ParamSpec("port", "tcp/ip port number of peer"),
    ),
    options=tuple(o for o in map(_echo_option, SEND_SPEC.options) if o is not None),
    sections=tuple(s for s in SEND_SPEC.sections if s not in ("input options", "output options")),
    version=SEND_SPEC.version,
)


@dataclass(frozen=True)
class EchoOptions:
    """What ``dispatch echo`` was asked to do."""

    settings: AssociationSettings
    repeat: int = 1
    abort: bool = False
    log_level: str = "warn"


def echo_options_from(parsed: ParsedCommandLine) -> EchoOptions:
    """Check and convert a parsed ``dispatch echo`` command line, in echoscu's order:
    refused options, parameters, logging, then network and TLS options."""
    from dispatch.net.verification import VERIFICATION_CONTEXTS

    for occ in parsed.occurrences:
        if occ.option.refused:
            name, long = occ.name or occ.option.long_name, occ.option.long_name
            spelled = name if name == long else f"{name} ({long})"
            raise CommandLineError(f"Option {spelled} is not supported by {parsed.spec.prog}")
    check_params(parsed)
    host, port_text = parsed.params
    port = convert_param(port_text, 1, 65535)
    verbosity = parsed.last("verbosity")
    if parsed.last("log_level") is not None:
        if verbosity is not None:
            raise CommandLineError("--log-level not allowed with --verbose, --debug or --quiet")
        log_level = parsed.str_value("log_level") or "warn"
    else:
        log_level = str(verbosity.option.const) if verbosity is not None else "warn"
    quiet = log_level == "fatal"
    if parsed.last("arguments") is not None:
        import sys

        print(format_arguments(parsed.spec.prog, parsed.arguments), file=sys.stderr)
    timeouts = Timeouts(
        connect_s=parsed.float_value("connect_timeout", None, quiet=quiet),
        socket_s=parsed.float_value("socket_timeout", 60.0, quiet=quiet),
        acse_s=parsed.float_value("acse_timeout", 30.0, quiet=quiet),
        dimse_s=parsed.float_value("dimse_timeout", None, quiet=quiet),
    )
    if timeouts.socket_s is not None and timeouts.socket_s <= 0:
        timeouts = dataclasses.replace(timeouts, socket_s=None)
    settings = AssociationSettings(
        host=host,
        port=port,
        contexts=VERIFICATION_CONTEXTS,
        calling_ae=parsed.str_value("calling_ae") or DEFAULT_ECHO_AE,
        called_ae=parsed.str_value("called_ae") or DEFAULT_CALLED_AE,
        max_pdu=parsed.int_value("max_pdu", DEFAULT_MAX_PDU, quiet=quiet) or DEFAULT_MAX_PDU,
        timeouts=timeouts,
        identity=identity_from(parsed, quiet=quiet),
        tls=tls_from(parsed, quiet=quiet),
    )
    return EchoOptions(
        settings=settings,
        repeat=parsed.int_value("repeat", 1, quiet=quiet) or 1,
        abort=parsed.last("abort") is not None,
        log_level=log_level,
    )


def parse_echo_args(argv: Sequence[str]) -> EchoOptions:
    """Parse ``dispatch echo``'s arguments (without the program name). Raises
    :class:`~dispatch.cli.cmdline.CliExit` for help, version and command-line errors."""
    return echo_options_from(parse_command_line(argv, ECHO_SPEC))


def run(argv: Sequence[str]) -> int:
    """Run ``dispatch echo``; return its exit code (see :mod:`dispatch.echo`)."""
    try:
        opts = parse_echo_args(argv)
    except CliExit as exc:
        return exc.emit()
    log = configure(opts.log_level)
    from dispatch.echo import run as run_echo

    try:
        return run_echo(opts.settings, opts.repeat, opts.abort).exit_code
    except UsageError as exc:
        log.critical("%s", printable(exc))
        return 1
