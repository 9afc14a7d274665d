"""Sending one file over an open association, for tests of the association itself."""

from __future__ import annotations

from dispatch.dicomfile import DicomFileInfo
from dispatch.net import Association
from dispatch.outcome import FileOutcome
from dispatch.settings import SendPolicy
from dispatch.transfer import prepare, send_prepared


def store_file(
    assoc: Association, path: str, policy: SendPolicy, info: DicomFileInfo | None = None
) -> FileOutcome:
    """Send ``path`` over ``assoc`` (see :func:`dispatch.transfer.send_prepared`)."""
    return send_prepared(assoc, prepare(assoc, path, policy, info), policy)
