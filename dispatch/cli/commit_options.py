"""``dispatch send``'s storage commitment options (``--commit``, ``--commit-port``,
``--commit-timeout``; ``--commit-resends`` for ``dispatch submit``) and their
conversion into
:class:`~dispatch.commitment.CommitmentSettings`."""

from __future__ import annotations

from dispatch.cli.cmdline import CommandLineError, OptionSpec, ParsedCommandLine, ValueSpec
from dispatch.commitment import CommitmentSettings

__all__ = ["COMMIT_SECTION", "commit_from", "commit_options"]

COMMIT_SECTION = "storage commitment options"
DEFAULT_COMMIT_TIMEOUT_S = 300.0
DEFAULT_COMMIT_RESENDS = 1


def commit_options(*, resends: bool = False) -> list[OptionSpec]:
    """The options, in :data:`COMMIT_SECTION`; with ``resends``, ``--commit-resends``
    too (a job sends again what failed commitment; ``dispatch send`` does not)."""
    options = [
        OptionSpec(
            ("--commit",), "commit", section=COMMIT_SECTION,
            help="request storage commitment of the stored files\n"
            "(N-ACTION after the association; report per file)",
        ),
        OptionSpec(
            ("--commit-port",), "commit_port", nargs=1, section=COMMIT_SECTION,
            metavar="[a]ddress: [host:]port",
            help="listen on a for reports the peer sends on an\n"
            "association of its own (as our AE title, -aet)",
        ),
        OptionSpec(
            ("--commit-timeout",), "commit_timeout", nargs=1,
            value=ValueSpec("seconds", minimum=0.001), section=COMMIT_SECTION,
            metavar="[s]econds: number (default: 300)",
            help="wait at most s for the report; then pending",
        ),
    ]  # fmt: skip
    if resends:
        options.append(OptionSpec(
            ("--commit-resends",), "commit_resends", nargs=1,
            value=ValueSpec("uint", minimum=0), section=COMMIT_SECTION,
            metavar="[n]umber: integer (default: 1)",
            help="send again a file whose commitment failed,\n"
            "and ask again, up to n times; then it failed",
        ))  # fmt: skip
    return options


def commit_from(parsed: ParsedCommandLine, *, quiet: bool = False) -> CommitmentSettings | None:
    """The commitment settings of a parsed command line; None without ``--commit``.
    ``--commit-port`` and ``--commit-timeout`` are refused without it."""
    enabled = parsed.last("commit") is not None
    for dest in ("commit_port", "commit_timeout", "commit_resends"):
        occ = parsed.last(dest)
        if occ is not None and not enabled:
            name = occ.option.long_name
            raise CommandLineError(f"{name} only allowed with --commit", quiet=quiet)
    if not enabled:
        return None
    timeout_s = parsed.float_value("commit_timeout", DEFAULT_COMMIT_TIMEOUT_S, quiet=quiet)
    listen = None
    address = parsed.str_value("commit_port")
    if address is not None:
        host, _, port_text = address.rpartition(":")
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise CommandLineError(f"invalid value for --commit-port: {address}", quiet=quiet)
        listen = (host.strip("[]"), int(port_text))
    resends = parsed.int_value("commit_resends", quiet=quiet)
    return CommitmentSettings(
        timeout_s=timeout_s or DEFAULT_COMMIT_TIMEOUT_S,
        listen=listen,
        resends=DEFAULT_COMMIT_RESENDS if resends is None else resends,
    )
