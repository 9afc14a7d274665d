"""Send files over one association under a halt/continue policy, as storescu does.

This is the engine's public entry point for callers that send many files: the
command line (``dispatch send``) and the workers of the distributed sender both use
:func:`store_file` to send one file over an open association and
:func:`send_files` to run a whole list with storescu's rules and exit codes.

Every file given to :func:`send_files` ends in exactly one :class:`FileOutcome`,
reported through the ``on_outcome`` callback in input order.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from stat import S_ISDIR
from typing import BinaryIO

from dispatch import status as st
from dispatch.codecs import needs_codec
from dispatch.codecs.convert import target_checker
from dispatch.dicomfile import DicomFileInfo, read_info, read_info_and_data
from dispatch.errors import (
    BadFile,
    DispatchError,
    NoPresentationContext,
    PeerAborted,
)
from dispatch.identities import Identity, Inventor, inventor_for, new_seed
from dispatch.net import AcceptedContext, Association, DataSource
from dispatch.observe import current, destination_name
from dispatch.outcome import FileOutcome, Outcome
from dispatch.proposals import choose_context
from dispatch.settings import AssociationSettings, SendPolicy
from dispatch.uids import DEFLATED_LE, EXPLICIT_LE, IMPLICIT_LE

log = logging.getLogger("dispatch.send")

OutcomeSink = Callable[[FileOutcome], None]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_PEER_ABORTED = 10


def _strip_padding(uid: str, policy: SendPolicy) -> str:
    return uid[:-1] if policy.uid_padding and uid.endswith(" ") else uid


@dataclass(frozen=True)
class Prepared:
    """A file read and matched to an accepted context, or the reason it cannot be sent."""

    path: str
    info: DicomFileInfo | None = None
    context: AcceptedContext | None = None
    reason: str = ""
    identity: Identity | None = None
    """Invented identities to send the file with (+II); set after :func:`prepare`."""
    data: bytes | None = None
    """The whole file as read with ``info`` (small files), sent without reading the
    file again; None: the file is read when it is sent."""


def prepare(
    assoc: Association,
    path: str,
    policy: SendPolicy,
    info: DicomFileInfo | None = None,
    data: bytes | None = None,
) -> Prepared:
    """Read ``path`` (unless ``info`` is given) and choose its presentation context.
    Never raises for a bad file: the reason comes back in :attr:`Prepared.reason`.

    ``data``, with ``info``: the whole file, read by the caller after it made sure
    that ``info`` still describes it (see :attr:`Prepared.data`)."""
    try:
        if info is None:
            info, data = read_info_and_data(path, policy.read_mode)
        context = choose_context(
            assoc.contexts_for(info.sop_class_uid),
            info.sop_class_uid,
            info.transfer_syntax,
            policy.prefer_deflated,
            policy.allow_lossy,
            target_checker(info),
        )
    except BadFile as exc:
        return Prepared(path, reason=exc.reason)
    except NoPresentationContext as exc:
        # The file was read: with +II it takes its turn of the counters, as in storescu.
        return Prepared(path, info, reason=str(exc))
    return Prepared(path, info, context, data=data)


def store_file(
    assoc: Association,
    path: str,
    policy: SendPolicy,
    info: DicomFileInfo | None = None,
) -> FileOutcome:
    """Send one file over ``assoc`` and return its outcome.

    A file that cannot be read, or that no accepted context can carry, comes back as
    NOT_SENT (nothing reached the peer); a peer's answer as STORED or FAILED. Errors
    of the association itself (timeouts, resets, aborts, protocol errors) are raised
    as :class:`DispatchError` after the association has been aborted: the file was
    not confirmed, and the caller decides what it means.
    """
    return send_prepared(assoc, prepare(assoc, path, policy, info), policy)


def send_prepared(
    assoc: Association,
    prepared: Prepared,
    policy: SendPolicy,
    meanwhile: Callable[[], None] | None = None,
) -> FileOutcome:
    """:func:`store_file` for a file already prepared. ``meanwhile`` runs after the
    data set has gone out and before the response is awaited: the peer's time to
    store the file is then not lost to the sender's own work (reading the next file).

    The data set goes from :attr:`Prepared.data` when the prepared file carries it and
    nothing is converted; else the file is read now. A file that has become shorter
    than its :class:`DicomFileInfo` says raises :class:`BadFile` (a
    :class:`DispatchError`) after the association was aborted.
    """
    path, info, context = prepared.path, prepared.info, prepared.context
    if info is None or context is None:
        if meanwhile is not None:
            meanwhile()
        return FileOutcome(path, Outcome.NOT_SENT, reason=prepared.reason)
    started = time.monotonic()
    sop_class = _strip_padding(info.sop_class_uid, policy)
    sop_instance = _strip_padding(info.sop_instance_uid, policy)
    identity = prepared.identity
    replace = None
    if identity is not None:
        # The C-STORE names the instance the peer receives: the invented one.
        sop_instance, replace = identity.sop_instance_uid, identity.replacements()
        log.info("Inventing Identifying Information (%s)", identity.describe())
    log.info("Sending file: %s", path)
    target = context.transfer_syntax
    as_stored = target == info.transfer_syntax and not (
        bool(replace) or (not policy.new_vrs and target != IMPLICIT_LE)
    )
    try:
        if as_stored and prepared.data is not None:
            offset = info.dataset_offset
            dataset = memoryview(prepared.data)[offset : offset + info.dataset_length]
            message_id = assoc.send_request(
                context, sop_class, sop_instance, DataSource.memory(path, dataset)
            )
        elif as_stored:
            fd = os.open(path, os.O_RDONLY)
            try:
                data = DataSource.file_range(path, fd, info.dataset_offset, info.dataset_length)
                message_id = assoc.send_request(context, sop_class, sop_instance, data)
            finally:
                os.close(fd)
        else:
            with open(path, "rb") as fileobj:
                try:
                    data = _converted(
                        info, context, fileobj, policy.deflate_level, replace, not policy.new_vrs
                    )
                except BadFile as exc:
                    # Pixel data that cannot be converted: nothing was sent (dispatch.codecs).
                    if meanwhile is not None:
                        meanwhile()
                    return FileOutcome(
                        path, Outcome.NOT_SENT, reason=exc.reason, sop_instance_uid=sop_instance
                    )
                message_id = assoc.send_request(context, sop_class, sop_instance, data)
    except OSError as exc:
        # Opening failed: the file vanished or lost its permissions since it was read.
        if meanwhile is not None:
            meanwhile()
        reason = f"cannot open: {exc.strerror or exc}"
        return FileOutcome(path, Outcome.NOT_SENT, reason=reason, sop_instance_uid=sop_instance)
    if meanwhile is not None:
        meanwhile()
    response = assoc.receive_response(message_id)
    kind = st.category(response.status)
    if kind is st.StatusCategory.FAILURE:
        outcome, reason, sent = Outcome.FAILED, st.meaning(response.status), 0
        if response.error_comment:
            reason += f": {response.error_comment}"
    else:
        outcome, sent = Outcome.STORED, info.dataset_length
        reason = "" if kind is st.StatusCategory.SUCCESS else st.meaning(response.status)
    return FileOutcome(
        path,
        outcome,
        status=response.status,
        reason=reason,
        bytes=sent,
        sop_class_uid=sop_class,
        sop_instance_uid=sop_instance,
        transfer_syntax=target,
        seconds=time.monotonic() - started,
    )


def _converted(
    info: DicomFileInfo,
    context: AcceptedContext,
    handle: BinaryIO,
    deflate_level: int,
    replace: Mapping[int, bytes] | None = None,
    old_vrs: bool = False,
) -> DataSource:
    """The file's data set converted while streaming, for a context whose syntax is
    not the file's or when elements are rewritten. ``replace`` and ``old_vrs``: see
    :func:`~dispatch.transcode.convert_dataset` (invented identities, ``-u``)."""
    source, target = info.transfer_syntax, context.transfer_syntax
    if needs_codec(source, target):
        # Pixel data decoded or encoded; raises BadFile before anything is sent.
        from dispatch.codecs.convert import open_conversion

        log.info("Converting pixel data: %s -> %s", source, target)
        converted = open_conversion(
            handle, info, target, deflate_level, replace=replace, old_vrs=old_vrs
        )
        return DataSource.stream(info.path, converted)
    from dispatch.deflate import deflate
    from dispatch.transcode import convert_dataset

    if target != source:
        log.info("Converting transfer syntax: %s -> %s", source, target)
    plain_target = EXPLICIT_LE if target == DEFLATED_LE else target
    chunks = convert_dataset(
        handle,
        info.dataset_offset,
        info.dataset_length,
        source,
        plain_target,
        replace=replace,
        old_vrs=old_vrs,
    )
    if target == DEFLATED_LE:
        chunks = deflate(chunks, deflate_level)
    return DataSource.stream(info.path, chunks)


@dataclass
class SendResult:
    """How a run ended: storescu's exit code and, when it ended early, why."""

    exit_code: int
    error: str = ""


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
        log.warning("%s: %s, ignoring file", reason, path)
    return usable, ""


