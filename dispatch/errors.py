"""The one exception tree of dicom-dispatch.

Callers decide by class what to do next: a :class:`TransientError` may succeed when
retried later, a :class:`PermanentError` will not.

    DispatchError
    ├── UsageError                    bad command line or settings (exit 1)
    ├── UnknownJob                    no such job (never created, or its records expired)
    ├── JobNotFinished                the job still runs: it cannot be reopened yet
    ├── JobLost                       a followed job's records vanished (Redis restarted
    │                                 without persistence)
    ├── DestinationCheckFailed        submit's check before the scan found the peer
    │                                 unreachable or refusing (wraps the engine's error)
    ├── TransientError                retry later
    │   ├── BrokerUnavailable         Redis or the broker failed a command (unreachable,
    │   │                             timed out, loading, refused it)
    │   ├── ConnectFailed             connection refused, unreachable, reset on connect
    │   ├── NetworkTimeout            connect / socket / ACSE / DIMSE timeout
    │   ├── ConnectionLost            reset or closed in the middle of an exchange
    │   ├── PeerAborted               the peer sent A-ABORT
    │   │   ├── PeerRequestedRelease  the peer sent A-RELEASE-RQ in the middle of a
    │   │   │                         store (we abort)
    │   │   └── PeerSilent            the socket timeout expired awaiting a C-STORE
    │   │                             response: taken for a vanished peer
    │   └── AssociationRejectedTransient
    └── PermanentError                retrying will not help
        ├── AssociationRejectedPermanent
        ├── ProtocolError             the peer broke the protocol (bad PDU, too large PDU ...)
        ├── NoPresentationContext     no accepted context can carry the file
        ├── BadFile                   the file cannot be read or is not DICOM
        ├── TlsError                  TLS handshake failed (certificate refused, no
        │                             common protocol version or cipher suite)
        ├── IdentityNotConfirmed      -rsp: the peer did not confirm the user identity
        ├── SendLimitTooSmall         the peer's (or our) maximum PDU length cannot carry
        │                             a message
        └── ScanFailed                the scan of a job's inputs broke off

Socket, TLS and file errors are translated into this tree at the boundary of
:mod:`dispatch.net` and :mod:`dispatch.dicomfile` (pydicom's, where a conversion uses it,
in :mod:`dispatch.codecs`); redis-py's and kombu's by
:func:`dispatch.jobs.backends.broker_errors.map_broker_errors`, around every command of
the Redis job store, slots and task publisher; nothing else leaks out.
"""

from __future__ import annotations


class DispatchError(Exception):
    """Base of every error raised on purpose by dicom-dispatch."""


class UsageError(DispatchError):
    """The command line or the settings are wrong; nothing was sent."""


class UnknownJob(DispatchError):
    """No such job (never created, or its records expired)."""


class JobNotFinished(DispatchError):
    """The job still has chunks to run (it cannot be reopened yet)."""


class TransientError(DispatchError):
    """A failure that may go away if the same work is tried again later."""


class BrokerUnavailable(TransientError):
    """Redis (the broker, or the job records' own) did not carry out a command: it could
    not be reached, timed out, was loading, or answered with an error.

    The message is one line, ``cannot reach the broker: <reason>``; :attr:`reason` is
    the client library's own text.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"cannot reach the broker: {reason}")
        self.reason = reason


class PermanentError(DispatchError):
    """A failure that trying again will not change."""


class ConnectFailed(TransientError):
    """The TCP connection to the peer could not be made."""


class NetworkTimeout(TransientError):
    """A connect, socket, ACSE or DIMSE timeout expired."""


class ConnectionLost(TransientError):
    """The connection was reset or closed while an exchange was in progress."""


class PeerAborted(TransientError):
    """The peer ended the association with A-ABORT."""

    def __init__(self, message: str, source: int = 0, reason: int = 0) -> None:
        super().__init__(message)
        self.source = source
        self.reason = reason


class PeerRequestedRelease(PeerAborted):
    """The peer sent A-RELEASE-RQ while a C-STORE was in progress. Only the requestor
    may release in the middle of its work, so, as storescu, we send A-ABORT; callers
    treat it as a peer abort (storescu's exit 10)."""

    def __init__(self) -> None:
        super().__init__("Peer requested release (Aborting)")


class PeerSilent(PeerAborted):
    """The socket timeout (-ts) expired while a C-STORE response was awaited, with no
    DIMSE timeout (-td) in force. DCMTK takes the peer for gone ("Peer aborted
    Association (or never connected)"): the connection is closed without A-ABORT and
    callers treat it as a peer abort (storescu's exit 10)."""


class AssociationRejected(DispatchError):
    """Mixin data for both kinds of A-ASSOCIATE-RJ."""

    def __init__(self, message: str, result: int, source: int, reason: int) -> None:
        super().__init__(message)
        self.result = result
        self.source = source
        self.reason = reason


class AssociationRejectedTransient(AssociationRejected, TransientError):
    """A-ASSOCIATE-RJ with result 'rejected-transient'."""


class AssociationRejectedPermanent(AssociationRejected, PermanentError):
    """A-ASSOCIATE-RJ with result 'rejected-permanent'."""


class ProtocolError(PermanentError):
    """The peer sent something the upper layer protocol does not allow."""


class NoPresentationContext(PermanentError):
    """No accepted presentation context can carry the file (and it cannot be converted)."""


class BadFile(PermanentError):
    """The input file cannot be read, is not DICOM, or lacks what a C-STORE needs."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class TlsError(PermanentError):
    """The TLS handshake with the peer failed: one side refused the other's certificate
    (expired, wrong host, unknown CA, none presented) or they share no protocol version
    or cipher suite. The message says which in plain words, then OpenSSL's own text."""


class IdentityNotConfirmed(PermanentError):
    """A positive user identity response was requested (-rsp) and the peer sent none."""


class SendLimitTooSmall(PermanentError):
    """The maximum PDU length to send with, the peer's or the one set, is too small to
    carry a message in fragments of a sensible size."""


class ScanFailed(PermanentError):
    """The scan of a job's inputs broke off before its end (its reader process died)."""


class JobLost(DispatchError):
    """The records of a job vanished while it was being followed: its Redis restarted
    without persistence (or was flushed). The message says what was last seen of it:
    files stored and failed, and those not sent (all the others), of the total."""

    def __init__(self, job_id: str, stored: int, failed: int, total: int) -> None:
        not_sent = max(total - stored - failed, 0)
        super().__init__(
            f"job {job_id} lost: its records vanished from Redis (restarted without"
            f" persistence?); last seen: {stored} stored, {failed} failed, {not_sent} not"
            f" sent of {total} files"
        )
        self.job_id = job_id
        self.stored = stored
        self.failed = failed
        self.not_sent = not_sent
        self.total = total


class DestinationCheckFailed(DispatchError):
    """``dispatch submit``'s check before the scan: the destination could not be reached
    or refused an association with the job's contexts. :attr:`cause` is the engine's
    error (transient or permanent)."""

    def __init__(self, cause: DispatchError) -> None:
        super().__init__(f"destination check failed: {cause} (--no-check skips this check)")
        self.cause = cause
