"""The one per-file path: read a file, match it to a context, send it, take the answer.

:func:`send_files` sends a stream of :class:`Item` over one open association, in order,
and yields each item's outcome. It reads the next item (and chooses its context) while
the peer stores the current one, so that the peer's time to store a file is not lost to
the sender's own work. Both use cases send through it: ``dispatch send``
(:mod:`dispatch.storescu`) and the chunk runner of jobs (:mod:`dispatch.jobs.runner`).

What it decides, once for both:

- a file that cannot be read, that no accepted context can carry, or that its item
  names a problem for (:attr:`Item.problem`) is NOT_SENT: nothing reached the peer;
- the peer's answer makes the file STORED (a warning included) or FAILED;
- every file attempted uses up a message ID, sent or not, as storescu numbers them
  (a file not sent leaves a gap);
- with ``+II`` each file read is sent under invented identities (:class:`Identities`);
- with the halt policy the run stops after the first file that was not stored;
- an association that broke (a timeout, a reset, an abort, a protocol error) ends the
  run with :class:`Broken`: the file in flight was not confirmed, and the association is
  gone. A file that ended early while its data set went out (it changed after it was
  read) breaks it too: the peer has part of a data set, which only an A-ABORT takes
  back; that file is FAILED, "file changed while being sent: ...", and the others are
  still sendable over a new association (:class:`BadFile` is the error).

How the association ends, and what the files not reached become, is the caller's rule.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from dispatch import status as st
from dispatch.codecs.convert import target_checker
from dispatch.dcmtk_names import transfer_syntax_title
from dispatch.dicomfile import (
    SOP_CLASS_UID,
    SOP_INSTANCE_UID,
    STUDY_INSTANCE_UID,
    DicomFileInfo,
    read_info_and_data,
    uid_value,
)
from dispatch.errors import BadFile, DispatchError, NoPresentationContext
from dispatch.identities import Identity, Inventor
from dispatch.logtext import printable
from dispatch.modalities import modality_of
from dispatch.net import AcceptedContext, Association, DataSource, StoreResponse, dump
from dispatch.outcome import FileOutcome, Outcome
from dispatch.proposals import choose_context
from dispatch.settings import SendPolicy
from dispatch.uids import DEFLATED_LE, IMPLICIT_LE

__all__ = [
    "PROGRESS_INTERVAL_S",
    "PROGRESS_MIN_BYTES",
    "Broken",
    "BytesSink",
    "Identities",
    "Item",
    "Prepared",
    "Step",
    "Waiting",
    "prepare",
    "send_files",
    "send_prepared",
]

log = logging.getLogger("dispatch.send")

BytesSink = Callable[[int], None]
"""Hears the data-set bytes of the file in flight sent so far (see :func:`send_files`)."""

PROGRESS_INTERVAL_S = 0.5
"""A :data:`BytesSink` hears of a file in flight at most this often."""
PROGRESS_MIN_BYTES = 1 << 20
"""Data sets smaller than this go out without a word of progress: they take no time, and
the many small files of an archive pay nothing for it."""


@dataclass(frozen=True, slots=True)
class Item:
    """One file to send, as its caller knows it."""

    path: str
    info: DicomFileInfo | None = None
    """The file as read before (the file is read when None)."""
    data: bytes | None = None
    """With ``info``: the whole file, read together with it (sent without reading the
    file again)."""
    problem: str = ""
    """Why the file may not be sent ("" when it may): it is then NOT_SENT with this
    reason, unread."""
    number: int | None = None
    """The instance's number for invented identities; None: the next number of the run."""


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


@dataclass(frozen=True, slots=True)
class Waiting:
    """A file's data set has gone out and the next item was read; its answer is awaited.
    ``stalled``: the peer did not start answering within the grace the caller gave."""

    stalled: bool


_STALLED: Final = Waiting(True)
_ARRIVING: Final = Waiting(False)


@dataclass(frozen=True, slots=True)
class Broken:
    """The exchange of ``outcome.path`` broke; the association is gone. ``outcome`` is
    that file's FAILED outcome (its reason the error's text)."""

    outcome: FileOutcome
    error: DispatchError


Step = FileOutcome | Waiting | Broken
"""What :func:`send_files` yields."""


class Identities:
    """The ``+II`` identities of one run (None: the run invents none).

    Numbers go on across files, repeats and the associations of a run, as storescu's
    counters do; an :class:`Item` with a number of its own uses that one instead."""

    def __init__(self, inventor: Inventor | None) -> None:
        self.inventor = inventor
        self._used = 0

    def for_item(self, number: int | None) -> Identity:
        """The identities of the instance ``number`` (None: the run's next)."""
        assert self.inventor is not None
        if number is None:
            number = self._used
            self._used += 1
        return self.inventor.identity(number)


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


