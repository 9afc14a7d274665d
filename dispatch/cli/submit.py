"""``dispatch submit``: storescu's options plus queue options; the files are grouped by
study into chunks, and the chunks sent by Celery workers (with ``--broker``) or by the
same code on ``--jobs`` threads in this process (no broker: the embedded mode).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dispatch.cli.cmdline import (
    CliExit,
    OptionSpec,
    ParsedCommandLine,
    ValueSpec,
    parse_command_line,
)
from dispatch.cli.logs import configure
from dispatch.cli.options import SEND_SPEC, SendOptions, send_options_from
from dispatch.errors import DispatchError, UsageError

if TYPE_CHECKING:
    from dispatch.jobs.model import JobSpec
    from dispatch.jobs.reader import ChildReader
    from dispatch.jobs.store import JobStore
    from dispatch.observe import SendObserver
    from dispatch.outcome import FileOutcome

_SWITCH_S = 0.00005
"""Python's thread switch interval while the embedded mode's threads run (see there)."""

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
    ]  # fmt: skip


SUBMIT_SPEC = SEND_SPEC.extended(
    prog="dispatch submit",
    description="submit DICOM files to be sent by workers (C-STORE SCU)",
    options=_queue_options(),
    sections=[_Q],
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
    )
    return send, queue


def run(argv: Sequence[str]) -> int:
    """Run ``dispatch submit``; return the job's exit code (storescu's rules)."""
    try:
        send, queue = parse_submit_args(argv)
    except CliExit as exc:  # help, version, or a command line error
        return exc.emit()
    log = configure(send.log_level)
    try:
        return _submit(send, queue)
    except DispatchError as exc:
        log.critical("%s", exc)
        return 1


def _observe_in_process(address: str, store: JobStore, spec: JobSpec) -> SendObserver:
    """Serve metrics of the job run in this process: outcomes, associations, retries as
    the workers count them, and whether the job is running. Returns the observer (the
    scan's problems are counted through it)."""
    from dispatch.jobs.model import JobState
    from dispatch.jobs.store import UnknownJob
    from dispatch.metrics import ScrapeTimeGauges, start_observing

    def running() -> int:
        try:
            return int(store.progress(spec.job_id).state is JobState.RUNNING)
        except UnknownJob:
            return 0

    return start_observing(address, ScrapeTimeGauges(jobs_running=running))


def _submit(send: SendOptions, queue: QueueOptions) -> int:
    import logging

    from dispatch.cli.jobs import finish_job, store_for
    from dispatch.cli.progress import ProgressDisplay
    from dispatch.cli.send import association_settings
    from dispatch.inputs import expand_inputs
    from dispatch.jobs.config import load_config
    from dispatch.jobs.enqueue import new_job_id
    from dispatch.jobs.feed import Fed, feed_job
    from dispatch.jobs.model import Chunk, JobSpec, destination_of
    from dispatch.jobs.scan import Scanner
    from dispatch.outcome import FileOutcome, Outcome

    log = logging.getLogger("dispatch.submit")
    overrides = {
        "broker_url": queue.broker,
        "retries": queue.retries,
        "chunk_files": queue.chunk,
        "max_associations": queue.max_associations,
    }
    config = load_config(queue.config, overrides=overrides)
    if send.policy.repeat != 1 or send.policy.rename:
        raise UsageError("--repeat and --rename are not available with dispatch submit")
    if send.propose_own:
        # A job proposes one set of contexts for all its chunks, known before the scan ends.
        raise UsageError("--propose-own is not available with dispatch submit")
    if config.broker_url and not queue.wait and send.report:
        # Only a waiting submit writes the report: without --wait it would silently not be.
        raise UsageError(
            "--report needs --wait with a broker (or run 'dispatch report JOB' once it ended)"
        )

    # The scan runs while the first chunks are sent: each chunk goes out as soon as it
    # is full (see dispatch.jobs.feed). With -R the SOP classes must be known first.
    scanner = Scanner(config.chunk_files, send.policy.read_mode)

    def inputs() -> Iterator[str | FileOutcome]:
        for item in expand_inputs(
            send.inputs, send.scan_dirs, send.pattern, send.recurse, name_order=True
        ):
            if item.ok:
                yield item.path
            else:
                yield FileOutcome(item.path, Outcome.NOT_SENT, reason=item.reason)

    log.info("scanning the inputs ...")
    items: Iterable[Chunk | FileOutcome] = scanner.items(inputs())
    if send.required_only:
        items = list(items)
    settings = association_settings(send, scanner.sop_classes if send.required_only else None)
    if config.broker_url:
        from dispatch.jobs.secrets import refuse_secrets_for_broker

        refuse_secrets_for_broker(settings)
    spec = JobSpec(
        job_id=new_job_id(),
        name=queue.job_name or send.inputs[0],
        settings=settings,
        policy=send.policy,
        retries=config.retries,
        # In this process --jobs is the number of associations, unless a limit is given.
        max_associations=(
            config.max_associations
            if config.broker_url or queue.max_associations is not None
            else queue.jobs
        ),
        destination=destination_of(settings),
        queue=config.queue,
    )

    def problem(outcome: FileOutcome) -> None:
        log.error("not sent: %s: %s", outcome.path, outcome.reason)

    def fed_ok(fed: Fed) -> bool:
        """Log how the scan ended; False when the job must end with exit code 1."""
        if fed.halted_by is not None:
            log.critical("job %s halted: %s cannot be sent (use --no-halt to send the rest)",
                         spec.job_id, fed.halted_by.path)  # fmt: skip
            return False
        if not fed.chunks:
            log.critical("no input files to be sent")
            return False
        return True

    interactive = sys.stderr.isatty() and send.log_level != "fatal"
    display = ProgressDisplay(sys.stderr, interactive)

    if send.metrics_port and config.broker_url:
        raise UsageError("--metrics-port serves jobs run in this process; workers serve their own")
    if not config.broker_url:
        from dispatch.jobs.embedded import EmbeddedRun
        from dispatch.jobs.store import MemoryJobStore

        reader: ChildReader | None = None
        if not send.required_only:
            from dispatch.jobs.reader import ChildReader

            # The files are read in a child process, forked before any thread starts
            # (see dispatch.jobs.reader): the sender threads then have the interpreter
            # lock to themselves instead of sharing it with the scan.
            reader = ChildReader(inputs, send.policy.read_mode)
            items = scanner.group(reader)

        def run_embedded() -> int:
            memory = MemoryJobStore()
            observer = (
                _observe_in_process(send.metrics_port, memory, spec) if send.metrics_port else None
            )
            if queue.jobs > spec.max_associations:
                log.warning(
                    "--jobs %d: at most %d associations to this peer at once (--max-associations)",
                    queue.jobs,
                    spec.max_associations,
                )

            def on_file(_outcome: FileOutcome) -> None:
                if display.due():
                    display(memory.progress(spec.job_id))

            run = EmbeddedRun(
                spec,
                memory,
                jobs=queue.jobs,
                on_progress=on_file if send.log_level != "fatal" else None,
                retry_base_s=config.retry_base_s,
                retry_cap_s=config.retry_cap_s,
                lease_s=config.lease_s,
            ).start()

            def embedded_problem(outcome: FileOutcome) -> None:
                problem(outcome)
                if observer is not None:
                    observer.file_done(spec.destination, outcome)

            # The sender threads share the GIL (with the grouping of the scan, or with all
            # of it under -R): with Python's default switch interval (5 ms) a thread whose
            # peer has answered waits that long for its turn, so a short one keeps every
            # association busy.
            interval = sys.getswitchinterval()
            sys.setswitchinterval(_SWITCH_S)
            try:
                fed = feed_job(memory, spec, items, on_chunk=run.add, on_problem=embedded_problem,
                               pending=scanner.pending)  # fmt: skip
                if not fed.created:
                    run.join()
                    log.critical("no input files to be sent")
                    return 1
                final = run.join()
            finally:
                sys.setswitchinterval(interval)
            log.info("job %s: %d files in %d tasks, %d in parallel", spec.job_id, fed.files,
                     fed.chunks, queue.jobs)  # fmt: skip
            display.close()
            code = finish_job(memory, final, send.report, quiet=send.log_level == "fatal")
            return code if fed_ok(fed) else code or 1

        try:
            return run_embedded()
        finally:
            if reader is not None:
                reader.close()

    from dispatch.jobs.enqueue import publisher_for, resend_reaped, send_chunks, wait_for_job

    store = store_for(config)
    publisher = publisher_for(config, store)

    def created() -> None:
        print(spec.job_id)
        sys.stdout.flush()

    def enqueue(c: Chunk) -> None:
        send_chunks(publisher, spec, [c.chunk_id])

    fed = feed_job(store, spec, items, on_chunk=enqueue, on_created=created,
                   on_problem=problem, pending=scanner.pending)  # fmt: skip
    if not fed.created:
        log.critical("no input files to be sent")
        return 1
    log.info("job %s: %d files in %d tasks", spec.job_id, fed.files, fed.chunks)
    if not queue.wait:
        return 0 if fed_ok(fed) else 1
    final = wait_for_job(
        store,
        spec.job_id,
        display if send.log_level != "fatal" else None,
        reaper=lambda: resend_reaped(store, publisher),
    )
    display.close()
    code = finish_job(store, final, send.report, quiet=send.log_level == "fatal")
    return code if fed_ok(fed) else code or 1
