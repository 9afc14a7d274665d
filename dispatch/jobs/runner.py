"""The body of one task: send one chunk of a job over one association.

:func:`run_chunk` is shared by the Celery task and the embedded mode. It is idempotent:
a file the peer already confirmed for this job is never sent again, and a chunk another
runner holds (or has finished) is left alone, so running it twice (a redelivered task,
a chunk handed on after a worker died) is harmless.

Outcomes, per file: STORED; FAILED (a failure status, or the exchange broke while the
file was in flight); NOT_SENT (bad file, no presentation context, missing or changed
since submission, the job halted or was cancelled, the association was refused
permanently). Transient trouble (refused or reset connections, timeouts,
rejected-transient, peer abort, statuses 0xA7xx) records nothing: the runner returns
``RETRY`` with the files still to send, and its caller schedules the retry or, when the
retries are spent, gives up (:mod:`dispatch.jobs.attempt`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import chain

from dispatch.dicomfile import WHOLE_READ_MAX
from dispatch.errors import (
    ConnectFailed,
    ConnectionLost,
    DispatchError,
    NetworkTimeout,
    TransientError,
)
from dispatch.identities import inventor_for
from dispatch.jobs.model import Chunk, FileRef, JobSpec, JobState
from dispatch.jobs.slots import Heartbeat, SlotPool, wait_for_slot
from dispatch.jobs.store import JobStore
from dispatch.logtext import printable
from dispatch.net import Association
from dispatch.observe import SendObserver, current
from dispatch.outcome import FileOutcome, Outcome
from dispatch.status import describe, is_transient
from dispatch.transfer import Broken, Identities, Item, Waiting, send_files

log = logging.getLogger("dispatch.jobs")

ProgressSink = Callable[[FileOutcome], None]

_STOP_CHECK_S = 0.25
"""The job's halt and cancel flags are read again after this long (not once per file)."""
RECORD_BATCH = 64
_RECORD_DELAY_S = 0.25
"""Stored outcomes are recorded in batches of up to this many, at most this long after
the first of them (at once when the peer is slow: see :data:`REPLY_GRACE_S`), while the peer
stores the next file: one store call per batch costs
a fraction of one per file. A runner killed before a batch is recorded leaves those
files unconfirmed; the runner that takes the chunk over sends them once more."""
REPLY_GRACE_S = 0.1
"""A response that takes longer than this has what is held recorded while it is awaited,
and marks the flags for a fresh read: the job may be halted or cancelled while a slow
(or stalled) peer stores a file. Longer than a network's round trip: over a link of
milliseconds every answer takes that long, and a store call per file (with a flag read
before the next file) would cost more than the batches save."""


class ChunkStatus(StrEnum):
    DONE = "done"
    """Every file of the chunk has its outcome (or the chunk was done already)."""
    RETRY = "retry"
    """A transient failure: ``remaining`` must be tried again later."""
    BUSY = "busy"
    """Another runner holds the chunk; nothing was done."""
    LOST = "lost"
    """This runner lost its lease, or was asked to stop (:func:`request_stop`), and
    stopped after its current file; the chunk will be handed on."""


@dataclass(frozen=True)
class ChunkResult:
    """How one run of a chunk ended."""

    status: ChunkStatus
    chunk_id: str
    recorded: int = 0
    """Outcomes this run recorded."""
    remaining: tuple[str, ...] = ()
    """With RETRY: the paths still to send, in order."""
    error: str = ""
    """With RETRY: what went wrong."""
    failed_path: str = ""
    """With RETRY: the file in flight when it went wrong ("" when none was)."""
    failed_status: int | None = None
    """With RETRY after a 0xA7xx answer: that status."""
    job_finished: bool = False
    """This run finished the job's last chunk."""
    reason: str = ""
    """With RETRY: why, one of :data:`dispatch.observe.RETRY_REASONS` (``association``:
    the destination could not be reached or refused the association)."""
    unreachable: bool = False
    """With RETRY ``association``: no answer from the destination at all (connection
    refused, reset or timed out), as opposed to an association it rejected."""


