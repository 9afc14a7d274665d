"""A storescu run: DCMTK storescu's rules for sending a list of files, and its exit codes.

Order of work, as storescu: the inputs that give no file are reported; every file must
be accessible ("checking input files", fatal in halt mode); with contexts derived from
the files (``-R``, ``--propose-own``) every file is read first; one association is
requested (one per group of contexts beyond 128, one after another, as dcmsend does);
the files are sent in order (each ``policy.repeat`` times); the association is
released (aborted with ``--abort``).

Every file ends in exactly one :class:`FileOutcome`, reported through ``on_outcome``
in input order. Exit codes: 0; 1 for a bad file, no presentation context, a network
error or a failed association; ``status >> 8`` for a failure status in halt mode; 10
when the peer aborted in halt mode (or the socket timeout expired while a response was
awaited); 1 whenever the release fails. Over several associations the first non-zero exit
code is the run's; in halt mode nothing more is attempted after it, while with ``-nh``
the next association is still requested. A file that ends early while it is sent (it
changed after it was read) costs its association: the run halts there, or with ``-nh``
goes on over a new association.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from stat import S_ISDIR

from dispatch import status as st
from dispatch.dicomfile import DicomFileInfo, read_info
from dispatch.errors import BadFile, DispatchError, PeerAborted, UsageError
from dispatch.identities import inventor_for, new_seed
from dispatch.inputs import InputItem, Problem
from dispatch.logtext import printable
from dispatch.net import Association, dump
from dispatch.observe import current, destination_name
from dispatch.outcome import FileOutcome, Outcome
from dispatch.proposals import ProposalGroup, file_proposals
from dispatch.settings import AssociationSettings, SendPolicy
from dispatch.transfer import Broken, BytesSink, Identities, Item, send_files
from dispatch.uids import is_storage_class

__all__ = [
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_PEER_ABORTED",
    "FileProposal",
    "OutcomeSink",
    "SendResult",
    "check_inputs",
    "new_identities",
    "read_all",
    "run",
    "send_batches",
    "send_over_one",
]

log = logging.getLogger("dispatch.send")

OutcomeSink = Callable[[FileOutcome], None]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_PEER_ABORTED = 10


@dataclass(frozen=True)
class SendResult:
    """How a run ended: storescu's exit code and, when it ended early, why."""

    exit_code: int
    error: str = ""
    reported: bool = False
    """The error was logged already (with the file it concerns): not to be repeated."""


@dataclass(frozen=True)
class FileProposal:
    """Contexts derived from the input files (``-R``; ``--propose-own``: ``own_first``),
    which replace those of the settings: every file is read before the association is
    requested (see :func:`dispatch.proposals.file_proposals`)."""

    proposal: str
    combine: bool = False
    own_first: bool = False
    any_class: bool = False
    """Propose and send SOP classes that are not known storage classes (private ones);
    storescu refuses such a file ("unknown storage SOP class in file")."""


