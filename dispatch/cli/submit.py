"""``dispatch submit``: storescu's options plus queue options; the files are grouped by
study into chunks, and the chunks sent by Celery workers (with ``--broker``) or by the
same code on ``--jobs`` threads in this process (no broker: the embedded mode).

The command line only: what a submission does is :func:`dispatch.jobs.submit.submit`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from dispatch.cli.cmdline import (
    CliExit,
    OptionSpec,
    ParsedCommandLine,
    ValueSpec,
    parse_command_line,
)
from dispatch.cli.commit_options import COMMIT_SECTION, commit_from, commit_options
from dispatch.cli.logs import configure_for
from dispatch.cli.options import SEND_SPEC, SendOptions, send_options_from
from dispatch.errors import DispatchError, UsageError
from dispatch.logtext import printable

if TYPE_CHECKING:
    from dispatch.cli.progress import ProgressDisplay
    from dispatch.commitment import CommitmentSettings
    from dispatch.jobs.model import JobSpec
    from dispatch.jobs.store import JobStore
    from dispatch.jobs.submit import Submission, Submitted
    from dispatch.observe import SendObserver
    from dispatch.outcome import FileOutcome

_Q = "queue options"


def _queue_options() -> list[OptionSpec]:
    def number(names: tuple[str, ...], dest: str, metavar: str, text: str) -> OptionSpec:
        return OptionSpec(
            names, dest, nargs=1, value=ValueSpec("uint", minimum=1), section=_Q,
            metavar=metavar, help=text,
        )  # fmt: skip

    return [
        OptionSpec(
            ("--broker",), "broker", nargs=1, section=_Q, metavar="[u]rl: string",
            help="Redis URL of the workers' broker (default: DISPATCH_BROKER_URL or the\n"
            "settings file; none: run the job in this process)",
        ),
        OptionSpec(
            ("--config",), "config", nargs=1, section=_Q, metavar="[f]ilename: string",
            help="read settings from f (default: DISPATCH_CONFIG)",
        ),
        OptionSpec(
            ("--job-name",), "job_name", nargs=1, section=_Q, metavar="[n]ame: string",
            help="a name for the job (default: the first input)",
        ),
        number(("--chunk",), "chunk", "[n]umber: integer", "at most n files per task"),
        number(
            ("--max-associations",), "max_associations", "[n]umber: integer",
            "at most n simultaneous associations to this peer",
        ),
        OptionSpec(
            ("--retries",), "retries", nargs=1, value=ValueSpec("uint", minimum=0),
            section=_Q, metavar="[n]umber: integer",
            help="retry transient failures n times (default: settings file, 3)",
        ),
        OptionSpec(
            ("--retry-for",), "retry_for", nargs=1, section=_Q, metavar="[d]uration: string",
            help="wait out a peer that cannot be reached for d (90s, 30m, 4h; default:\n"
            "settings file, 4h)",
        ),
        number(
            ("--jobs",), "jobs", "[n]umber: integer",
            "parallel associations without a broker (default: 2)",
        ),
        OptionSpec(
            ("--wait",), "wait", const=True, section=_Q,
            help="show progress and wait for the job to end (default on a terminal)",
        ),
        OptionSpec(
            ("--no-wait",), "wait", const=False, section=_Q,
            help="print the job id and return at once",
        ),
        OptionSpec(
            ("--no-check",), "no_check", section=_Q,
            help="do not check the destination before the scan\n"
            "(default: one association with the job's contexts)",
        ),
    ]  # fmt: skip


SUBMIT_SPEC = SEND_SPEC.extended(
    prog="dispatch submit",
    description="submit DICOM files to be sent by workers (C-STORE SCU)",
    options=[*_queue_options(), *commit_options(resends=True)],
    sections=[_Q, COMMIT_SECTION],
)


@dataclass(frozen=True)
class QueueOptions:
    """The options ``dispatch submit`` adds to storescu's."""

    broker: str | None
    config: str | None
    job_name: str | None
    chunk: int | None
    max_associations: int | None
    retries: int | None
    jobs: int
    wait: bool
    check: bool = True
    """Check the destination before the scan (``--no-check``: False)."""
    retry_for: str | None = None
    commit: CommitmentSettings | None = None
    """``--commit`` and its options (None without)."""


def parse_submit_args(argv: Sequence[str]) -> tuple[SendOptions, QueueOptions]:
    """Parse ``dispatch submit``'s arguments; raises like :func:`parse_send_args`."""
    parsed: ParsedCommandLine = parse_command_line(argv, SUBMIT_SPEC)
    send = send_options_from(parsed)
    wait = parsed.value("wait")
    queue = QueueOptions(
        broker=parsed.str_value("broker"),
        config=parsed.str_value("config"),
        job_name=parsed.str_value("job_name"),
        chunk=parsed.int_value("chunk"),
        max_associations=parsed.int_value("max_associations"),
        retries=parsed.int_value("retries"),
        jobs=parsed.int_value("jobs", 2) or 2,
        wait=sys.stdout.isatty() if wait is None else bool(wait),
        check=parsed.last("no_check") is None,
        retry_for=parsed.str_value("retry_for"),
        commit=commit_from(parsed, quiet=send.log_level == "fatal"),
    )
    return send, queue


