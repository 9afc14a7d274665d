"""The ``dispatch`` command: one entry point, one sub-command per job.

Sub-commands import what they need only when they run, so that a one-file
``dispatch send`` pays for neither Celery nor Redis.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

USAGE = """\
usage: dispatch COMMAND [options] ...

commands:
  send      send DICOM files to a Storage SCP over one association (storescu's options)

Run 'dispatch COMMAND --help' for a command's options.
"""


def _send(argv: Sequence[str]) -> int:
    from dispatch.cli.send import run

    return run(argv)


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {"send": _send}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``dispatch`` with ``argv`` (default: the process arguments); return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0
    if args[0] == "--version":
        from dispatch import __version__

        print(f"dispatch {__version__}")
        return 0
    command = COMMANDS.get(args[0])
    if command is None:
        print(f"dispatch: unknown command '{args[0]}'\n", file=sys.stderr)
        sys.stderr.write(USAGE)
        return 1
    try:
        return command(args[1:])
    except KeyboardInterrupt:
        print("dispatch: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