def run(
    inputs: Sequence[InputItem],
    settings: AssociationSettings,
    policy: SendPolicy,
    on_outcome: OutcomeSink,
    *,
    from_files: FileProposal | None = None,
    on_bytes: BytesSink | None = None,
    show_contexts: bool = False,
) -> SendResult:
    """Send the files of ``inputs`` (expanded arguments, see
    :func:`dispatch.inputs.expand_inputs`) with storescu's rules; see the module.
    ``on_bytes`` hears of large files in flight (see :func:`dispatch.transfer.send_files`).
    ``show_contexts`` (``+v``) logs the association request and answer at info level
    (at debug level otherwise).

    A missing file is judged by the access check (fatal in halt mode), as storescu does;
    another problem of an input (a directory not scanned) is only a warning. Raises
    :class:`UsageError` for TLS settings that cannot be loaded (key, certificates),
    after every file got its NOT_SENT outcome."""
    to_check = (None, Problem.MISSING)
    paths = [item.path for item in inputs if item.problem in to_check]
    for item in inputs:
        if item.problem not in to_check:
            log.warning("%s: %s", item.reason, printable(item.path))
            on_outcome(FileOutcome(item.path, Outcome.NOT_SENT, reason=item.reason))
    # As storescu: "no input files" judges the expanded arguments; files that the check
    # below drops under -nh leave an association with nothing to send.
    fatal = "" if paths else "no input files to be sent"
    if not fatal:
        log.info("checking input files ...")
        paths, fatal = check_inputs(paths, policy, on_outcome)
    infos: dict[str, DicomFileInfo] | None = None
    if not fatal and from_files is not None:
        paths, infos, fatal = read_all(
            paths, policy, on_outcome, storage_only=not from_files.any_class
        )
        if not fatal and not paths:
            # storescu requests an association without contexts, which fails.
            fatal = "Association Request Failed: missing presentation contexts"
    if fatal:
        log.critical("%s", printable(fatal))
        _not_sent(paths, policy, on_outcome, f"not attempted after: {fatal}")
        return SendResult(EXIT_ERROR, fatal)
    groups = None
    if from_files is not None and infos is not None:
        files = [(infos[p].sop_class_uid, infos[p].transfer_syntax) for p in paths]
        groups = file_proposals(
            from_files.proposal, files, from_files.combine, from_files.own_first
        )
        settings = dataclasses.replace(settings, contexts=groups[0].contexts)
    if settings.tls is not None:
        # As storescu: key (and its password prompt), certificates and suites are loaded
        # once, before the association is requested.
        from dispatch.net.tls import client_context

        try:
            client_context(settings.tls)
        except UsageError as exc:
            _not_sent(paths, policy, on_outcome, f"not attempted after: {exc}")
            raise
    if groups is not None and infos is not None and len(groups) > 1:
        result = send_batches(
            settings, groups, paths, infos, policy, on_outcome,
            on_bytes=on_bytes, show_contexts=show_contexts,
        )  # fmt: skip
    else:
        result = send_over_one(
            settings, paths, policy, on_outcome, infos,
            on_bytes=on_bytes, show_contexts=show_contexts,
        )  # fmt: skip
    if result.exit_code and result.error and not result.reported:
        level = logging.CRITICAL if result.error.startswith("Association") else logging.ERROR
        log.log(level, "%s", printable(result.error))
    return result


def check_inputs(
    paths: Sequence[str], policy: SendPolicy, on_outcome: OutcomeSink
) -> tuple[list[str], str]:
    """storescu's "checking input files" pass: every path must be accessible.

    A path that cannot be accessed gets its NOT_SENT outcome here. Returns the paths
    still to send and, in halt mode, the fatal error ("" when none); after a fatal
    error the returned paths are every other input, for the caller to record as not
    sent.
    """
    usable: list[str] = []
    access, stat, is_dir, r_ok = os.access, os.stat, S_ISDIR, os.R_OK
    for index, path in enumerate(paths):
        if access(path, r_ok):
            try:
                file = not is_dir(stat(path).st_mode)
            except OSError:
                file = True  # not known to be a directory (as os.path.isdir answers)
            if file:
                usable.append(path)
                continue
        reason = "cannot access file"
        on_outcome(FileOutcome(path, Outcome.NOT_SENT, reason=reason))
        if policy.halt:
            return usable + list(paths[index + 1 :]), f"{reason}: {path}"
        log.warning("%s: %s, ignoring file", reason, printable(path))
    return usable, ""


def read_all(
    paths: Sequence[str],
    policy: SendPolicy,
    on_outcome: OutcomeSink,
    *,
    storage_only: bool = False,
) -> tuple[list[str], dict[str, DicomFileInfo], str]:
    """Read every file up front (for ``-R``). Same contract as :func:`check_inputs`:
    a bad file gets its NOT_SENT outcome; in halt mode it is fatal. With
    ``storage_only`` a file whose SOP class is not a known storage class is refused
    the same way, as storescu refuses it."""
    infos: dict[str, DicomFileInfo] = {}
    usable: list[str] = []
    for index, path in enumerate(paths):
        try:
            info = infos[path] = read_info(path, policy.read_mode)
        except BadFile as exc:
            on_outcome(FileOutcome(path, Outcome.NOT_SENT, reason=exc.reason))
            # "Bad DICOM file: x: bad DICOM file: ..." would say it twice.
            bad = f"Bad DICOM file: {exc.path}: {exc.reason.removeprefix('bad DICOM file: ')}"
            if policy.halt:
                return usable + list(paths[index + 1 :]), infos, bad
            log.error("%s", printable(bad))
            continue
        if storage_only and not is_storage_class(info.sop_class_uid):
            reason = f"unknown storage SOP class in file: {path}: {info.sop_class_uid}"
            on_outcome(FileOutcome(path, Outcome.NOT_SENT, reason=reason))
            if policy.halt:
                return usable + list(paths[index + 1 :]), infos, reason
            log.warning("%s, ignoring file", printable(reason))
            continue
        usable.append(path)
    return usable, infos, ""


