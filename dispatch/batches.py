"""Sending files whose proposal needs more than one association, one after another.

A proposal derived from the files (``-R``, ``--propose-own``) may need more than the 128
presentation contexts an association can carry. :func:`dispatch.proposals.file_proposals`
then splits the SOP classes into groups; :func:`send_batches` sends each group's files
over an association of their own, in turn, as dcmsend does.

Outcomes and exit codes follow storescu's rules per association (see
:func:`dispatch.sender.send_files`); over several: the first non-zero exit code is the
run's, and in halt mode nothing more is attempted after it (the files left get a
NOT_SENT outcome), while with ``-nh`` the next association is still requested.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from dispatch.dicomfile import DicomFileInfo
from dispatch.outcome import FileOutcome, Outcome
from dispatch.proposals import ProposalGroup
from dispatch.sender import EXIT_OK, InventedIdentities, OutcomeSink, SendResult, send_files
from dispatch.settings import AssociationSettings, SendPolicy

log = logging.getLogger("dispatch.send")


def send_batches(
    settings: AssociationSettings,
    groups: Sequence[ProposalGroup],
    paths: Sequence[str],
    infos: dict[str, DicomFileInfo],
    policy: SendPolicy,
    on_outcome: OutcomeSink,
) -> SendResult:
    """Send ``paths`` (every one read, in ``infos``) over one association per group of
    ``groups``, whose contexts replace those of ``settings``. Each file goes over the
    association of its SOP class's group, the files of a group in input order."""
    result = SendResult(EXIT_OK)
    identities = InventedIdentities(policy)
    for number, group in enumerate(groups, 1):
        mine = [p for p in paths if infos[p].sop_class_uid in group.sop_classes]
        if not mine:
            continue
        if result.exit_code and policy.halt:
            reason = f"not attempted after: {result.error or 'an earlier failure'}"
            for path in mine:
                for _ in range(max(policy.repeat, 1)):
                    on_outcome(FileOutcome(path, Outcome.NOT_SENT, reason=reason))
            continue
        if len(groups) > 1:
            log.info(
                "Requesting Association %d of %d (%d presentation contexts, %d files)",
                number, len(groups), len(group.contexts), len(mine),
            )  # fmt: skip
        part = send_files(
            dataclasses.replace(settings, contexts=group.contexts),
            mine,
            policy,
            on_outcome,
            infos,
            identities,
        )
        if part.exit_code and not result.exit_code:
            result = part
        elif part.exit_code:
            log.error("%s", part.error)
    return result


__all__ = ["send_batches"]
