"""``dispatch worker``: start a Celery worker for the send tasks with the right settings.

:func:`command` builds the ``celery -A workers worker ...`` command line and its
environment (the broker goes in ``DISPATCH_BROKER_URL``, where the settings layer reads
it); :func:`main` replaces this process with it. The plain celery command works too.

The worker is visible to Celery's own tooling (``celery events``, ``celery inspect`` /
``control``, Flower): it sends task events (the app's ``worker_send_task_events``) and
heartbeats. Gossip and mingle stay off: with gossip every worker would read every other
worker's events (task events included), a cost growing with the square of the workers
for nothing this project uses; mingle only delays the start by a second, to sync revoked
tasks that no part of dispatch revokes.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence


def _at_least(minimum: int, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}: {text!r}")
    return value


def _positive(text: str) -> int:
    return _at_least(1, text)


def _autoscale(text: str) -> str:
    """``MAX[,MIN]`` as Celery takes it, checked here so a typo is one line."""
    parts = text.split(",")
    if len(parts) > 2:
        raise argparse.ArgumentTypeError(f"MAX[,MIN] expected: {text!r}")
    numbers = [_positive(p) if i == 0 else _non_negative(p) for i, p in enumerate(parts)]
    if len(numbers) == 2 and numbers[1] > numbers[0]:
        raise argparse.ArgumentTypeError(f"MIN exceeds MAX: {text!r}")
    return ",".join(str(n) for n in numbers)


def _non_negative(text: str) -> int:
    return _at_least(0, text)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dispatch worker",
        description="Run a worker of the distributed sender.",
        epilog="Arguments after -- go to `celery worker` unchanged.",
    )
    p.add_argument(
        "--concurrency",
        "-c",
        type=_positive,
        default=None,
        metavar="N",
        help="worker processes (default: one per CPU)",
    )
    p.add_argument(
        "--autoscale",
        type=_autoscale,
        default=None,
        metavar="MAX[,MIN]",
        help="grow the pool up to MAX processes under load, shrink it to MIN when idle",
    )
    p.add_argument(
        "--queues",
        "-Q",
        default=None,
        metavar="Q1,Q2",
        help="queues to consume (default: the configured queue)",
    )
    p.add_argument("--loglevel", "-l", default="info", help="log level (default: info)")
    p.add_argument("--broker", default=None, metavar="URL", help="Redis URL of the broker")
    p.add_argument("--hostname", "-n", default=None, help="node name (default: celery's)")
    p.add_argument(
        "--max-tasks-per-child",
        type=_positive,
        default=None,
        metavar="N",
        help="replace a pool process after N tasks",
    )
    p.add_argument(
        "--max-memory-per-child",
        type=_positive,
        default=None,
        metavar="KIB",
        help="replace a pool process after its task once it holds more than KIB kilobytes",
    )
    p.add_argument(
        "--prefetch-multiplier",
        type=_positive,
        default=None,
        metavar="N",
        help="tasks each process reserves ahead (default 1: a busy worker hoards none)",
    )
    p.add_argument(
        "--metrics-port",
        default=None,
        metavar="[HOST:]PORT",
        help="serve Prometheus metrics on [HOST:]PORT (HTTP /metrics; host default: all)",
    )
    return p


def _split(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """``dispatch worker`` arguments, and those after ``--`` (for celery)."""
    args = list(argv)
    if "--" in args:
        at = args.index("--")
        return args[:at], args[at + 1 :]
    return args, []


_PASSED = (
    ("concurrency", "--concurrency"),
    ("autoscale", "--autoscale"),
    ("queues", "--queues"),
    ("hostname", "--hostname"),
    ("max_tasks_per_child", "--max-tasks-per-child"),
    ("max_memory_per_child", "--max-memory-per-child"),
    ("prefetch_multiplier", "--prefetch-multiplier"),
    ("metrics_port", "--metrics-port"),
)
"""Options given to celery as they are, when set."""


def command(
    argv: Sequence[str], environ: Mapping[str, str] | None = None
) -> tuple[list[str], dict[str, str]]:
    """The celery command line and environment for ``dispatch worker argv``."""
    own, extra = _split(argv)
    args = parser().parse_args(own)
    env = dict(os.environ if environ is None else environ)
    if args.broker:
        env["DISPATCH_BROKER_URL"] = args.broker
    cmd = [sys.executable, "-m", "celery", "-A", "workers", "worker", "--pool", "prefork"]
    cmd += ["--loglevel", args.loglevel]
    for name, option in _PASSED:
        value = getattr(args, name)
        if value is not None:
            cmd += [option, str(value)]
    # Heartbeats and task events on (see the module docstring); gossip and mingle off.
    cmd += ["--without-gossip", "--without-mingle"]
    return cmd + extra, env


def main(argv: Sequence[str] | None = None) -> int:
    """Replace this process with the worker; returns only if that fails."""
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(_split(argv)[0])
    if args.metrics_port is not None:
        from dispatch.errors import UsageError
        from dispatch.observe import parse_listen_address

        try:
            parse_listen_address(args.metrics_port)
        except UsageError as exc:
            print(f"dispatch worker: {exc}", file=sys.stderr)
            return 1
    cmd, env = command(argv)
    try:
        os.execve(cmd[0], cmd, env)
    except OSError as exc:
        print(f"dispatch worker: cannot start celery: {exc.strerror}", file=sys.stderr)
    return 1
