"""The ``dispatch`` command: one entry point, one sub-command per job.

Sub-commands import what they need only when they run, so that a one-file
``dispatch send`` pays for neither Celery nor Redis.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

USAGE = """\
usage: dispatch COMMAND [options] ...

commands:
  send      send DICOM files to a Storage SCP over one association (storescu's options)
  echo      check a peer with C-ECHO (echoscu's options)
  submit    send them as a job: grouped by study, sent by workers (or in this process)
  worker    run a worker of the distributed sender (Celery)
  commit-listener  receive storage commitment reports for jobs (submit --commit)
  status    a job's state, counts, rate and failures
  watch     follow a job's progress until it ends
  jobs      recent jobs
  report    every file's outcome in a job (--format jsonl|csv)
  retry     send again only the files of a job that failed
  cancel    stop a job

Run 'dispatch COMMAND --help' for a command's options.
"""


def _send(argv: Sequence[str]) -> int:
    from dispatch.cli.send import run

    return run(argv)


def _echo(argv: Sequence[str]) -> int:
    from dispatch.cli.echo import run

    return run(argv)


def _submit(argv: Sequence[str]) -> int:
    from dispatch.cli.submit import run

    return run(argv)


def _commit_listener(argv: Sequence[str]) -> int:
    from dispatch.cli.commit_listener import run

    return run(argv)


def _worker(argv: Sequence[str]) -> int:
    # The workers package is started as a program of its own: dispatch never imports it.
    os.execv(sys.executable, [sys.executable, "-m", "workers", *argv])
    return 1  # pragma: no cover - execv does not return


def _job_command(name: str) -> Callable[[Sequence[str]], int]:
    def command(argv: Sequence[str]) -> int:
        from dispatch.cli.jobs import run

        return run(name, argv)

    return command


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "send": _send,
    "echo": _echo,
    "submit": _submit,
    "worker": _worker,
    "commit-listener": _commit_listener,
    **{
        name: _job_command(name)
        for name in ("status", "watch", "jobs", "report", "retry", "cancel")
    },
}


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
        code = command(args[1:])
        sys.stdout.flush()  # a reader that went away is met here, not at exit
        return code
    except KeyboardInterrupt:
        print("dispatch: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `dispatch report JOB | head`: the reader has what it wanted. Whatever is still
        # buffered goes nowhere, so that the exit does not fail on it.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0


if __name__ == "__main__":
    sys.exit(main())
