"""The job commands: ``dispatch status|watch|jobs|report|retry|cancel``, and what
``dispatch submit`` does once a job has ended (report, summary, exit code).

They read the job records in Redis (the broker's, unless the settings name another),
so they work from any host that reaches it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import TYPE_CHECKING

from dispatch.errors import DispatchError, UnknownJob, UsageError
from dispatch.jobs.enqueue import store_for
from dispatch.outcome import FileOutcome
from dispatch.report import write_report

if TYPE_CHECKING:
    from dispatch.jobs.store import JobProgress, JobStore

__all__ = ["exit_code", "finish_job", "run", "store_for", "write_report"]


def exit_code(final: JobProgress, outcomes: Sequence[FileOutcome], halt: bool) -> int:
    """The exit code of a whole job: storescu's (see :func:`store_exit_code`); with
    ``--commit``, when that is 0, 1 unless every stored file is committed (as
    ``dispatch send --commit``)."""
    code = store_exit_code(final, outcomes, halt)
    if code == 0 and final.commit and final.committed < final.stored:
        return 1
    return code


def store_exit_code(final: JobProgress, outcomes: Sequence[FileOutcome], halt: bool) -> int:
    """storescu's exit code for a whole job.

    Completed: 0. Halted by a failure status: status >> 8; halted otherwise (bad file,
    no presentation context, retries exhausted): 1. With ``--no-halt`` a job that ran to
    its end (even with nothing stored) with failures answered by the peer or files
    skipped as unusable: 0, as storescu; any file left unsent for network reasons
    (retries spent, association refused) or an internal error: 1. Cancelled, or failed with halt: 1.
    """
    from dispatch.jobs.model import JobState
    from dispatch.status import StatusCategory, category

    if final.state is JobState.COMPLETED:
        return 0
    if final.state is JobState.HALTED:
        for item in outcomes:
            if (
                item.path == final.halted_path
                and item.status is not None
                and category(item.status) is StatusCategory.FAILURE
            ):
                return item.status >> 8
        return 1
    if final.state in (JobState.COMPLETED_WITH_FAILURES, JobState.FAILED) and not halt:
        unreached = any(o.status is None and o.reason.startswith(_NETWORK_REASONS)
                        for o in outcomes)  # fmt: skip
        return 1 if unreached else 0
    return 1


_NETWORK_REASONS = ("retries exhausted", "association failed", "internal error")
"""Reasons of outcomes whose file never reached the peer for network reasons (retries
spent, association refused), or for a fault of the sender itself: storescu exits 1 for
those even with ``--no-halt``."""


def finish_job(store: JobStore, final: JobProgress, report: str | None, *, quiet: bool) -> int:
    """After a job ended: write the report, print the summary, return the exit code."""
    from dispatch.cli.progress import summary_lines
    from dispatch.jobs.model import JobState

    # A completed job exits 0 whatever its outcomes: read them only for a report (a
    # job of many files takes a while to read back).
    needed = report or final.state is not JobState.COMPLETED
    outcomes = sorted(store.report(final.job_id), key=lambda o: o.path) if needed else []
    if report:
        write_job_report(store, final, report, outcomes)
    if not quiet:
        for line in summary_lines(final):
            print(line)
    return exit_code(final, outcomes, store.spec(final.job_id).policy.halt)


# -- the job commands ------------------------------------------------------------------


def _parser(prog: str, help_text: str, job: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"dispatch {prog}", description=help_text)
    if job:
        parser.add_argument("job", help="the job id printed by dispatch submit")
    parser.add_argument("--broker", help="Redis URL of the broker (default: the settings)")
    parser.add_argument("--config", help="settings file (default: DISPATCH_CONFIG)")
    return parser


def _store(args: argparse.Namespace) -> JobStore:
    from dispatch.jobs.config import load_config

    return store_for(load_config(args.config, overrides={"broker_url": args.broker}))


def _status(argv: Sequence[str]) -> int:
    from dispatch.cli.progress import progress_line, summary_lines
    from dispatch.jobs.destinations import waiting_line

    parser = _parser("status", "show a job's state, counts, rate and failures")
    parser.add_argument("--json", action="store_true", help="one JSON object (see README)")
    args = parser.parse_args(argv)
    store = _store(args)
    snapshot = store.progress(args.job)
    if args.json:
        from dispatch.cli.job_json import job_object

        print(json.dumps(job_object(snapshot)))
        return 0
    print(progress_line(snapshot))
    if not snapshot.is_finished:
        waiting = store.destination(snapshot.destination)
        if waiting.waiting:
            print(waiting_line(waiting))
    for line in summary_lines(snapshot):
        print(line)
    return 0


def _watch(argv: Sequence[str]) -> int:
    from dispatch.cli.progress import ProgressDisplay, summary_lines
    from dispatch.jobs.destinations import WaitingNotices
    from dispatch.jobs.enqueue import wait_for_job

    args = _parser("watch", "follow a job's progress until it ends").parse_args(argv)
    store = _store(args)
    display = ProgressDisplay(sys.stderr, sys.stderr.isatty())

    def waiting(line: str) -> None:
        display.close()
        print(f"W: {line}", file=sys.stderr)

    notices = WaitingNotices(store.destination, waiting)

    def on_progress(snapshot: JobProgress) -> None:
        display(snapshot)
        notices(snapshot)

    try:
        final = wait_for_job(store, args.job, on_progress)
    except KeyboardInterrupt:
        from dispatch.cli.submit import stopped_waiting

        display.close()
        print(f"dispatch watch: {stopped_waiting(args.job)}", file=sys.stderr)
        return 130
    display.close()
    for line in summary_lines(final):
        print(line)
    return exit_code(final, list(store.report(args.job)), store.spec(args.job).policy.halt)


def _jobs(argv: Sequence[str]) -> int:
    parser = _parser("jobs", "list recent jobs, newest first", job=False)
    parser.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    parser.add_argument("--json", action="store_true", help="a JSON array (see README)")
    args = parser.parse_args(argv)
    found = _store(args).jobs(args.limit)
    if args.json:
        from dispatch.cli.job_json import job_object

        print(json.dumps([job_object(p) for p in found]))
        return 0
    for p in found:
        print(
            f"{p.job_id}  {p.state.value:<24} {p.done}/{p.total_files} files"
            f"  stored {p.stored}, failed {p.failed}, not sent {p.not_sent}"
            f"  submitted {_clock(p.created)}  started {_clock(p.started)}"
            f"  finished {_clock(p.finished)}  {p.destination}  {p.name}"
        )
    return 0


def _clock(epoch_s: float) -> str:
    """Local time to the second, ``-`` for not yet."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch_s)) if epoch_s else "-"


