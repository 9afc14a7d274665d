"""``dispatch worker``: start a Celery worker for the send tasks with the right settings.

:func:`command` builds the ``celery -A workers worker ...`` command line and its
environment (the broker goes in ``DISPATCH_BROKER_URL``, where the settings layer reads
it); :func:`main` replaces this process with it. The plain celery command works too.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dispatch worker", description="Run a worker of the distributed sender."
    )
    p.add_argument(
        "--concurrency",
        "-c",
        type=int,
        default=None,
        metavar="N",
        help="worker processes (default: one per CPU)",
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
        "--metrics-port",
        default=None,
        metavar="[HOST:]PORT",
        help="serve Prometheus metrics on [HOST:]PORT (HTTP /metrics; host default: all)",
    )
    return p


def command(
    argv: Sequence[str], environ: Mapping[str, str] | None = None
) -> tuple[list[str], dict[str, str]]:
    """The celery command line and environment for ``dispatch worker argv``."""
    args = parser().parse_args(list(argv))
    env = dict(os.environ if environ is None else environ)
    if args.broker:
        env["DISPATCH_BROKER_URL"] = args.broker
    cmd = [sys.executable, "-m", "celery", "-A", "workers", "worker", "--pool", "prefork"]
    cmd += ["--loglevel", args.loglevel]
    if args.concurrency:
        cmd += ["--concurrency", str(args.concurrency)]
    if args.queues:
        cmd += ["--queues", args.queues]
    if args.hostname:
        cmd += ["--hostname", args.hostname]
    if args.metrics_port:
        cmd += ["--metrics-port", args.metrics_port]
    # Gossip, mingle and worker heartbeats are Celery's cluster chatter: the reaper and
    # the leases do what this project needs, without the broker traffic.
    cmd += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    return cmd, env


def main(argv: Sequence[str] | None = None) -> int:
    """Replace this process with the worker; returns only if that fails."""
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(list(argv))
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