def send_prepared(assoc: Association, prepared: Prepared, policy: SendPolicy) -> FileOutcome:
    """Send one prepared file over ``assoc`` and return its outcome.

    A file that cannot be read, or that no accepted context can carry, comes back as
    NOT_SENT (nothing reached the peer); a peer's answer as STORED or FAILED. Errors
    of the association itself (timeouts, resets, aborts, protocol errors; a file that
    became shorter than its :class:`DicomFileInfo` says: :class:`BadFile`) are raised as
    :class:`DispatchError` after the association has been aborted: the file was not
    confirmed, and the caller decides what it means."""
    request = _request(assoc, prepared, policy)
    if isinstance(request, FileOutcome):
        return request
    return _answer(assoc, *request)


_Request = tuple[Prepared, int, str, str, float]
"""A request gone out: the file, its message ID, the SOP class and instance it was sent
as, when it started."""


def _request(
    assoc: Association,
    prepared: Prepared,
    policy: SendPolicy,
    on_bytes: BytesSink | None = None,
) -> FileOutcome | _Request:
    """Send the C-STORE request of ``prepared``, or its NOT_SENT outcome when nothing
    could be sent; ``on_bytes`` hears of a large data set as it goes."""
    path, info, context = prepared.path, prepared.info, prepared.context
    verbose = log.isEnabledFor(logging.INFO)  # the lines are built only when shown
    if verbose:
        # As storescu, before anything is known of the file (a bad one included).
        log.info("Sending file: %s", printable(path))
    if info is None or context is None:
        assoc.skip_message_id()
        return FileOutcome(path, Outcome.NOT_SENT, reason=prepared.reason)
    started = time.monotonic()
    sop_class, sop_instance = info.sop_class_uid, info.sop_instance_uid
    identity = prepared.identity
    replace = _unpadded(info)
    if identity is not None:
        # The C-STORE names the instance the peer receives: the invented one.
        sop_instance = identity.sop_instance_uid
        replace = {**(replace or {}), **identity.replacements()}
        if verbose:
            log.info("Inventing Identifying Information (%s)", identity.describe())
    target = context.transfer_syntax
    if verbose:
        log.info(
            "Converting transfer syntax: %s -> %s",
            transfer_syntax_title(info.transfer_syntax),
            transfer_syntax_title(target),
        )
    progress = None
    if on_bytes is not None and info.dataset_length >= PROGRESS_MIN_BYTES:
        progress = _Paced(on_bytes)
    as_stored = target == info.transfer_syntax and not (
        bool(replace)
        or (not policy.new_vrs and target != IMPLICIT_LE)
        # An odd deflate stream (DCMTK pads its own to even length) is deflated anew,
        # as storescu sends every deflated data set.
        or (target == DEFLATED_LE and info.dataset_length % 2)
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
                data = DataSource(
                    path, fd, info.dataset_offset, info.dataset_length, progress=progress
                )
                message_id = assoc.send_request(context, sop_class, sop_instance, data)
            finally:
                os.close(fd)
        else:
            from dispatch.codecs.stream import open_converted

            with open(path, "rb") as fileobj:
                try:
                    chunks = open_converted(
                        fileobj, info, target, policy.deflate_level, replace, not policy.new_vrs
                    )
                except BadFile as exc:
                    # Pixel data that cannot be converted: nothing was sent.
                    assoc.skip_message_id()
                    return FileOutcome(
                        path, Outcome.NOT_SENT, reason=exc.reason, sop_instance_uid=sop_instance
                    )
                data = DataSource(path, chunks=chunks, progress=progress)
                message_id = assoc.send_request(context, sop_class, sop_instance, data)
    except OSError as exc:
        # Opening failed: the file vanished or lost its permissions since it was read.
        assoc.skip_message_id()
        reason = f"cannot open: {exc.strerror or exc}"
        return FileOutcome(path, Outcome.NOT_SENT, reason=reason, sop_instance_uid=sop_instance)
    if verbose:
        log.info("Sending Store Request (MsgID %d, %s)", message_id, modality_of(sop_class))
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s", dump.store_rq(message_id, sop_class, sop_instance))
    return prepared, message_id, sop_class, sop_instance, started


def _answer(
    assoc: Association,
    prepared: Prepared,
    message_id: int,
    sop_class: str,
    sop_instance: str,
    started: float,
) -> FileOutcome:
    """Await the answer to a request gone out; the file's outcome."""
    assert prepared.info is not None and prepared.context is not None
    response = assoc.receive_response(message_id)
    if log.isEnabledFor(logging.INFO):
        _log_response(prepared.context.context_id, message_id, response)
    kind = st.category(response.status)
    if kind is st.StatusCategory.FAILURE:
        outcome, reason, sent = Outcome.FAILED, st.meaning(response.status), 0
        if response.error_comment:
            reason += f": {response.error_comment}"
    else:
        outcome, sent = Outcome.STORED, prepared.info.dataset_length
        reason = "" if kind is st.StatusCategory.SUCCESS else st.meaning(response.status)
    return FileOutcome(
        prepared.path,
        outcome,
        status=response.status,
        reason=reason,
        bytes=sent,
        sop_class_uid=sop_class,
        sop_instance_uid=sop_instance,
        transfer_syntax=prepared.context.transfer_syntax,
        seconds=time.monotonic() - started,
    )


def send_files(
    assoc: Association,
    items: Iterable[Item],
    policy: SendPolicy,
    identities: Identities,
    *,
    grace_s: float | None = None,
    on_bytes: BytesSink | None = None,
) -> Iterator[Step]:
    """Send ``items`` in order over ``assoc``; yield one :class:`FileOutcome` per item
    sent or refused, in order.

    The next item is taken from ``items`` and read while the peer stores the current
    one, so ``items`` may be lazy: a caller's check of a file runs at that time. With
    ``grace_s``, a :class:`Waiting` comes before each answer awaited (stalled when the
    peer has not begun to answer within ``grace_s``): the caller's own work then overlaps
    the peer's. ``on_bytes`` hears, at most every :data:`PROGRESS_INTERVAL_S`, how many
    data-set bytes of the file in flight went out so far (files of at least
    :data:`PROGRESS_MIN_BYTES`; a slow link then does not look like a hang).

    The run ends after the last item; after the first file not stored when
    ``policy.halt`` (the association is left to the caller to end); with a file not sent
    that left the association closed; or with :class:`Broken` (the association is gone).
    An item taken from ``items`` but not reached is the caller's to account for: count
    the outcomes. The caller may stop taking steps at any time (the item read ahead is
    then dropped unsent)."""
    feed = iter(items)
    upcoming = next(feed, None)
    ahead: Prepared | None = None
    inventing = identities.inventor is not None
    while upcoming is not None:
        item, upcoming = upcoming, None
        prepared = ahead if ahead is not None else _prepare_item(assoc, item, policy)
        ahead = None
        if inventing and prepared.info is not None:
            prepared = dataclasses.replace(prepared, identity=identities.for_item(item.number))
        try:
            request = _request(assoc, prepared, policy, on_bytes)
            # While the peer stores this file (or at once after a file not sent).
            upcoming = next(feed, None)
            if upcoming is not None:
                ahead = _prepare_item(assoc, upcoming, policy)
                if policy.rename and ahead.data is not None:
                    # Renaming this file may move that one (a repetition of it): as in
                    # storescu, it is read again when its turn comes.
                    ahead = dataclasses.replace(ahead, data=None)
            if isinstance(request, FileOutcome):
                outcome = request
            else:
                if grace_s is not None:
                    yield _ARRIVING if assoc.reply_arriving(grace_s) else _STALLED
                outcome = _answer(assoc, *request)
        except DispatchError as exc:
            yield Broken(
                FileOutcome(item.path, Outcome.FAILED, reason=_broken_reason(exc, prepared)), exc
            )
            return
        yield outcome
        if outcome.outcome is not Outcome.STORED and (policy.halt or not assoc.is_open):
            return


def _log_response(context_id: int, message_id: int, response: StoreResponse) -> None:
    """storescu's lines for a C-STORE-RSP: with its status text at info level, or at
    debug level the whole response (and an error comment as its status detail)."""
    if not log.isEnabledFor(logging.DEBUG):
        log.info("Received Store Response (%s)", dump.store_status(response.status))
        return
    log.info("Received Store Response")
    log.debug(
        "%s",
        dump.store_rsp(
            context_id,
            message_id,
            response.sop_class_uid,
            response.sop_instance_uid,
            response.status,
        ),
    )
    if response.error_comment:
        log.debug("Status Detail:\n(0000,0902) LO [%s]", printable(response.error_comment))


def _broken_reason(exc: DispatchError, prepared: Prepared) -> str:
    """The reason of the file in flight when ``exc`` broke the association. A file that
    ended early under the sender (it is now shorter than when it was read) says so."""
    if not isinstance(exc, BadFile):
        return str(exc)
    info = prepared.info
    try:
        size = os.stat(prepared.path).st_size
    except OSError:
        size = -1
    if info is not None and size < info.dataset_offset + info.dataset_length:
        now = f"{size} bytes now" if size >= 0 else "gone now"
        return (
            f"file changed while being sent: {info.dataset_offset + info.dataset_length}"
            f" bytes when read, {now}"
        )
    return str(exc)


def _prepare_item(assoc: Association, item: Item, policy: SendPolicy) -> Prepared:
    if item.problem:
        return Prepared(item.path, reason=item.problem)
    return prepare(assoc, item.path, policy, item.info, item.data)


def _unpadded(info: DicomFileInfo) -> dict[int, bytes] | None:
    """The space-padded UIDs of ``info`` as storescu sends them (NUL-padded), by tag;
    None when the file has none."""
    if not info.space_padded:
        return None
    values = {
        SOP_CLASS_UID: info.sop_class_uid,
        SOP_INSTANCE_UID: info.sop_instance_uid,
        STUDY_INSTANCE_UID: info.study_instance_uid or "",
    }
    return {tag: uid_value(values[tag]) for tag in info.space_padded}


class _Paced:
    """A :data:`BytesSink` called at most every :data:`PROGRESS_INTERVAL_S`."""

    __slots__ = ("_next", "_sink")

    def __init__(self, sink: BytesSink) -> None:
        self._sink = sink
        self._next = time.monotonic() + PROGRESS_INTERVAL_S

    def __call__(self, sent: int) -> None:
        now = time.monotonic()
        if now >= self._next:
            self._next = now + PROGRESS_INTERVAL_S
            self._sink(sent)
