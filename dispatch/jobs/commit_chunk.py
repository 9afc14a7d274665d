"""Storage commitment of a chunk (``dispatch submit --commit``), as its runner's last
step before the chunk is marked done.

For the chunk's stored files that have no commitment state yet, the runner records a
new Transaction UID with the files it names (:meth:`JobStore.commit_requested`) *before*
the N-ACTION goes out, so that a report reaching any host finds them: on the
requesting association (the runner records it), or on an association the destination
opens to a ``dispatch commit-listener`` (or the listener of ``submit --commit-port``
without a broker), which records it in the job store, where the runner waits for it.

A file reported ``commit_failed`` is sent again (once by default: the job's
``commit_resends``, ``--commit-resends``) over a new association, and its commitment
asked for again; a failure after that is final, and with the halt policy it halts the
job as a failed store does.

Who times it out: the runner that asked. It waits up to the job's commitment timeout
holding the chunk's lease (its heartbeat keeps it), then records the files it has no
report for ``commit_pending``; only then is the chunk done, so a job with ``--commit``
ends once every stored file is committed, failed or timed out. A runner that dies
while it waits loses its lease: the chunk is handed on, and the next runner asks again
for the files still without a state (a report the listener recorded meanwhile stands).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping

from dispatch.commitment import (
    CommitmentReport,
    CommitmentSettings,
    CommitState,
    Reference,
    commitment_states,
    new_transaction_uid,
    request_commitment,
)
from dispatch.errors import DispatchError
from dispatch.jobs.model import Chunk, JobSpec
from dispatch.jobs.store import JobStore
from dispatch.logtext import printable
from dispatch.outcome import Outcome

__all__ = ["StoreReportSource", "commit_chunk", "failed_paths", "log_uncommitted"]

log = logging.getLogger("dispatch.commit")


class StoreReportSource:
    """Reports recorded in the job store (by a listener on any host), as a
    :class:`~dispatch.commitment.ReportSource`."""

    def __init__(self, store: JobStore) -> None:
        self._store = store

    def wait(self, transaction_uid: str, timeout_s: float) -> CommitmentReport | None:
        return self._store.wait_commit_report(transaction_uid, timeout_s)


def commit_chunk(
    spec: JobSpec, chunk: Chunk, store: JobStore, again: Collection[str] = ()
) -> dict[str, tuple[str, str]]:
    """Ask the destination to commit the chunk's stored files that have no commitment
    state (and those of ``again``, paths sent again after a failed commitment), wait for
    the report, record each file's state. Returns path -> (state, reason) of the files
    asked for, as the store holds them then; {} when there was nothing to ask."""
    assert spec.commit_timeout_s is not None
    stored = [
        o for o in store.chunk_report(spec.job_id, chunk.chunk_id)
        if o.outcome is Outcome.STORED and o.sop_instance_uid
    ]  # fmt: skip
    known = store.commitment(spec.job_id, [o.path for o in stored])
    todo = [o for o in stored if o.path not in known or o.path in again]
    if not todo:
        return {}
    instances = {o.sop_instance_uid: o.path for o in todo}
    references = list(dict.fromkeys(Reference(o.sop_class_uid, o.sop_instance_uid) for o in todo))
    transaction = new_transaction_uid()
    store.commit_requested(spec.job_id, chunk.chunk_id, transaction, instances)
    commit = CommitmentSettings(timeout_s=spec.commit_timeout_s)
    report, refused = None, ""
    try:
        _uid, report = request_commitment(
            spec.settings, references, commit, StoreReportSource(store), transaction
        )
    except DispatchError as exc:
        refused = f"storage commitment request failed: {exc}"
        log.error("chunk %s of job %s: %s", chunk.chunk_id, spec.job_id, printable(refused))
    if report is not None:
        store.commit_reported(report)  # a report on the requesting association
    by_uid = commitment_states(references, report, refused)
    states = {instances[uid]: state for uid, state in by_uid.items()}
    store.record_commitment(spec.job_id, transaction, states)
    # What the store holds now (a report the listener recorded wins over our timeout).
    return store.commitment(spec.job_id, list(states))


def failed_paths(states: Mapping[str, tuple[str, str]]) -> list[str]:
    """The paths of ``states`` whose commitment failed."""
    return [p for p, (state, _) in states.items() if state == CommitState.FAILED.value]


def log_uncommitted(states: Mapping[str, tuple[str, str]]) -> None:
    """One line per file that ended without a commitment."""
    for path, (state, reason) in states.items():
        if state != CommitState.COMMITTED.value:
            log.error("not committed: %s: %s", printable(path), printable(reason))
