"""A destination checked before a job scans its inputs: one association with the job's
own presentation contexts, opened and released at once.

It proves what a C-ECHO would not: that the peer accepts this caller with these
contexts (AE titles, TLS, user identity). A destination that is down or refuses fails
the submission within the connect and ACSE timeouts, not after a scan of millions of
files.
"""

from __future__ import annotations

import logging

from dispatch.errors import DestinationCheckFailed, DispatchError, UsageError
from dispatch.net import Association
from dispatch.settings import AssociationSettings

__all__ = ["check_destination"]

log = logging.getLogger("dispatch.submit")


def check_destination(settings: AssociationSettings) -> None:
    """Open an association with ``settings`` and release it. Raises
    :class:`DestinationCheckFailed` (the engine's error as its cause) when that fails,
    and :class:`UsageError` for settings that cannot be used at all."""
    log.info("checking the destination %s:%d ...", settings.host, settings.port)
    try:
        assoc = Association.open(settings)
    except UsageError:
        raise
    except DispatchError as exc:
        raise DestinationCheckFailed(exc) from exc
    if not assoc.accepted:
        assoc.abort()
        raise DestinationCheckFailed(DispatchError("no presentation context was accepted"))
    try:
        assoc.release()
    except DispatchError as exc:
        raise DestinationCheckFailed(exc) from exc
