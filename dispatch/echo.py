"""An echoscu run: associate, send ``repeat`` C-ECHOs, release (or abort), with
echoscu's log messages.

Exit codes: 0 when every echo was answered with Success and the association ended
as asked; 1 for a failed association (connection, rejection, timeout, TLS, no accepted
context), a failed release, a broken exchange or an echo answered with another status;
10 when the peer aborted the association. echoscu itself exits 0 after a peer abort or a
status other than Success (it only logs them); a check of a destination must not
report success then, so here they fail.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from dispatch.errors import AssociationRejected, DispatchError, PeerAborted, UsageError
from dispatch.logtext import printable
from dispatch.net import Association
from dispatch.net.verification import echo, verification_context
from dispatch.settings import AssociationSettings

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_PEER_ABORTED", "EchoResult", "run"]

log = logging.getLogger("dispatch.echo")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_PEER_ABORTED = 10


@dataclass(frozen=True)
class EchoResult:
    """How an echo run ended: the exit code and, for a failure, one line saying why."""

    exit_code: int
    error: str = ""


def status_text(status: int) -> str:
    """echoscu's words for a C-ECHO-RSP status."""
    return "Success" if status == 0 else f"Unknown Status: 0x{status:x}"


def run(settings: AssociationSettings, repeat: int = 1, abort: bool = False) -> EchoResult:
    """Verify the peer of ``settings`` (whose contexts propose Verification, see
    :data:`dispatch.net.verification.VERIFICATION_CONTEXTS`); see the module for the
    exit codes. Every failure is logged as one line and never raised; settings that
    cannot be used (TLS files) raise :class:`~dispatch.errors.UsageError`."""
    log.info("Requesting Association")
    try:
        assoc = Association.open(settings)
    except AssociationRejected as exc:
        rest = str(exc).removeprefix("association rejected ")
        return _failed(f"Association Rejected {rest}")
    except UsageError:
        raise
    except DispatchError as exc:
        return _failed(f"Association Request Failed: {exc}")
    context_id = verification_context(assoc)
    if context_id is None:
        assoc.abort()
        return _failed("No Acceptable Presentation Contexts")
    log.info("Association Accepted (Max Send PDV: %d)", assoc.max_send_pdu - 12)
    failure = ""
    for message_id in range(1, repeat + 1):
        log.info("Sending Echo Request (MsgID %d)", message_id)
        try:
            status = echo(assoc, context_id, message_id)
        except PeerAborted as exc:
            log.error("Echo Failed: %s", printable(exc))
            log.info("Peer Aborted Association")
            return EchoResult(EXIT_PEER_ABORTED, str(exc))
        except DispatchError as exc:
            log.error("Echo Failed: %s", printable(exc))
            return EchoResult(EXIT_ERROR, str(exc))
        log.info("Received Echo Response (%s)", status_text(status))
        if status != 0 and not failure:
            failure = f"Echo Response: {status_text(status)}"
    if abort:
        log.info("Aborting Association")
        assoc.abort()
    else:
        log.info("Releasing Association")
        try:
            assoc.release()
        except DispatchError as exc:
            return _failed(f"Association Release Failed: {exc}")
    if failure:
        log.error("%s", failure)
        return EchoResult(EXIT_ERROR, failure)
    return EchoResult(EXIT_OK)


def _failed(message: str) -> EchoResult:
    log.critical("%s", printable(message))
    return EchoResult(EXIT_ERROR, message)