def default_holder() -> str:
    """A name for a lease holder, unique per run: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def changed_since_submission(ref: FileRef) -> str:
    """Why the file may not be sent as submitted ("" when it is unchanged).

    A file whose directory is not there either (or whose path is relative) is "not
    visible on this host (HOST)": most likely a worker without the submitter's file
    system, not a file deleted since."""
    try:
        st = os.stat(ref.path)
    except FileNotFoundError:
        if not os.path.isabs(ref.path) or not os.path.isdir(os.path.dirname(ref.path)):
            return f"not visible on this host ({socket.gethostname()})"
        return "missing since submission"
    except OSError as exc:
        return f"cannot access: {exc.strerror or exc}"
    if st.st_size != ref.size or st.st_mtime_ns != ref.mtime_ns:
        return "changed since submission"
    return ""


def read_unchanged(ref: FileRef, whole: bool = True) -> tuple[str, bytes | None]:
    """:func:`changed_since_submission`, and for an unchanged file of at most
    :data:`~dispatch.dicomfile.WHOLE_READ_MAX` bytes (with ``whole``) its contents, read
    from the same open file as the size and modification time that were checked.

    Returns (problem, contents): the problem "" when the file may be sent; the
    contents None when it is bigger, or was not read whole (the sender reads it then).
    """
    try:
        # O_NONBLOCK: what replaced the file may be a FIFO, which must not block here.
        fd = os.open(ref.path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return "missing since submission", None
    except OSError:
        # An unreadable file keeps its verdict by path; opening it fails when it is sent.
        return changed_since_submission(ref), None
    try:
        st = os.fstat(fd)
        if st.st_size != ref.size or st.st_mtime_ns != ref.mtime_ns:
            return "changed since submission", None
        if not whole or st.st_size > WHOLE_READ_MAX:
            return "", None
        data = os.read(fd, st.st_size)
    except OSError:
        return changed_since_submission(ref), None
    finally:
        os.close(fd)
    # Shorter than its size a moment ago: the sender reads it again, and finds out.
    return "", data if len(data) == st.st_size else None


def run_chunk(
    spec: JobSpec,
    chunk: Chunk,
    store: JobStore,
    slots: SlotPool,
    *,
    holder: str | None = None,
    lease_s: float = 10.0,
    slot_poll_cap_s: float = 2.0,
    on_progress: ProgressSink | None = None,
    observer: SendObserver | None = None,
) -> ChunkResult:
    """Send the chunk's unconfirmed files over one association and record each outcome.

    Order of business: claim the chunk (``BUSY`` if another runner has it), skip it if
    the job halted or was cancelled (its files recorded NOT_SENT), take a destination
    slot (waiting, unless the job stops), open the association when the first file
    needs it, send file by file checking halt/cancel in between, release everything and
    mark the chunk done. Leases are renewed every ``lease_s / 3`` by a heartbeat thread.
    ``observer`` (default: the installed one) hears of associations, outcomes, retries.
    Once a stop is requested (:func:`request_stop`) the run ends after its current file
    with ``LOST``, the chunk handed back.
    """
    holder = holder or default_holder()
    job_id, chunk_id = spec.job_id, chunk.chunk_id
    if store.chunk_done(job_id, chunk_id):
        return ChunkResult(ChunkStatus.DONE, chunk_id)
    if not store.claim_chunk(job_id, chunk_id, holder, lease_s):
        return ChunkResult(ChunkStatus.BUSY, chunk_id)
    beat = Heartbeat(
        lease_s / 3, {"chunk": lambda: store.renew_chunk(job_id, chunk_id, holder, lease_s)}
    ).start()
    try:
        run = _Run(spec, chunk, store, beat, on_progress, observer or current())
        run.observer.association_limit(spec.destination, spec.max_associations)
        if store.chunk_done(job_id, chunk_id):
            return ChunkResult(ChunkStatus.DONE, chunk_id)
        # Files stored, or failed for good, are not sent again: a retry is for what a
        # transient failure left unconfirmed.
        settled = store.settled(job_id, [f.path for f in chunk.files])
        todo = [f for f in chunk.files if f.path not in settled]
        if not todo or run.stop_if_stopped(todo, fresh=True):
            return run.finish()
        got = wait_for_slot(
            slots,
            spec.destination,
            spec.max_associations,
            holder,
            lease_s,
            should_stop=lambda: (
                beat.lost.is_set() or _stop.is_set() or store.stopped(job_id) is not None
            ),
            poll_cap_s=slot_poll_cap_s,
        )
        if not got:
            if beat.lost.is_set() or _stop.is_set():
                return run.lost()
            run.stop_if_stopped(todo, fresh=True)
            return run.finish()
        beat.add("slot", lambda: slots.renew(spec.destination, holder, lease_s))
        try:
            return run.send(todo)
        finally:
            beat.remove("slot")
            slots.release(spec.destination, holder)
    finally:
        beat.stop()
        store.release_chunk(job_id, chunk_id, holder)
        if _stop.is_set() and not store.chunk_done(job_id, chunk_id):
            # Handed back: due now, the reaper sends it again at its next look.
            store.defer_chunk(job_id, chunk_id, time.time())


class _Run:
    """One run of one claimed chunk.

    Stored outcomes are recorded in batches (see :data:`RECORD_BATCH`), every other
    outcome at once with those held before it: a runner killed mid-chunk leaves the
    file in flight and at most one batch unconfirmed, each sent once more by the runner
    that takes the chunk over. Outcomes of files not sent at all are recorded in one
    call (:meth:`record` with ``batch``, then :meth:`flush`).
    """

    def __init__(
        self,
        spec: JobSpec,
        chunk: Chunk,
        store: JobStore,
        beat: Heartbeat,
        on_progress: ProgressSink | None,
        observer: SendObserver,
    ) -> None:
        self.spec = spec
        self.chunk = chunk
        self.store = store
        self.beat = beat
        self.on_progress = on_progress
        self.observer = observer
        self.recorded = 0
        # +II: identities are a function of the job id and each file's submission
        # index, so every worker invents the same without sharing a counter.
        self.inventor = inventor_for(spec.policy, spec.job_id)
        self._held: list[FileOutcome] = []
        self._held_since = 0.0
        self._stopped: JobState | None = None
        self._checked_at = -_STOP_CHECK_S
        self._in_flight = False
        self._resends = 0
        self._resent: set[str] = set()
        """Files sent again after a failed commitment: asked for again."""
        self._commit_states: dict[str, tuple[str, str]] = {}

    def record(self, outcome: FileOutcome, *, batch: bool = False) -> None:
        """Record ``outcome``, with every outcome held back before it; with ``batch``
        it may itself be held back until :meth:`flush`."""
        if not self._held:
            self._held_since = time.monotonic()
        self._held.append(outcome)
        if not batch:
            self.flush()

    def flush_when_due(self) -> None:
        """:meth:`flush` once the batch is full or its first outcome has waited long
        enough."""
        if self._held and (
            len(self._held) >= RECORD_BATCH
            or time.monotonic() - self._held_since >= _RECORD_DELAY_S
        ):
            self.flush()

    def flush(self) -> None:
        """Record every outcome held back, in order."""
        if not self._held:
            return
        held, self._held = self._held, []
        recorded = self.store.record_many(self.spec.job_id, held)
        for outcome, new in zip(held, recorded, strict=True):
            if new:
                self.recorded += 1
                self.observer.file_done(self.spec.destination, outcome)
                if self.on_progress is not None:
                    self.on_progress(outcome)

    def stopped(self, *, fresh: bool = False) -> JobState | None:
        """The job's halt/cancel state, read from the store at most every
        :data:`_STOP_CHECK_S` unless ``fresh`` (and after each slow answer of the peer:
        see :meth:`send`); once stopped, a run stays stopped."""
        now = time.monotonic()
        if self._stopped is None and (fresh or now - self._checked_at >= _STOP_CHECK_S):
            self._stopped = self.store.stopped(self.spec.job_id)
            self._checked_at = now
        return self._stopped

    def halt_for(self, outcome: FileOutcome) -> bool:
        """With the halt policy, an unsuccessful outcome halts the whole job. True when
        this outcome halted it (a line naming the file was logged)."""
        if outcome.outcome is Outcome.STORED or not self.spec.policy.halt:
            return False
        why = describe(outcome.status) if outcome.status is not None else outcome.reason
        self.flush()
        halted = self.store.halt(self.spec.job_id, outcome.path, why)
        if halted:
            log.error(
                "job %s halted: %s: %s", self.spec.job_id, printable(outcome.path), printable(why)
            )
        # Halted now (by this file or an earlier one): nothing more goes out.
        self._stopped = self.store.stopped(self.spec.job_id) or JobState.HALTED
        return halted

    def stop_if_stopped(self, todo: Sequence[FileRef], *, fresh: bool = False) -> bool:
        """If the job halted or was cancelled, record ``todo`` as NOT_SENT; True then."""
        stopped = self.stopped(fresh=fresh)
        if stopped is None:
            return False
        for ref in todo:
            reason = f"job {stopped.value}"
            self.record(FileOutcome(ref.path, Outcome.NOT_SENT, reason=reason), batch=True)
        self.flush()
        return True

    def lost(self) -> ChunkResult:
        self._landed()
        self.flush()
        return ChunkResult(ChunkStatus.LOST, self.chunk.chunk_id, self.recorded)

    def finish(self) -> ChunkResult:
        self._landed()
        self.flush()
        if self.spec.commit_timeout_s is not None and self.stopped() is not JobState.CANCELLED:
            resend = self.commit()
            if resend:
                return self.send(resend)
        last = self.store.finish_chunk(self.spec.job_id, self.chunk.chunk_id)
        return ChunkResult(ChunkStatus.DONE, self.chunk.chunk_id, self.recorded, job_finished=last)

    def commit(self) -> list[FileRef]:
        """Before the chunk is done: a job with ``--commit`` ends once its files have a
        commitment state (see :mod:`dispatch.jobs.commit_chunk`). Returns the files to
        send again (their commitment failed, resends are left); [] once every state
        asked for is final (each then counted, and a failure halts the job with the
        halt policy)."""
        from dispatch.jobs.commit_chunk import commit_chunk, failed_paths, log_uncommitted

        # Every round's states: counted once, when they are final.
        self._commit_states.update(
            commit_chunk(self.spec, self.chunk, self.store, again=self._resent)
        )
        states = self._commit_states
        failed = set(failed_paths(states))
        if failed and self._resends < self.spec.commit_resends and self.stopped(fresh=True) is None:
            self._resends += 1
            self._resent = failed
            log.warning("chunk %s of job %s: sending again %d files whose storage commitment"
                        " failed", self.chunk.chunk_id, self.spec.job_id, len(failed))  # fmt: skip
            return [f for f in self.chunk.files if f.path in failed]
        for _path, (state, _reason) in states.items():
            self.observer.file_committed(self.spec.destination, state)
        log_uncommitted(states)
        if failed and self.spec.policy.halt:
            path = min(failed, key=[f.path for f in self.chunk.files].index)
            why = f"storage commitment failed: {states[path][1]}"
            if self.store.halt(self.spec.job_id, path, why):
                log.error("job %s halted: %s: %s", self.spec.job_id, printable(path),
                          printable(why))  # fmt: skip
        return []

    def retry(
        self,
        todo: Sequence[FileRef],
        error: str,
        path: str = "",
        status: int | None = None,
        *,
        reason: str,
        unreachable: bool = False,
    ) -> ChunkResult:
        """``reason``: one of :data:`dispatch.observe.RETRY_REASONS`."""
        self._landed()
        self.flush()
        self.observer.retry(self.spec.destination, reason)
        log.warning(
            "chunk %s of job %s will be retried: %s",
            self.chunk.chunk_id,
            self.spec.job_id,
            printable(error),
        )
        return ChunkResult(
            ChunkStatus.RETRY,
            self.chunk.chunk_id,
            self.recorded,
            remaining=tuple(f.path for f in todo),
            error=error,
            failed_path=path,
            failed_status=status,
            reason=reason,
            unreachable=unreachable,
        )

    def send(self, todo: list[FileRef]) -> ChunkResult:
        """Send ``todo`` in order over one association (opened when the first file
        needs it, again if it broke). While the peer stores a file, the next one is
        read and its context chosen, and the job's flags are read when due.

        A file is read again only when its reference carries no scan result
        (:attr:`FileRef.info`); either way it is sent only if its size and modification
        time are those recorded at submission."""
        spec, policy = self.spec, self.spec.policy
        identities = Identities(self.inventor)
        done = 0  # files of todo with their outcome
        while done < len(todo):
            if self.beat.lost.is_set() or _stop.is_set():
                return self.lost()
            if self.stopped() is not None:
                self.stop_if_stopped(todo[done:])
                break
            checked = read_unchanged(todo[done], todo[done].info is not None)
            if checked[0]:
                # Checked before an association is opened for it.
                self.take(FileOutcome(todo[done].path, Outcome.NOT_SENT, reason=checked[0]))
                done += 1
                continue
            try:
                assoc = Association.open(spec.settings)
            except TransientError as exc:
                unreachable = isinstance(exc, (ConnectFailed, NetworkTimeout, ConnectionLost))
                error = f"association failed: {exc}"
                return self.retry(todo[done:], error, reason="association", unreachable=unreachable)
            except DispatchError as exc:
                self._refused(todo[done:], f"association failed: {exc}")
                break
            self.observer.association_opened(spec.destination, assoc.setup_s)
            try:
                done, retry = self._send_over(assoc, todo, done, checked, identities)
            finally:
                if assoc.is_open:
                    _end(assoc, policy.abort_at_end)
                self.observer.association_closed(spec.destination)
                self.flush()
            if retry is not None:
                return retry
        return self.finish()

    def _send_over(
        self,
        assoc: Association,
        todo: list[FileRef],
        done: int,
        checked: tuple[str, bytes | None],
        identities: Identities,
    ) -> tuple[int, ChunkResult | None]:
        """Send ``todo[done:]`` over ``assoc`` (the first file ``checked`` already) until
        the files run out, the association ends or the job stops. Returns how many files
        of ``todo`` have their outcome now, and the result of a run that must be retried
        (None when it goes on)."""
        items = chain((_item(todo[done], checked),), (_item(ref) for ref in todo[done + 1 :]))
        policy = self.spec.policy
        steps = send_files(
            assoc, items, policy, identities, grace_s=REPLY_GRACE_S, on_bytes=self.in_flight
        )
        for step in steps:
            if isinstance(step, Waiting):
                self.while_storing(step)
                continue
            if isinstance(step, Broken):
                if isinstance(step.error, TransientError):
                    error, path = str(step.error), step.outcome.path
                    return done, self.retry(todo[done:], error, path, reason="exchange")
                step = step.outcome
            if step.status is not None and is_transient(step.status):
                error = describe(step.status)
                retry = self.retry(
                    todo[done:], error, step.path, step.status, reason="out_of_resources"
                )
                return done, retry
            self.take(step)
            done += 1
            if self.beat.lost.is_set() or _stop.is_set() or self.stopped() is not None:
                break
        return done, None

    def in_flight(self, sent: int) -> None:
        """A large file of this chunk has ``sent`` bytes out (a few times a second at
        most): the job's progress shows them before the file is stored."""
        self._in_flight = True
        self.store.file_in_flight(self.spec.job_id, self.chunk.chunk_id, sent)

    def _landed(self) -> None:
        """The file in flight has its outcome: its bytes are no longer in flight."""
        if self._in_flight:
            self._in_flight = False
            self.store.file_in_flight(self.spec.job_id, self.chunk.chunk_id, 0)

    def take(self, outcome: FileOutcome) -> None:
        """Record the outcome of a file (a stored one in a batch) and halt the job for
        it if the policy says so; a file not stored is named in the log."""
        self._landed()
        self.record(outcome, batch=outcome.outcome is Outcome.STORED)
        if not self.halt_for(outcome) and outcome.outcome is not Outcome.STORED:
            # A reason of the file's own (bad file, no context, failure status): one line
            # naming it, as dispatch send gives.
            why = describe(outcome.status) if outcome.status is not None else outcome.reason
            what = "not sent" if outcome.outcome is Outcome.NOT_SENT else "store failed"
            log.error("%s: %s: %s", what, printable(outcome.path), printable(why))

    def while_storing(self, waiting: Waiting) -> None:
        """The runner's own work while the peer stores a file."""
        if waiting.stalled:
            # A slow answer: record what is held while waiting for it (progress and
            # metrics then show it during a stall), and read the flags once it answers.
            self.flush()
            self._checked_at = -_STOP_CHECK_S
        else:
            # When due: the round trips overlap the peer's work.
            self.flush_when_due()
            self.stopped()

    def _refused(self, todo: Sequence[FileRef], reason: str) -> None:
        """The association was refused permanently: nothing of ``todo`` can be sent."""
        for ref in todo:
            self.record(FileOutcome(ref.path, Outcome.NOT_SENT, reason=reason))
        if (
            self.spec.policy.halt
            and todo
            and self.store.halt(self.spec.job_id, todo[0].path, reason)
        ):
            log.error("job %s halted: %s", self.spec.job_id, printable(reason))