def send_files(
    settings: AssociationSettings,
    paths: Sequence[str],
    policy: SendPolicy,
    on_outcome: OutcomeSink,
    infos: dict[str, DicomFileInfo] | None = None,
    identities: InventedIdentities | None = None,
) -> SendResult:
    """Send ``paths`` over one association with storescu's halt/continue rules.

    ``identities`` carries the ``+II`` counters of a run that spans several
    associations (by default a new run starts here).

    ``infos`` holds files already read (``-R`` reads every file first to learn its SOP
    class). Exit codes: 0; 1 for a bad file, no presentation context, a network error
    or a failed association; ``status >> 8`` for a failure status in halt mode; 10 when
    the peer aborted in halt mode. The installed observer hears of the association
    (the outcomes go to ``on_outcome`` only).
    """
    pending = _Pending(paths, policy.repeat, on_outcome)
    try:
        assoc = Association.open(settings)
    except DispatchError as exc:
        pending.not_sent_all(f"association failed: {exc}")
        return SendResult(EXIT_ERROR, f"Association Request Failed: {exc}")
    observer, destination = current(), destination_name(settings)
    observer.association_opened(destination, assoc.setup_s)
    if identities is None:
        identities = InventedIdentities(policy)
    try:
        return _send_all(assoc, settings, pending, policy, infos, identities)
    finally:
        observer.association_closed(destination)