def send_batches(
    settings: AssociationSettings,
    groups: Sequence[ProposalGroup],
    paths: Sequence[str],
    infos: dict[str, DicomFileInfo],
    policy: SendPolicy,
    on_outcome: OutcomeSink,
    *,
    on_bytes: BytesSink | None = None,
    show_contexts: bool = False,
) -> SendResult:
    """Send ``paths`` (every one read, in ``infos``) over one association per group of
    ``groups``, whose contexts replace those of ``settings``. Each file goes over the
    association of its SOP class's group, the files of a group in input order."""
    result = SendResult(EXIT_OK)
    identities = new_identities(policy)
    for number, group in enumerate(groups, 1):
        mine = [p for p in paths if infos[p].sop_class_uid in group.sop_classes]
        if not mine:
            continue
        if result.exit_code and policy.halt:
            reason = f"not attempted after: {result.error or 'an earlier failure'}"
            _not_sent(mine, policy, on_outcome, reason, max(policy.repeat, 1))
            continue
        if len(groups) > 1:
            log.info(
                "Association %d of %d (%d presentation contexts, %d files)",
                number, len(groups), len(group.contexts), len(mine),
            )  # fmt: skip
        part = send_over_one(
            dataclasses.replace(settings, contexts=group.contexts),
            mine,
            policy,
            on_outcome,
            infos,
            identities,
            on_bytes=on_bytes,
            show_contexts=show_contexts,
        )
        if part.exit_code and not result.exit_code:
            result = part
        elif part.exit_code and not part.reported:
            log.error("%s", printable(part.error))
    return result


def new_identities(policy: SendPolicy) -> Identities:
    """The ``+II`` counters of a new run (none without ``+II``)."""
    return Identities(inventor_for(policy, new_seed(), clock=True))


def send_over_one(
    settings: AssociationSettings,
    paths: Sequence[str],
    policy: SendPolicy,
    on_outcome: OutcomeSink,
    infos: dict[str, DicomFileInfo] | None = None,
    identities: Identities | None = None,
    *,
    on_bytes: BytesSink | None = None,
    show_contexts: bool = False,
) -> SendResult:
    """Send ``paths`` over one association with storescu's halt/continue rules.

    ``infos`` holds files already read (``-R``); ``identities`` carries the ``+II``
    counters of a run that spans several associations (by default a new run starts
    here). The installed observer hears of the association (the outcomes go to
    ``on_outcome`` only). ``show_contexts``: see :func:`run`."""
    pending = _Pending(paths, policy.repeat, on_outcome)
    identities = identities or new_identities(policy)
    observer, destination = current(), destination_name(settings)
    while True:
        dump.log_request(log, settings, show_contexts)
        log.info("Requesting Association")
        try:
            assoc = Association.open(settings)
        except DispatchError as exc:
            pending.not_sent_all(f"association failed: {exc}")
            return SendResult(EXIT_ERROR, f"Association Request Failed: {exc}")
        observer.association_opened(destination, assoc.setup_s)
        try:
            dump.log_accepted(log, settings, assoc, show_contexts)
            ended = _send_all(assoc, pending, policy, infos or {}, identities, on_bytes)
            if ended is not None:
                result, release = ended
                return _release(assoc, policy, result) if release else result
        finally:
            observer.association_closed(destination)
        # With -nh, a file that changed under the sender cost the association, not the
        # files after it: a new one is requested.