def run(argv: Sequence[str]) -> int:
    """Run ``dispatch submit``; return the job's exit code (storescu's rules)."""
    try:
        send, queue = parse_submit_args(argv)
    except CliExit as exc:  # help, version, or a command line error
        return exc.emit()
    try:
        log = configure_for(send.log_level, send.log_config)
    except CliExit as exc:  # a log file of -lc that cannot be opened
        return exc.emit()
    try:
        return _submit(send, queue, log)
    except DispatchError as exc:
        log.critical("%s", printable(exc))
        return 1


def submission(send: SendOptions, queue: QueueOptions) -> Submission:
    """The submission a command line asks for; :class:`UsageError` for options that
    ``dispatch submit`` does not take together."""
    from dispatch.cli.send import association_settings
    from dispatch.jobs.config import load_config
    from dispatch.jobs.destinations import parse_duration
    from dispatch.jobs.submit import Inputs, Submission

    overrides: dict[str, object] = {
        "broker_url": queue.broker,
        "retries": queue.retries,
        "chunk_files": queue.chunk,
        "max_associations": queue.max_associations,
    }
    if queue.retry_for is not None:
        try:
            overrides["retry_for_s"] = parse_duration(queue.retry_for)
        except ValueError:
            raise UsageError(
                f"bad --retry-for {queue.retry_for!r}: expected a duration such as 90s, 30m, 4h"
            ) from None
    config = load_config(queue.config, overrides=overrides)
    if send.propose_own:
        # A job proposes one set of contexts for all its chunks, known before the scan ends.
        raise UsageError("--propose-own is not available with dispatch submit")
    if send.any_class:
        raise UsageError("--any-class is not available with dispatch submit")
    if config.broker_url and not queue.wait and send.report:
        # Only a waiting submit writes the report: without --wait it would silently not be.
        raise UsageError(
            "--report needs --wait with a broker (or run 'dispatch report JOB' once it ended)"
        )
    return Submission(
        inputs=Inputs(send.inputs, send.scan_dirs, send.pattern, send.recurse),
        settings=association_settings(send, None),
        policy=send.policy,
        config=config,
        name=queue.job_name or "",
        jobs=queue.jobs,
        max_associations=queue.max_associations,
        wait=queue.wait,
        settings_for_classes=partial(association_settings, send) if send.required_only else None,
        check_destination=queue.check,
        commit=queue.commit,
    )


def _submit(send: SendOptions, queue: QueueOptions, log: logging.Logger) -> int:
    from dispatch.cli.progress import ProgressDisplay
    from dispatch.jobs.submit import Watchers, submit

    request = submission(send, queue)
    quiet = send.log_level == "fatal"
    display = ProgressDisplay(sys.stderr, sys.stderr.isatty() and not quiet)

    def problem(outcome: FileOutcome) -> None:
        log.error("not sent: %s: %s", printable(outcome.path), printable(outcome.reason))

    created: list[JobSpec] = []

    def on_created(spec: JobSpec) -> None:
        created.append(spec)
        _print_job_id(spec)

    watchers = Watchers(
        on_created=on_created,
        on_problem=problem,
        progress=None if quiet else display,
        observe=partial(_observe_in_process, send.metrics_port) if send.metrics_port else None,
        on_waiting=partial(_waiting, display, log),
    )
    try:
        done = submit(request, watchers)
    except KeyboardInterrupt:
        if not created or not request.config.broker_url:
            raise
        display.close()
        log.critical("%s", stopped_waiting(created[0].job_id))
        return 130
    return _exit_code(done, send, display, log)


def _waiting(display: ProgressDisplay, log: logging.Logger, line: str) -> None:
    """A line about the job's destination, on a line of its own below the progress."""
    display.close()
    log.warning("%s", line)


def stopped_waiting(job_id: str) -> str:
    """What a user who stopped following a job run by the workers (Ctrl-C while it is
    submitted or waited for) is told."""
    return (
        f"stopped; job {job_id} goes on with the files submitted so far: follow it with"
        f" 'dispatch watch {job_id}', stop it with 'dispatch cancel {job_id}'"
    )


def _print_job_id(spec: JobSpec) -> None:
    print(spec.job_id)
    sys.stdout.flush()


def _exit_code(
    done: Submitted, send: SendOptions, display: ProgressDisplay, log: logging.Logger
) -> int:
    """Report how the job ended; its exit code."""
    from dispatch.cli.jobs import finish_job

    if not done.fed.created:
        log.critical("no input files to be sent")
        return 1
    code = 0
    if done.final is not None:
        display.close()
        code = finish_job(done.store, done.final, send.report, quiet=send.log_level == "fatal")
    if done.fed.halted_by is not None:
        log.critical("job %s halted: %s cannot be sent (use --no-halt to send the rest)",
                     done.spec.job_id, printable(done.fed.halted_by.path))  # fmt: skip
        return code or 1
    if not done.fed.chunks:
        log.critical("no input files to be sent")
        return code or 1
    return code


def _observe_in_process(address: str, store: JobStore, spec: JobSpec) -> SendObserver:
    """Serve metrics of the job run in this process: outcomes, associations, retries as
    the workers count them, and whether the job is running. Returns the observer (the
    scan's problems are counted through it)."""
    from dispatch.errors import UnknownJob
    from dispatch.jobs.model import JobState
    from dispatch.metrics import ScrapeTimeGauges, start_observing

    def running() -> int:
        try:
            return int(store.progress(spec.job_id).state is JobState.RUNNING)
        except UnknownJob:
            return 0

    def waiting() -> dict[str, float]:
        return {spec.destination: store.destination(spec.destination).since}

    gauges = ScrapeTimeGauges(jobs_running=running, destinations_waiting=waiting)
    return start_observing(address, gauges)
