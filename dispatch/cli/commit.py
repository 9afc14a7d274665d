"""``dispatch send --commit``: the listener started before sending, the outcomes held
back until the storage commitment report says what became of them, then the report
written with each file's commitment state, a summary line, and the exit code.

Exit code: storescu's when it is not 0; otherwise 1 when any stored file is
``commit_failed`` or ``commit_pending`` (0 means: every file stored and committed).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING

from dispatch.commitment import (
    CommitmentSettings,
    CommitState,
    Reference,
    commitment_states,
    request_commitment,
)
from dispatch.errors import DispatchError, UsageError
from dispatch.logtext import printable
from dispatch.outcome import FileOutcome, Outcome
from dispatch.report import ReportWriter
from dispatch.settings import AssociationSettings

if TYPE_CHECKING:
    from dispatch.commit_listener import CommitmentListener

__all__ = ["CommitStep"]

log = logging.getLogger("dispatch.commit")


class CommitStep:
    """Collects outcomes (call it with each), then :meth:`finish` asks for commitment.

    The listener (with ``--commit-port``) is started here, before anything is sent, so
    that an address in use fails the run before it begins."""

    def __init__(self, commit: CommitmentSettings, calling_ae: str) -> None:
        self.commit = commit
        self.outcomes: list[FileOutcome] = []
        self.states: dict[str, tuple[CommitState, str]] = {}
        self._listener: CommitmentListener | None = None
        if commit.listen is not None:
            from dispatch.commit_listener import CommitmentListener

            self._listener = CommitmentListener(calling_ae, *commit.listen)

    def __call__(self, outcome: FileOutcome) -> None:
        self.outcomes.append(outcome)

    def finish(self, settings: AssociationSettings, exit_code: int) -> int:
        """Ask the peer of ``settings`` to commit the stored files, wait for the report,
        stop the listener; the run's exit code (see the module)."""
        stored = [o for o in self.outcomes if o.outcome is Outcome.STORED and o.sop_instance_uid]
        references = list(
            dict.fromkeys(Reference(o.sop_class_uid, o.sop_instance_uid) for o in stored)
        )
        try:
            if references:
                refused = ""
                report = None
                try:
                    _uid, report = request_commitment(
                        settings, references, self.commit, self._listener
                    )
                except UsageError:
                    raise
                except DispatchError as exc:
                    refused = f"storage commitment request failed: {exc}"
                    log.error("%s", printable(refused))
                self.states = commitment_states(references, report, refused)
        finally:
            self.stop()
        not_committed = [s for s, _ in self.states.values() if s is not CommitState.COMMITTED]
        if not_committed and exit_code == 0:
            return 1
        return exit_code

    def stop(self) -> None:
        """Stop the listener, if one runs (also when the run ended before
        :meth:`finish`); idempotent."""
        if self._listener is not None:
            self._listener.stop()
            self._listener = None

    def write_report(self, report: ReportWriter | None) -> None:
        """Every outcome, in order, with its commitment state."""
        if report is None:
            return
        for outcome in self.outcomes:
            state, reason = self._state(outcome)
            report.write(outcome, commitment=(state, reason))

    def _state(self, outcome: FileOutcome) -> tuple[str, str]:
        if outcome.outcome is not Outcome.STORED:
            return "", ""
        state, reason = self.states.get(
            outcome.sop_instance_uid, (CommitState.PENDING, "commitment not requested")
        )
        return state.value, reason

    def summary_lines(self) -> list[str]:
        """``commitment: 3 committed, 1 failed, 0 pending`` and the failures by reason."""
        counts = Counter(state for state, _ in self.states.values())
        reasons = Counter(reason for state, reason in self.states.values() if reason)
        lines = [
            f"commitment: {counts[CommitState.COMMITTED]} committed,"
            f" {counts[CommitState.FAILED]} failed, {counts[CommitState.PENDING]} pending"
        ]
        for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1]):
            lines.append(f"  {count} × {printable(reason)}")
        return lines