def _send_all(
    assoc: Association,
    pending: _Pending,
    policy: SendPolicy,
    infos: dict[str, DicomFileInfo],
    identities: Identities,
    on_bytes: BytesSink | None,
) -> tuple[SendResult, bool] | None:
    """Send what is pending: the result, and whether the association is still to be
    released (not after it was aborted or broke). None: with ``-nh`` a file ended early
    while it was sent (it changed after it was read), which aborted the association;
    what is still pending goes on over a new one."""
    items = (Item(path, infos.get(path)) for path in pending.queue)
    for step in send_files(assoc, items, policy, identities, on_bytes=on_bytes):
        if isinstance(step, Broken):
            path, exc = step.outcome.path, step.error
            pending.done(step.outcome)
            log.error("Store Failed, file: %s: %s", printable(path), printable(step.outcome.reason))
            if isinstance(exc, BadFile):
                # The file's own fault: the association was aborted to take back its
                # partial data set. As storescu with a bad file: halt, or go on.
                if policy.halt:
                    pending.not_sent_all(f"halted after {path}")
                    error = f"{path}: {step.outcome.reason}"
                    return SendResult(EXIT_ERROR, error, reported=True), False
                return None if pending.left else (SendResult(EXIT_OK), False)
            if isinstance(exc, PeerAborted):
                pending.not_sent_all("association aborted by the peer")
                code = EXIT_PEER_ABORTED if policy.halt else EXIT_ERROR
                return SendResult(code, str(exc), reported=True), False
            pending.not_sent_all(f"association ended: {exc}")
            return SendResult(EXIT_ERROR, str(exc), reported=True), False
        if not isinstance(step, FileOutcome):
            continue
        outcome, path = step, step.path
        pending.done(outcome)
        _rename(path, outcome, policy)
        if outcome.outcome is Outcome.STORED:
            if outcome.status:
                log.warning(
                    "Store Warning, file: %s: %s", printable(path), st.describe(outcome.status)
                )
            continue
        if outcome.outcome is Outcome.NOT_SENT:
            log.error("Not sent: %s: %s", printable(path), printable(outcome.reason))
            if policy.halt:
                assoc.abort()
                pending.not_sent_all(f"halted after {path}")
                return SendResult(EXIT_ERROR, f"{path}: {outcome.reason}", reported=True), False
            if not assoc.is_open:
                pending.not_sent_all("association ended")
                return SendResult(EXIT_ERROR, f"{path}: {outcome.reason}", reported=True), False
            continue
        assert outcome.status is not None
        described = st.describe(outcome.status)
        log.error("Store Failed, file: %s: %s", printable(path), described)
        if policy.halt:
            pending.not_sent_all(f"halted after {path} failed with {described}")
            # storescu ends the association in order after a failure status.
            return SendResult(outcome.status >> 8, f"{path}: {described}", reported=True), True
    return SendResult(EXIT_OK), True


def _release(assoc: Association, policy: SendPolicy, result: SendResult) -> SendResult:
    """End the association in order (A-ABORT with ``--abort``); a failure to do so
    makes the run's exit code 1, as in storescu, also after a failure status (a peer
    that answered Pending and then sent the late final answer is one way there)."""
    try:
        if policy.abort_at_end:
            log.info("Aborting Association")
            assoc.abort()
        else:
            log.info("Releasing Association")
            assoc.release()
    except DispatchError as exc:
        log.error("Association Release Failed: %s", exc)
        result = SendResult(EXIT_ERROR, result.error or f"release failed: {exc}")
    return result


class _Pending:
    """The (path, repetition) pairs still to send; reports each one's outcome once."""

    def __init__(self, paths: Sequence[str], repeat: int, sink: OutcomeSink) -> None:
        self._queue = [p for p in paths for _ in range(max(repeat, 1))]
        self._next = 0
        self._sink = sink

    @property
    def queue(self) -> Iterator[str]:
        """The entries still to send, in order (as they stand when this is called)."""
        return iter(self._queue[self._next :])

    def done(self, outcome: FileOutcome) -> None:
        self._next += 1
        self._sink(outcome)

    @property
    def left(self) -> int:
        """Entries still without an outcome."""
        return len(self._queue) - self._next

    def not_sent_all(self, reason: str) -> None:
        while self._next < len(self._queue):
            self.done(FileOutcome(self._queue[self._next], Outcome.NOT_SENT, reason=reason))


def _not_sent(
    paths: Sequence[str], policy: SendPolicy, sink: OutcomeSink, reason: str, times: int = 0
) -> None:
    for path in paths:
        for _ in range(times or policy.repeat):
            sink(FileOutcome(path, Outcome.NOT_SENT, reason=reason))


def _rename(path: str, outcome: FileOutcome, policy: SendPolicy) -> None:
    if not policy.rename:
        return
    suffix = ".done" if outcome.outcome is Outcome.STORED else ".bad"
    try:
        os.replace(path, path + suffix)
    except OSError as exc:
        log.warning("cannot rename %s: %s", printable(path), exc.strerror)
