"""The one exception tree of dicom-dispatch.

Callers decide by class what to do next: a :class:`TransientError` may succeed when
retried later, a :class:`PermanentError` will not.

    DispatchError
    ├── UsageError                    bad command line or settings (exit 1)
    ├── TransientError                retry later
    │   ├── ConnectFailed             connection refused, unreachable, reset on connect
    │   ├── NetworkTimeout            connect / socket / ACSE / DIMSE timeout
    │   ├── ConnectionLost            reset or closed in the middle of an exchange
    │   ├── PeerAborted               the peer sent A-ABORT
    │   │   └── PeerRequestedRelease  the peer sent A-RELEASE-RQ in the middle of a
    │   │                             store (we abort)
    │   ├── AssociationRejectedTransient
    │   └── TransientStatus           C-STORE status 0xA7xx (out of resources)
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
        ├── ScanFailed                the scan of a job's inputs broke off
        └── FailureStatus             any other non-success C-STORE status

Socket, TLS and file errors are translated into this tree at the boundary of
:mod:`dispatch.net` and :mod:`dispatch.dicomfile` (pydicom's, where a conversion uses it,
in :mod:`dispatch.codecs`); nothing else leaks out.
"""

from __future__ import annotations


class DispatchError(Exception):
    """Base of every error raised on purpose by dicom-dispatch."""


class UsageError(DispatchError):
    """The command line or the settings are wrong; nothing was sent."""


class TransientError(DispatchError):
    """A failure that may go away if the same work is tried again later."""


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


class StoreStatusError(DispatchError):
    """Mixin data for a C-STORE that ended with a non-success status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class TransientStatus(StoreStatusError, TransientError):
    """C-STORE status 0xA7xx: the peer is out of resources; try again later."""


class FailureStatus(StoreStatusError, PermanentError):
    """Any other failure status of a C-STORE."""