def _send_all(
    assoc: Association,
    settings: AssociationSettings,
    pending: _Pending,
    policy: SendPolicy,
    infos: dict[str, DicomFileInfo] | None,
    identities: InventedIdentities,
) -> SendResult:
    """:func:`send_files` once the association is open; ends it before returning."""
    _log_contexts(settings, assoc)
    result = SendResult(EXIT_OK)
    known = infos or {}
    ahead: dict[int, Prepared] = {}

    def read_ahead() -> None:
        # Runs while the peer stores the current file (see send_prepared).
        upcoming = pending.peek()
        if upcoming is not None:
            index, next_path = upcoming
            prepared = prepare(assoc, next_path, policy, known.get(next_path))
            if policy.rename and prepared.data is not None:
                # Renaming the current file may move this one (a repetition of it): as
                # in storescu, it is read again when its turn comes.
                prepared = dataclasses.replace(prepared, data=None)
            ahead[index] = prepared

    for path in pending:
        index = pending.position
        prepared = ahead.pop(index, None) or prepare(assoc, path, policy, known.get(path))
        if identities.inventor is not None and prepared.info is not None:
            prepared = dataclasses.replace(prepared, identity=identities.next())
        try:
            outcome = send_prepared(assoc, prepared, policy, read_ahead)
        except PeerAborted as exc:
            pending.done(FileOutcome(path, Outcome.FAILED, reason=str(exc)))
            log.error("Store Failed, file: %s: %s", path, exc)
            pending.not_sent_all("association aborted by the peer")
            code = EXIT_PEER_ABORTED if policy.halt else EXIT_ERROR
            return SendResult(code, str(exc))
        except DispatchError as exc:
            pending.done(FileOutcome(path, Outcome.FAILED, reason=str(exc)))
            log.error("Store Failed, file: %s: %s", path, exc)
            pending.not_sent_all(f"association ended: {exc}")
            return SendResult(EXIT_ERROR, str(exc))
        pending.done(outcome)
        _rename(path, outcome, policy)
        if outcome.outcome is Outcome.STORED:
            if outcome.status:
                log.warning("Store Warning, file: %s: %s", path, st.describe(outcome.status))
            continue
        if outcome.outcome is Outcome.NOT_SENT:
            log.error("Not sent: %s: %s", path, outcome.reason)
            if policy.halt:
                assoc.abort()
                pending.not_sent_all(f"halted after {path}")
                return SendResult(EXIT_ERROR, f"{path}: {outcome.reason}")
            if not assoc.is_open:
                pending.not_sent_all("association ended")
                return SendResult(EXIT_ERROR, f"{path}: {outcome.reason}")
            continue
        assert outcome.status is not None
        log.error("Store Failed, file: %s: %s", path, st.describe(outcome.status))
        if policy.halt:
            pending.not_sent_all(f"halted after {path} failed with {st.describe(outcome.status)}")
            result = SendResult(outcome.status >> 8, f"{path}: {st.describe(outcome.status)}")
            break
    try:
        if policy.abort_at_end:
            log.info("Aborting Association")
            assoc.abort()
        else:
            log.info("Releasing Association")
            assoc.release()
    except DispatchError as exc:
        log.error("Association Release Failed: %s", exc)
        if result.exit_code == EXIT_OK:
            result = SendResult(EXIT_ERROR, f"release failed: {exc}")
    return result


