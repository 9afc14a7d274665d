"""Feeding a job while its inputs are scanned: the job is recorded open when the scan
yields its first item, each chunk is added to it and handed to the senders (Celery
tasks, or the embedded threads) at once, and the job is closed with the scan's
problems when the scan ends. The chunks cut once the scan has read everything (the
rest of every study, often all the chunks of a small job) are added and handed out
together: one record and one round trip for all, so that the last of them does not
start later than the first (over a link, 8 chunks one by one took about 60 ms).

With the halt policy the first unusable file halts the job: the scan stops there, the
file is recorded NOT_SENT and names the halt, and the files scanned but not yet in a
chunk are recorded NOT_SENT ("job halted"); chunks already handed out send nothing
more. A job halted or cancelled by a sender while the scan runs stops the scan the same
way. Files the scan had not reached then are not part of the job.

Through a broker the submitter holds a lease on the open job, renewed by a heartbeat:
should it die while scanning, the workers' reaper closes the job as interrupted once
the lease runs out, and the job ends when the chunks it has are done.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from dispatch.errors import DispatchError
from dispatch.jobs.model import Chunk, FileRef, JobSpec
from dispatch.jobs.slots import Heartbeat
from dispatch.jobs.store import JobStore
from dispatch.outcome import FileOutcome, Outcome

log = logging.getLogger("dispatch.submit")


@dataclass
class Fed:
    """What :func:`feed_job` did."""

    created: bool = False
    """False when the scan yielded nothing at all (no job was recorded)."""
    chunks: int = 0
    files: int = 0
    """Files in the chunks handed out."""
    problems: list[FileOutcome] = field(default_factory=list)
    """Unusable files found by the scan (recorded NOT_SENT)."""
    halted_by: FileOutcome | None = None
    """With the halt policy: the unusable file that halted the job."""


def feed_job(
    store: JobStore,
    spec: JobSpec,
    items: Iterable[Chunk | FileOutcome],
    *,
    on_chunks: Callable[[Sequence[Chunk]], None],
    on_created: Callable[[], None] = lambda: None,
    on_problem: Callable[[FileOutcome], None] = lambda _p: None,
    pending: Callable[[], Sequence[FileRef]] = list,
    ended: Callable[[], bool] = lambda: False,
    lease_s: float | None = None,
) -> Fed:
    """Record the job open at the first item, add and hand out (``on_chunks``) each
    chunk, close the job at the end; see the module docstring. ``pending`` gives the
    files scanned but not yet in a chunk (recorded NOT_SENT when the job stops early).
    ``ended`` tells whether the scan has read all its inputs: the chunks it yields from
    then on (the rest of every study, at once) are added and handed out together, in
    one call each, once the last is yielded. With ``lease_s`` the job is held under the
    submitter's lease meanwhile (see :meth:`JobStore.hold_submission`).
    """
    fed = Fed()
    job_id = spec.job_id
    left: list[FileRef] = []
    stopped = ""
    beat: Heartbeat | None = None
    tail: list[Chunk] = []
    """Chunks of the scan's end, handed out together after the last."""
    try:
        for item in items:
            if not fed.created:
                store.create_job(spec, [], open=True)
                fed.created = True
                if lease_s is not None:
                    beat = _hold(store, job_id, lease_s)
                on_created()
            if beat is not None and beat.lost.is_set():
                # The lease ran out (this process stalled longer than it): the job was
                # closed as interrupted and takes nothing more.
                log.error("job %s: closed as interrupted while its inputs were scanned", job_id)
                stopped = "interrupted"
                if isinstance(item, FileOutcome):
                    fed.problems.append(item)
                    left = list(pending())
                else:
                    left = [*item.files, *pending()]
                break
            if isinstance(item, FileOutcome):
                on_problem(item)
                fed.problems.append(item)
                if spec.policy.halt:
                    store.halt(job_id, item.path, item.reason)
                    fed.halted_by = item
                    stopped = "halted"
                    left = [*_files(tail), *pending()]
                    tail = []
                    break
                continue
            if ended():
                tail.append(item)
                continue
            stopped = _hand_out(store, job_id, fed, [item], on_chunks)
            if stopped:
                left = [*item.files, *pending()]
                break
        if tail:
            stopped = _hand_out(store, job_id, fed, tail, on_chunks)
            if stopped:
                left = [*_files(tail), *pending()]
    except BaseException:
        if beat is not None:
            beat.stop()
            # Broken off (Ctrl-C, the store away, the scan failed): the job is not
            # closed as if complete; its lease ends now, and the reaper closes it as
            # interrupted (or, the store being away, once the lease runs out).
            with contextlib.suppress(DispatchError):
                store.hold_submission(job_id, 0.0)
            raise
        if fed.created:
            _close(store, job_id, fed, left, stopped)
        raise
    if beat is not None:
        beat.stop()
    if fed.created:
        _close(store, job_id, fed, left, stopped)
    return fed


def _hand_out(
    store: JobStore,
    job_id: str,
    fed: Fed,
    chunks: list[Chunk],
    on_chunks: Callable[[Sequence[Chunk]], None],
) -> str:
    """Add ``chunks`` to the job and hand them out, unless a sender halted or cancelled
    the job meanwhile; return that state ("" when they went out)."""
    state = store.stopped(job_id) if fed.chunks else None
    if state is not None:
        return state.value
    store.add_chunks(job_id, chunks)
    fed.chunks += len(chunks)
    fed.files += sum(len(c.files) for c in chunks)
    on_chunks(chunks)
    return ""


def _files(chunks: Sequence[Chunk]) -> list[FileRef]:
    return [ref for c in chunks for ref in c.files]


def _close(store: JobStore, job_id: str, fed: Fed, left: Sequence[FileRef], stopped: str) -> None:
    unsent = [FileOutcome(f.path, Outcome.NOT_SENT, reason=f"job {stopped}") for f in left]
    store.close_job(job_id, [*fed.problems, *unsent])


def _hold(store: JobStore, job_id: str, lease_s: float) -> Heartbeat:
    """Take the submitter's lease on the job; a heartbeat renews it until stopped."""
    store.hold_submission(job_id, lease_s)
    renew = {"submission": lambda: store.hold_submission(job_id, lease_s)}
    return Heartbeat(lease_s / 3, renew).start()
