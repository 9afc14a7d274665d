"""``dispatch commit-listener [--broker URL] [--config FILE] [-aet AE] [HOST:]PORT``:
the listener for storage commitment reports of jobs submitted with ``--commit``, as a
process of its own (one per cluster, or one per host).

It accepts the associations destinations open to send N-EVENT-REPORTs (see
:mod:`dispatch.commit_listener`) and records each report in the job store, where the
runner that asked waits for it (:mod:`dispatch.jobs.commit_chunk`); a report for a
transaction the store does not know is answered with success and logged. It runs
until SIGTERM or Ctrl-C (exit 0); an address it cannot listen on is one line, exit 1.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Sequence
from types import FrameType

from dispatch.commitment import CommitmentReport
from dispatch.errors import DispatchError
from dispatch.logtext import printable

__all__ = ["run"]

log = logging.getLogger("dispatch.commit")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dispatch commit-listener",
        description="receive storage commitment reports for jobs submitted with --commit",
    )
    parser.add_argument(
        "address",
        metavar="[HOST:]PORT",
        help="where destinations open associations (default host: all)",
    )
    parser.add_argument(
        "-aet",
        "--aetitle",
        default="STORESCU",
        help="our AE title, as the jobs' -aet (default: STORESCU)",
    )
    parser.add_argument("--broker", help="Redis URL of the broker (default: the settings)")
    parser.add_argument("--config", help="settings file (default: DISPATCH_CONFIG)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every report")
    return parser  # fmt: skip


def _address(text: str) -> tuple[str, int]:
    host, _, port_text = text.rpartition(":")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise DispatchError(f"invalid address {text!r}: expected [HOST:]PORT")
    return host.strip("[]"), int(port_text)


def run(argv: Sequence[str]) -> int:
    """Run the listener until it is stopped; the exit code."""
    from dispatch.cli.logs import configure
    from dispatch.commit_listener import CommitmentListener
    from dispatch.jobs.config import load_config
    from dispatch.jobs.enqueue import store_for

    args = _parser().parse_args(argv)
    configure("info" if args.verbose else "warn")
    try:
        host, port = _address(args.address)
        store = store_for(load_config(args.config, overrides={"broker_url": args.broker}))

        def record(report: CommitmentReport) -> None:
            if store.commit_reported(report) is None:
                log.warning(
                    "storage commitment report for an unknown transaction %s",
                    printable(report.transaction_uid),
                )

        listener = CommitmentListener(args.aetitle, host, port, on_report=record)
    except DispatchError as exc:
        log.critical("%s", printable(exc))
        return 1
    stop = threading.Event()

    def stop_on(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, stop_on)
    signal.signal(signal.SIGINT, stop_on)
    print(f"listening for storage commitment reports on {host or '*'}:{listener.port}"
          f" as {args.aetitle}", flush=True)  # fmt: skip
    try:
        stop.wait()
    finally:
        listener.stop()
    return 0