def _item(ref: FileRef, checked: tuple[str, bytes | None] | None = None) -> Item:
    """What the sender sends for ``ref``, as it stands now: ``checked`` is what
    :func:`read_unchanged` just said of it (else it is asked here: read ahead, this runs
    while the peer stores the file before it)."""
    problem, data = checked or read_unchanged(ref, ref.info is not None)
    if problem:
        return Item(ref.path, problem=problem)
    # Unchanged since submission: the scan's reading of the file, when the chunk
    # carries it, is still true.
    return Item(ref.path, ref.info, data, number=_instance_index(ref))


def _instance_index(ref: FileRef) -> int:
    """The file's index for invented identities. A file recorded without one (by an
    older submitter) gets a number of its own, from its path, beyond any real index."""
    if ref.index >= 0:
        return ref.index
    return (1 << 48) + int.from_bytes(hashlib.sha256(ref.path.encode()).digest()[:6], "big")


def _end(assoc: Association, abort: bool) -> None:
    try:
        if abort:
            assoc.abort()
        else:
            assoc.release()
    except DispatchError as exc:
        # Every file already has its answer; a failed release changes none of them.
        log.warning("association release failed: %s", exc)


_stop = threading.Event()


def request_stop() -> None:
    """Ask every run of this process to stop after its current file: what it has sent
    is recorded, and its chunk handed back at once (due to the reaper now, not when its
    lease runs out). For a worker that shuts down; safe to call from a signal handler."""
    _stop.set()