class InventedIdentities:
    """The ``+II`` counters of one run: they go on across files, repeats and the
    associations of a run (storescu's counters never restart)."""

    def __init__(self, policy: SendPolicy) -> None:
        self.inventor: Inventor | None = inventor_for(policy, new_seed(), clock=True)
        self._used = 0

    def next(self) -> Identity:
        """The identities of the next instance sent."""
        assert self.inventor is not None
        identity = self.inventor.identity(self._used)
        self._used += 1
        return identity


class _Pending:
    """The (path, repetition) pairs still to send; reports each one's outcome once."""

    def __init__(self, paths: Sequence[str], repeat: int, sink: OutcomeSink) -> None:
        self._queue = [p for p in paths for _ in range(max(repeat, 1))]
        self._next = 0
        self._sink = sink

    def __iter__(self) -> Iterator[str]:
        while self._next < len(self._queue):
            yield self._queue[self._next]

    @property
    def position(self) -> int:
        """Index of the entry being sent."""
        return self._next

    def peek(self) -> tuple[int, str] | None:
        """The entry after the one being sent, if any."""
        following = self._next + 1
        return (following, self._queue[following]) if following < len(self._queue) else None

    def done(self, outcome: FileOutcome) -> None:
        self._next += 1
        self._sink(outcome)

    def not_sent_all(self, reason: str) -> None:
        while self._next < len(self._queue):
            self.done(FileOutcome(self._queue[self._next], Outcome.NOT_SENT, reason=reason))


def _rename(path: str, outcome: FileOutcome, policy: SendPolicy) -> None:
    if not policy.rename:
        return
    suffix = ".done" if outcome.outcome is Outcome.STORED else ".bad"
    try:
        os.replace(path, path + suffix)
    except OSError as exc:
        log.warning("cannot rename %s: %s", path, exc.strerror)


def _log_contexts(settings: AssociationSettings, assoc: Association) -> None:
    log.info("Association Accepted (Max Send PDV: %d)", assoc.max_send_pdu - 6)
    if not log.isEnabledFor(logging.DEBUG - 1):
        return
    accepted = {c.context_id: c for c in assoc.accepted}
    for proposed in settings.contexts:
        got = accepted.get(proposed.context_id)
        state = f"accepted {got.transfer_syntax}" if got else "rejected"
        log.log(
            logging.DEBUG - 1,
            "Context %d: %s [%s] %s",
            proposed.context_id,
            proposed.abstract_syntax,
            ", ".join(proposed.transfer_syntaxes),
            state,
        )


def read_all(
    paths: Sequence[str], policy: SendPolicy, on_outcome: OutcomeSink
) -> tuple[list[str], dict[str, DicomFileInfo], str]:
    """Read every file up front (for ``-R``). Same contract as :func:`check_inputs`:
    a bad file gets its NOT_SENT outcome; in halt mode it is fatal."""
    infos: dict[str, DicomFileInfo] = {}
    usable: list[str] = []
    for index, path in enumerate(paths):
        try:
            infos[path] = read_info(path, policy.read_mode)
        except BadFile as exc:
            on_outcome(FileOutcome(path, Outcome.NOT_SENT, reason=exc.reason))
            if policy.halt:
                return usable + list(paths[index + 1 :]), infos, f"Bad DICOM file: {exc}"
            log.error("Bad DICOM file: %s", exc)
            continue
        usable.append(path)
    return usable, infos, ""


__all__ = ["SendResult", "check_inputs", "read_all", "send_files", "store_file"]