def _report(argv: Sequence[str]) -> int:
    parser = _parser("report", "every file's outcome in a job")
    parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    parser.add_argument("--output", "-o", default="-", help="file to write (default: stdout)")
    args = parser.parse_args(argv)
    store = _store(args)
    store.progress(args.job)  # an unknown job is an error, not an empty report
    # Streamed in the store's order (submission order): sorting would hold the whole
    # job in memory.
    write_job_report(store, store.progress(args.job), args.output, store.report(args.job),
                     args.format)  # fmt: skip
    return 0


_COMMIT_BATCH = 500
"""Outcomes whose commitment states are read in one round trip."""


def _batches(items: Iterable[FileOutcome], size: int) -> Iterator[list[FileOutcome]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def write_job_report(
    store: JobStore,
    job: JobProgress,
    path: str,
    outcomes: Iterable[FileOutcome],
    fmt: str = "jsonl",
) -> None:
    """Write ``outcomes`` of ``job`` as :func:`write_report` does; a job with
    ``--commit`` adds each file's commitment state and reason, read in batches (a
    stored file without one yet: ``commit_pending``, "commitment not requested yet")."""
    from dispatch.outcome import Outcome
    from dispatch.report import ReportWriter

    if not job.commit:
        write_report(path, outcomes, fmt)
        return
    writer = ReportWriter(path, fmt, commitment=True)
    try:
        for batch in _batches(outcomes, _COMMIT_BATCH):
            states = store.commitment(job.job_id, [o.path for o in batch])
            for outcome in batch:
                state = ("", "")
                if outcome.outcome is Outcome.STORED:
                    missing = ("commit_pending", "commitment not requested yet")
                    state = states.get(outcome.path, missing)
                writer.write(outcome, commitment=state)
    finally:
        writer.close()


def _cancel(argv: Sequence[str]) -> int:
    args = _parser("cancel", "stop a job: running tasks stop after their file").parse_args(argv)
    store = _store(args)
    store.progress(args.job)  # an unknown job is not one that "has already ended"
    if store.cancel(args.job):
        print(f"job {args.job} cancelled")
        return 0
    print(f"job {args.job} has already ended", file=sys.stderr)
    return 1


def _retry(argv: Sequence[str]) -> int:
    from dispatch.jobs.config import load_config
    from dispatch.jobs.enqueue import publisher_for, send_chunks

    args = _parser("retry", "send again only the files of a job that failed").parse_args(argv)
    config = load_config(args.config, overrides={"broker_url": args.broker})
    store = store_for(config)
    if not config.broker_url:
        raise UsageError("no broker configured: give --broker URL or set DISPATCH_BROKER_URL")
    chunk_ids = store.reopen(args.job)
    if not chunk_ids:
        print(f"job {args.job}: nothing to retry")
        return 0
    spec = store.spec(args.job)
    send_chunks(publisher_for(config), spec, chunk_ids)
    from dispatch.logtext import counted

    print(f"job {args.job}: {counted(len(chunk_ids), 'task')} sent again")
    return 0


COMMANDS = {
    "status": _status,
    "watch": _watch,
    "jobs": _jobs,
    "report": _report,
    "retry": _retry,
    "cancel": _cancel,
}


def run(command: str, argv: Sequence[str]) -> int:
    """Run one job command; errors (Redis unreachable included) become one line on
    standard error and exit 1."""
    try:
        return COMMANDS[command](argv)
    except UnknownJob as exc:
        print(f"dispatch {command}: unknown or expired job: {exc}", file=sys.stderr)
        return 1
    except DispatchError as exc:
        print(f"dispatch {command}: {exc}", file=sys.stderr)
        return 1
