"""The submit use case: check a submission, scan its inputs into a job, have the job sent
(by the workers through the broker, or on threads of this process without one) and
follow it to its end.

:func:`submit` is ``dispatch submit`` without its command line: the caller builds the
settings (:class:`Submission`) and watches through callbacks; it writes no report and
prints nothing. The scan runs while the first chunks are sent: each chunk goes out as
soon as it is full (see :mod:`dispatch.jobs.feed`), unless the proposal must know the
inputs' SOP classes first (``settings_for_classes``, storescu's ``-R``).

Input paths are made absolute before the scan: a job's files are opened by workers
whose working directory is not the submitter's.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

from dispatch.errors import UsageError
from dispatch.jobs.config import JobsConfig
from dispatch.jobs.destinations import WaitingNotices
from dispatch.jobs.feed import Fed, feed_job
from dispatch.jobs.model import Chunk, JobSpec, destination_of
from dispatch.jobs.store import JobProgress, JobStore
from dispatch.logtext import counted
from dispatch.outcome import FileOutcome, Outcome
from dispatch.settings import AssociationSettings, SendPolicy

if TYPE_CHECKING:
    from dispatch.commitment import CommitmentSettings
    from dispatch.jobs.backends.memory import MemoryJobStore
    from dispatch.jobs.scan import Found, Scanner
    from dispatch.observe import SendObserver

log = logging.getLogger("dispatch.submit")

__all__ = ["Inputs", "ProgressView", "Submission", "Submitted", "Watchers", "submit"]


@dataclass(frozen=True)
class Inputs:
    """The files to send, as storescu takes them (see :mod:`dispatch.inputs`)."""

    paths: tuple[str, ...]
    """Files and directories, in order."""
    scan_dirs: bool = False
    pattern: str | None = None
    recurse: bool = False

    def absolute(self) -> Inputs:
        """The same inputs with every path absolute (from this process's directory)."""
        return replace(self, paths=tuple(os.path.abspath(p) for p in self.paths))


@dataclass(frozen=True)
class Submission:
    """Everything one submission needs."""

    inputs: Inputs
    settings: AssociationSettings
    policy: SendPolicy = field(default_factory=SendPolicy)
    config: JobsConfig = field(default_factory=JobsConfig)
    """With a ``broker_url`` the workers send the job; without one, this process."""
    name: str = ""
    """A name for the job ("": the first input as given)."""
    jobs: int = 2
    """Without a broker: the number of sending threads."""
    max_associations: int | None = None
    """At most this many associations to the peer at once (None: the settings' limit
    with a broker, ``jobs`` without)."""
    wait: bool = True
    """With a broker: follow the job to its end (without one the job always runs to
    its end in this process)."""
    settings_for_classes: Callable[[Sequence[str]], AssociationSettings] | None = None
    """When given, the settings for the inputs' SOP classes replace ``settings``: the
    whole scan then runs before the first chunk is sent."""
    check_destination: bool = False
    """Open (and release) one association with ``settings`` before the scan: a peer
    that is down or refuses fails the submission at once (``dispatch submit`` does,
    unless ``--no-check``)."""
    commit: CommitmentSettings | None = None
    """``--commit``: storage commitment of every chunk's stored files (see
    :mod:`dispatch.jobs.commit_chunk`); its ``listen`` address only without a broker
    (a listener in this process), workers' reports go to ``dispatch commit-listener``."""


class ProgressView(Protocol):
    """What shows a job's progress (:class:`dispatch.cli.progress.ProgressDisplay`)."""

    def due(self) -> bool:
        """Whether a new snapshot would be shown now (a snapshot costs a store query)."""

    def __call__(self, snapshot: JobProgress) -> None:
        """Show ``snapshot``."""


def _nothing(_item: object) -> None:
    pass


@dataclass(frozen=True)
class Watchers:
    """How the caller follows a submission; every callback is optional."""

    on_created: Callable[[JobSpec], None] = _nothing
    """The job is recorded (with a broker: it can be followed by its id from now on)."""
    on_problem: Callable[[FileOutcome], None] = _nothing
    """An input the scan found unusable (recorded NOT_SENT)."""
    progress: ProgressView | None = None
    """Shown snapshots while the job runs (and it is waited for)."""
    observe: Callable[[JobStore, JobSpec], SendObserver] | None = None
    """Without a broker: called once with the job's store and spec before the job runs;
    the observer it returns also hears of the scan's problems (metrics)."""
    on_waiting: Callable[[str], None] = _nothing
    """While the job is waited for through a broker: one line when its destination
    starts waiting (unreachable; see :mod:`dispatch.jobs.destinations`), when the next
    try moves, and when it is reached again."""


@dataclass(frozen=True)
class Submitted:
    """How a submission went."""

    spec: JobSpec
    store: JobStore
    """Where the job's records are (its outcomes, for a report)."""
    fed: Fed
    """What the scan handed out; ``fed.created`` False: no job (no input to send)."""
    final: JobProgress | None
    """The job's final snapshot; None when it was not waited for, or not created."""


def submit(request: Submission, watchers: Watchers | None = None) -> Submitted:
    """Check, scan, record, send and (see :attr:`Submission.wait`) wait; see the module
    docstring. Raises :class:`UsageError` for a submission that cannot be made, and
    whatever the job store raises when it cannot be reached."""
    watchers = watchers or Watchers()
    _check(request, watchers)
    inputs = request.inputs.absolute()
    if request.settings_for_classes is not None:
        return _submit(request, watchers, inputs, None)
    from dispatch.jobs.reader import ChildReader

    # The files are read in a child process forked before anything else (see
    # dispatch.jobs.reader): the scan then overlaps the destination check, the imports
    # and connections of the job store and broker, and the sending threads of the
    # embedded mode, instead of sharing the interpreter lock with them.
    with ChildReader(lambda: _files(inputs), request.policy.read_mode) as reader:
        return _submit(request, watchers, inputs, reader)


def _submit(
    request: Submission,
    watchers: Watchers,
    inputs: Inputs,
    reader: Iterable[Found | FileOutcome] | None,
) -> Submitted:
    """:func:`submit` once checked; ``reader``: the inputs as read ahead (None: read
    them here, as ``-R`` needs them all before the job is created)."""
    from dispatch.jobs.scan import Scanner

    if request.check_destination:
        from dispatch.peercheck import check_destination

        check_destination(request.settings)
    config, policy = request.config, request.policy
    # Chunks sized to fill every association the job may have at once.
    parallel = _limit(request) if config.broker_url else min(request.jobs, _limit(request))
    scanner = Scanner(
        config.chunk_files,
        policy.read_mode,
        # -R: as storescu, only storage classes are proposed and sent.
        storage_only=request.settings_for_classes is not None,
        parallel=parallel,
    )
    log.info("scanning the inputs ...")
    settings = request.settings
    items: Iterable[Chunk | FileOutcome]
    if reader is not None:
        items = scanner.group(reader)
    else:
        items = list(scanner.items(_files(inputs)))
        if request.settings_for_classes is not None:
            settings = request.settings_for_classes(scanner.sop_classes)
    spec = _spec(request, settings)
    if config.broker_url:
        return _through_broker(request, spec, scanner, items, watchers)
    return _embedded(request, spec, scanner, items, watchers)


def _check(request: Submission, watchers: Watchers) -> None:
    if request.policy.repeat != 1 or request.policy.rename:
        raise UsageError("--repeat and --rename are not available with dispatch submit")
    if request.config.broker_url and watchers.observe is not None:
        raise UsageError("--metrics-port serves jobs run in this process; workers serve their own")
    if request.config.broker_url and request.commit is not None and request.commit.listen:
        raise UsageError(
            "--commit-port listens in this process: with a broker, run"
            " 'dispatch commit-listener [HOST:]PORT' for the workers' jobs"
        )
    if request.config.broker_url:
        from dispatch.jobs.secrets import refuse_secrets_for_broker

        # The settings for the inputs' classes differ in their contexts only.
        refuse_secrets_for_broker(request.settings)
        if _is_loopback(request.settings.host):
            log.warning(
                "peer %s: each worker resolves it on its own host, where it names that host",
                request.settings.host,
            )


def _is_loopback(host: str) -> bool:
    """``localhost`` (or a name under it) or a loopback address."""
    import ipaddress

    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _files(inputs: Inputs) -> Iterator[str | FileOutcome]:
    from dispatch.inputs import expand_inputs

    for item in expand_inputs(
        inputs.paths, inputs.scan_dirs, inputs.pattern, inputs.recurse, name_order=True
    ):
        if item.ok:
            yield item.path
        else:
            yield FileOutcome(item.path, Outcome.NOT_SENT, reason=item.reason)


def _limit(request: Submission) -> int:
    """The most associations the job may have to the peer at once."""
    if request.max_associations is not None:
        return request.max_associations
    return request.config.max_associations if request.config.broker_url else request.jobs


def _spec(request: Submission, settings: AssociationSettings) -> JobSpec:
    from dispatch.jobs.enqueue import new_job_id

    config = request.config
    return JobSpec(
        job_id=new_job_id(),
        name=request.name or request.inputs.paths[0],
        settings=settings,
        policy=request.policy,
        retries=config.retries,
        max_associations=_limit(request),
        destination=destination_of(settings),
        queue=config.queue,
        retry_for_s=config.retry_for_s,
        commit_timeout_s=None if request.commit is None else request.commit.timeout_s,
        commit_resends=1 if request.commit is None else request.commit.resends,
    )


def _through_broker(
    request: Submission,
    spec: JobSpec,
    scanner: Scanner,
    items: Iterable[Chunk | FileOutcome],
    watchers: Watchers,
) -> Submitted:
    from dispatch.jobs.enqueue import (
        NoWorkerNotice,
        publisher_for,
        resend_reaped,
        send_chunks,
        store_for,
        wait_for_job,
    )

    store = store_for(request.config)
    publisher = publisher_for(request.config)
    fed = feed_job(
        store,
        spec,
        items,
        on_chunks=lambda chunks: send_chunks(publisher, spec, [c.chunk_id for c in chunks]),
        on_created=lambda: watchers.on_created(spec),
        on_problem=watchers.on_problem,
        pending=scanner.pending,
        ended=scanner.ended,
        lease_s=request.config.lease_s,
    )
    if not fed.created:
        return Submitted(spec, store, fed, None)
    log.info("job %s: %s in %s", spec.job_id, counted(fed.files, "file"),
             counted(fed.chunks, "task"))  # fmt: skip
    if not request.wait:
        return Submitted(spec, store, fed, None)
    notices = WaitingNotices(store.destination, watchers.on_waiting)
    idle = NoWorkerNotice(
        request.config.no_worker_notice_s,
        spec.queue,
        _broker_address(request.config.broker_url),
        watchers.on_waiting,
    )
    view = watchers.progress

    def on_progress(snapshot: JobProgress) -> None:
        if view is not None:
            view(snapshot)
        notices(snapshot)
        idle(snapshot)

    final = wait_for_job(
        store, spec.job_id, on_progress, reaper=lambda: resend_reaped(store, publisher)
    )
    return Submitted(spec, store, fed, final)


def _broker_address(url: str) -> str:
    """``url`` for messages: scheme, host, port and db, never a password."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return f"{parts.scheme}://{netloc}{parts.path}"


def _embedded(
    request: Submission,
    spec: JobSpec,
    scanner: Scanner,
    items: Iterable[Chunk | FileOutcome],
    watchers: Watchers,
) -> Submitted:
    from dispatch.jobs.backends.memory import MemoryJobStore

    store = MemoryJobStore()
    observer = watchers.observe(store, spec) if watchers.observe is not None else None
    listener = None
    if request.commit is not None and request.commit.listen is not None:
        from dispatch.commit_listener import CommitmentListener

        # Reports sent on an association of the peer's own: recorded in this job's store.
        listener = CommitmentListener(
            spec.settings.calling_ae, *request.commit.listen, on_report=store.commit_reported
        )
    try:
        return _embedded_run(request, spec, scanner, items, watchers, store, observer)
    finally:
        if listener is not None:
            listener.stop()


def _embedded_run(
    request: Submission,
    spec: JobSpec,
    scanner: Scanner,
    items: Iterable[Chunk | FileOutcome],
    watchers: Watchers,
    store: MemoryJobStore,
    observer: SendObserver | None,
) -> Submitted:
    from dispatch.jobs.attempt import Backoff
    from dispatch.jobs.embedded import EmbeddedRun, quick_switching

    config = request.config
    if request.jobs > spec.max_associations:
        log.warning(
            "--jobs %d: at most %d associations to this peer at once (--max-associations)",
            request.jobs,
            spec.max_associations,
        )
    view = watchers.progress

    def on_file(_outcome: FileOutcome) -> None:
        if view is not None and view.due():
            view(store.progress(spec.job_id))

    def on_problem(outcome: FileOutcome) -> None:
        watchers.on_problem(outcome)
        if observer is not None:
            observer.file_done(spec.destination, outcome)

    run = EmbeddedRun(
        spec,
        store,
        jobs=request.jobs,
        on_progress=on_file if view is not None else None,
        backoff=Backoff(config.retry_base_s, config.retry_cap_s),
        lease_s=config.lease_s,
    ).start()
    with quick_switching():
        fed = feed_job(store, spec, items, on_chunks=run.add, on_problem=on_problem,
                       pending=scanner.pending, ended=scanner.ended)  # fmt: skip
        final = run.join()
    if not fed.created:
        return Submitted(spec, store, fed, None)
    if view is not None:
        view(final)  # the last line shows the job as its summary does
    log.info("job %s: %s in %s, %d in parallel", spec.job_id, counted(fed.files, "file"),
             counted(fed.chunks, "task"), request.jobs)  # fmt: skip
    return Submitted(spec, store, fed, final)
