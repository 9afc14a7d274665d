"""``dispatch send``: storescu's command line, in-process.

This module parses the command line, sets up the log, expands the inputs, shows
progress, writes the report and the summary, and returns the exit code; the run itself,
with storescu's rules, is :func:`dispatch.storescu.run`. Every file ends with one
recorded outcome (the report), and a summary closes the run.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from dispatch.cli.cmdline import CliExit, parse_command_line
from dispatch.cli.commit_options import COMMIT_SECTION, commit_from, commit_options
from dispatch.cli.logs import configure_for
from dispatch.cli.options import SEND_SPEC, SendOptions, send_options_from
from dispatch.errors import UsageError
from dispatch.logtext import printable
from dispatch.outcome import FileOutcome, RunSummary
from dispatch.report import ReportWriter
from dispatch.settings import AssociationSettings, PresentationContext

if TYPE_CHECKING:
    from dispatch.cli.commit import CommitStep
    from dispatch.cli.progress import ProgressDisplay
    from dispatch.commitment import CommitmentSettings
    from dispatch.profiles import Profile


class Recorder:
    """Collects outcomes: the summary, the JSON-lines report, and on a terminal the
    progress line (:func:`dispatch.cli.progress.progress_line`, also while a large file
    is in flight: see :meth:`in_flight`)."""

    def __init__(self, report: ReportWriter | None, total: int, progress: bool) -> None:
        self.summary = RunSummary()
        self._report = report
        self._total = total
        self._display: ProgressDisplay | None = None
        if progress:
            from dispatch.cli.progress import ProgressDisplay

            self._display = ProgressDisplay(sys.stderr, interactive=True)

    def __call__(self, outcome: FileOutcome) -> None:
        self.summary.add(outcome)
        if self._report is not None:
            self._report.write(outcome)
        if self._display is not None and self._display.due():
            self._show(0)

    def in_flight(self, sent: int) -> None:
        """``sent`` data-set bytes of the file being sent have gone out."""
        if self._display is not None and self._display.due():
            self._show(sent)

    def _show(self, in_flight: int) -> None:
        from dispatch.cli.progress import Progress

        assert self._display is not None
        self._display(Progress.of_run(self.summary, self._total, in_flight))

    def close(self) -> None:
        self.summary.finish()
        if self._display is not None:
            self._display.close(clear=True)
        if self._report is not None:
            self._report.close()


def run(argv: Sequence[str]) -> int:
    """Run ``dispatch send``; return storescu's exit code (with ``--commit``, see
    :mod:`dispatch.cli.commit`)."""
    try:
        opts, commit = parse_send_with_commit(argv)
    except CliExit as exc:  # help, version, or a command line error
        return exc.emit()
    try:
        log = configure_for(opts.log_level, opts.log_config)
    except CliExit as exc:  # a log file of -lc that cannot be opened
        return exc.emit()
    try:
        return _send(opts, commit)
    except UsageError as exc:
        log.critical("%s", printable(exc))
        return 1


SEND_COMMIT_SPEC = SEND_SPEC.extended(options=commit_options(), sections=[COMMIT_SECTION])
"""``dispatch send``'s table: storescu's options and the storage commitment ones."""


def parse_send_with_commit(argv: Sequence[str]) -> tuple[SendOptions, CommitmentSettings | None]:
    """:func:`~dispatch.cli.options.parse_send_args` and the ``--commit`` options."""
    parsed = parse_command_line(argv, SEND_COMMIT_SPEC)
    opts = send_options_from(parsed)
    return opts, commit_from(parsed, quiet=opts.log_level == "fatal")


def _send(opts: SendOptions, commit: CommitmentSettings | None = None) -> int:
    from dispatch.inputs import expand_inputs
    from dispatch.storescu import FileProposal
    from dispatch.storescu import run as run_storescu

    # As storescu, a profile file (-xf) is read and checked before the inputs are.
    profile = load_options_profile(opts)
    items = list(expand_inputs(opts.inputs, opts.scan_dirs, opts.pattern, opts.recurse))
    step = None
    if commit is not None:
        from dispatch.cli.commit import CommitStep

        step = CommitStep(commit, opts.calling_ae)  # listening before anything is sent
    report = _open_report(opts.report, commit is not None)
    # With --commit the report waits for the commitment: the recorder writes none.
    report_now = report if step is None else None
    total, progress = len(items) * opts.policy.repeat, _progress_wanted(opts)
    recorder = (
        _ObservedRecorder(opts, report_now, total, progress)
        if opts.metrics_port
        else Recorder(report_now, total, progress)
    )
    from_files = None
    if opts.required_only or opts.propose_own:
        from_files = FileProposal(
            opts.proposal, opts.combine, opts.propose_own, any_class=opts.any_class
        )
    on_outcome = recorder if step is None else _both(recorder, step)
    try:
        settings = association_settings(opts, None, profile)
        on_bytes = recorder.in_flight if progress else None
        code = run_storescu(
            items,
            settings,
            opts.policy,
            on_outcome,
            from_files=from_files,
            on_bytes=on_bytes,
            show_contexts=opts.verbose_pc,
        )
        if step is None:
            return code.exit_code
        return step.finish(settings, code.exit_code)
    finally:
        recorder.close()
        if step is not None:
            step.stop()
            step.write_report(report)
            if report is not None:
                report.close()
        if opts.log_level != "fatal":
            for line in recorder.summary.lines():
                print(line)
            for line in step.summary_lines() if step is not None else ():
                print(line)


def _both(first: Recorder, second: CommitStep) -> Callable[[FileOutcome], None]:
    def record(outcome: FileOutcome) -> None:
        first(outcome)
        second(outcome)

    return record


def load_options_profile(opts: SendOptions) -> Profile | None:
    """The profile ``-xf FILE PROFILE`` names, or None without ``-xf``.
    Raises :class:`UsageError` (file, section and key named) for a bad file or name."""
    if opts.profile is None:
        return None
    from dispatch.profiles import load_profile

    return load_profile(*opts.profile)


class _ObservedRecorder(Recorder):
    """A :class:`Recorder` that also counts every outcome into the metrics it serves
    on ``--metrics-port`` (the association's are counted by the sender)."""

    def __init__(
        self, opts: SendOptions, report: ReportWriter | None, total: int, progress: bool
    ) -> None:
        from dispatch.metrics import start_observing
        from dispatch.observe import peer_name

        assert opts.metrics_port is not None
        self._observer = start_observing(opts.metrics_port)
        self._destination = peer_name(opts.called_ae, opts.host, opts.port)
        super().__init__(report, total, progress)

    def __call__(self, outcome: FileOutcome) -> None:
        super().__call__(outcome)
        self._observer.file_done(self._destination, outcome)


def association_settings(
    opts: SendOptions,
    sop_classes: Sequence[str] | None,
    profile: Profile | None = None,
    contexts: tuple[PresentationContext, ...] | None = None,
) -> AssociationSettings:
    """The association settings a command line asks for; ``sop_classes`` are the input
    files' classes when ``-R`` limits the proposal to them. With ``-xf`` the profile's
    contexts, role selection and extended negotiation are proposed (``profile``, or
    read here when not given). ``contexts``, when given, are proposed instead of those
    of ``-x?`` (contexts derived from the files, see
    :func:`dispatch.proposals.file_proposals`)."""
    from dispatch.proposals import build_contexts

    if profile is None:
        profile = load_options_profile(opts)
    if profile is not None:
        contexts, roles, extended = profile.contexts, profile.roles, profile.extended
    else:
        if contexts is None:
            contexts = build_contexts(opts.proposal, sop_classes, opts.combine)
        roles, extended = (), ()
    return AssociationSettings(
        host=opts.host,
        port=opts.port,
        contexts=contexts,
        roles=roles,
        extended=extended,
        calling_ae=opts.calling_ae,
        called_ae=opts.called_ae,
        max_pdu=opts.max_pdu,
        max_send_pdu=opts.max_send_pdu,
        timeouts=opts.timeouts,
        tls=opts.tls,
        identity=opts.identity,
    )


def _open_report(path: str | None, commitment: bool = False) -> ReportWriter | None:
    if path is None:
        return None
    # "-" names a file here, as it always did for send (standard output has the summary).
    return ReportWriter(os.path.join(".", path) if path == "-" else path, commitment=commitment)


def _progress_wanted(opts: SendOptions) -> bool:
    return sys.stderr.isatty() and opts.log_level in ("fatal", "error", "warn")
