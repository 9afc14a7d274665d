"""One association with a Storage SCP, driven synchronously from the caller's thread.

Usage::

    assoc = Association.open(settings)          # raises on reject / network errors
    try:
        message_id = assoc.send_request(context, sop_class, sop_instance, data)
        response = assoc.receive_response(message_id)
    finally:
        assoc.release()                          # or assoc.abort()

Contract: after any exception from :meth:`Association.send_request` or
:meth:`Association.receive_response` the association has already been aborted and
closed; it is never reused in an unknown state. Failure statuses are not exceptions
here: the caller gets the :class:`StoreResponse` and decides (see
:mod:`dispatch.transfer`). A response that names another SOP instance or class than its
request is one: it confirms nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from dispatch.errors import (
    AssociationRejectedPermanent,
    AssociationRejectedTransient,
    ConnectionLost,
    DispatchError,
    IdentityNotConfirmed,
    NetworkTimeout,
    PeerAborted,
    PeerRequestedRelease,
    PeerSilent,
    ProtocolError,
    SendLimitTooSmall,
)
from dispatch.net import acse
from dispatch.net import pdu as P
from dispatch.net.dimse import C_STORE_RSP, decode_command, encode_c_store_rq
from dispatch.net.messages import Message
from dispatch.net.messages import receive as receive_message
from dispatch.net.messages import send as send_message
from dispatch.net.recent import Recent
from dispatch.net.source import DataSource
from dispatch.net.wire import Wire
from dispatch.settings import AssociationSettings, IdentityKind, UserIdentity

_UNLIMITED_SEND_PDU = 131072
"""What we send at most when neither the peer nor the user sets a limit."""

MIN_SEND_PDU = 14
"""Smallest maximum PDU length we send with. The standard's floor is 7 (the 6 bytes of
a PDV item that are not data, and one byte of a fragment: PS3.8 9.3.5 and D.1), but a
message cut into fragments of a few bytes is mostly headers. DCMTK's storescu refuses
every peer limit below 14, and so do we: a peer storescu sends to, we send to."""


@dataclass(frozen=True)
class AcceptedContext:
    """A presentation context the peer accepted."""

    context_id: int
    abstract_syntax: str
    transfer_syntax: str


@dataclass(frozen=True)
class StoreResponse:
    """The peer's C-STORE-RSP: its status and optional error comment."""

    status: int
    error_comment: str = ""
    sop_class_uid: str = ""
    """The SOP class the response names ("" when it leaves it out)."""
    sop_instance_uid: str = ""
    """The SOP instance the response names ("" when it leaves it out)."""


class Association:
    """An established association. Build one with :meth:`open`."""

    def __init__(
        self,
        wire: Wire,
        settings: AssociationSettings,
        negotiated: acse.Negotiated,
        accepted: tuple[AcceptedContext, ...],
    ) -> None:
        self._wire = wire
        self.settings = settings
        self.accepted = accepted
        self._by_class: dict[str, tuple[AcceptedContext, ...]] = {}
        for context in accepted:
            same = self._by_class.get(context.abstract_syntax, ())
            self._by_class[context.abstract_syntax] = (*same, context)
        self.peer_max_pdu = negotiated.max_pdu
        self.peer_implementation_class_uid = negotiated.implementation_class_uid
        self.peer_implementation_version_name = negotiated.implementation_version_name
        self.rejected_results = {
            cid: result for cid, (result, _ts) in negotiated.results.items() if result != 0
        }
        caps = [n for n in (negotiated.max_pdu, settings.max_send_pdu) if n]
        self.max_send_pdu = min(caps) if caps else _UNLIMITED_SEND_PDU
        self._fragment = self.max_send_pdu - P.PDV_OVERHEAD
        self._message_id = 0
        self._pending_path = ""
        self._sent: dict[int, tuple[str, str]] = {}
        """Message id -> (SOP class, SOP instance) of each request still unanswered."""
        self._open = True
        self.setup_s = 0.0
        """Seconds from connect to A-ASSOCIATE-AC."""
        self.associate_ac = b""
        """The peer's A-ASSOCIATE-AC PDU as received (for diagnostics)."""

    # -- opening -----------------------------------------------------------------------

    @classmethod
    def open(cls, settings: AssociationSettings) -> Association:
        """Connect and negotiate. Raises :class:`ConnectFailed`, :class:`NetworkTimeout`,
        :class:`AssociationRejectedTransient` / :class:`AssociationRejectedPermanent`,
        :class:`PeerAborted` or :class:`ProtocolError`; :class:`SendLimitTooSmall` when
        ``settings.max_send_pdu`` (before connecting) or the peer's maximum PDU length
        is under :data:`MIN_SEND_PDU`.
        """
        started = time.monotonic()
        timeouts = settings.timeouts
        request = acse.encode_associate_rq(settings)  # bad settings fail before connecting
        if settings.max_send_pdu:
            _check_send_limit(settings.max_send_pdu, "the maximum send PDU length")
        wire = _connect(settings)
        try:
            wire.send(request, "sending A-ASSOCIATE-RQ")
            wire.wait_readable(timeouts.acse_s, "waiting for A-ASSOCIATE-AC")
            pdu_type, pdu = wire.read_pdu(settings.max_pdu, "waiting for A-ASSOCIATE-AC")
            if pdu_type == P.ASSOCIATE_RJ:
                result, source, reason = acse.decode_associate_rj(pdu)
                text = acse.describe_reject(result, source, reason)
                kind = AssociationRejectedTransient if result == 2 else AssociationRejectedPermanent
                raise kind(text, result, source, reason)
            if pdu_type == P.ABORT:
                raise PeerAborted(P.describe_abort(pdu[8], pdu[9]), pdu[8], pdu[9])
            if pdu_type != P.ASSOCIATE_AC:
                raise ProtocolError(
                    f"unexpected PDU type 0x{pdu_type:02X} instead of A-ASSOCIATE-AC"
                )
            negotiated, accepted = _negotiated(settings, pdu)
            _check_identity(settings.identity, negotiated)
            if negotiated.max_pdu:
                _check_send_limit(negotiated.max_pdu, "the peer's maximum PDU length")
        except DispatchError as exc:
            _abort_quietly(wire, exc)
            raise
        assoc = cls(wire, settings, negotiated, accepted)
        assoc.setup_s = time.monotonic() - started
        assoc.associate_ac = pdu
        return assoc

    # -- storing -----------------------------------------------------------------------

    def contexts_for(self, sop_class_uid: str) -> tuple[AcceptedContext, ...]:
        """The accepted contexts of one SOP class, in context id order."""
        return self._by_class.get(sop_class_uid, ())

    @property
    def is_open(self) -> bool:
        return self._open

    def send_request(
        self,
        context: AcceptedContext,
        sop_class_uid: str,
        sop_instance_uid: str,
        data: DataSource,
    ) -> int:
        """Send one C-STORE-RQ and its data set; return the message id to pass to
        :meth:`receive_response`. The caller may do other work (prepare the next file)
        while the peer stores this one.

        Raises a :class:`~dispatch.errors.DispatchError` when the exchange breaks
        (timeout, reset, peer abort, file that ends early); the association is aborted
        first."""
        if not self._open:
            raise ConnectionLost("association is no longer open")
        self._message_id = (self._message_id % 0xFFFF) + 1
        message_id = self._message_id
        try:
            command = encode_c_store_rq(message_id, sop_class_uid, sop_instance_uid)
            self._wire.send_message(command, data, context.context_id, self._fragment)
        except DispatchError as exc:
            self._abort_after(exc)
            raise
        self._pending_path = data.path
        self._sent[message_id] = (sop_class_uid, sop_instance_uid)
        return message_id

    def skip_message_id(self) -> None:
        """Use up the next message ID without sending anything: storescu numbers every
        file it attempts, so one it could not send leaves a gap."""
        self._message_id = (self._message_id % 0xFFFF) + 1

    def receive_response(self, message_id: int) -> StoreResponse:
        """Wait for the C-STORE-RSP to ``message_id``. Raises like :meth:`send_request`,
        after aborting; also :class:`~dispatch.errors.ProtocolError` for a response that
        breaks the protocol, or that names another SOP instance or class than the
        request (a response that names none is taken as it is). The socket timeout
        expiring without a DIMSE timeout set raises :class:`PeerSilent`, after closing
        the connection without A-ABORT, as storescu does."""
        try:
            return self._receive_response(message_id)
        except NetworkTimeout as exc:
            if self.settings.timeouts.dimse_s is not None:
                self._abort_after(exc)
                raise
            # The socket timeout: as DCMTK, the peer is taken for gone (no A-ABORT).
            self._open = False
            self._wire.close()
            raise PeerSilent(
                f"{exc} (socket timeout): Peer aborted Association (or never connected)"
            ) from exc
        except DispatchError as exc:
            self._abort_after(exc)
            raise

    def reply_arriving(self, timeout_s: float = 0.0) -> bool:
        """Whether the peer has sent something (the awaited response, as a rule) within
        ``timeout_s``. For a caller with work it must not leave undone while the peer is
        slow: False (also when unsure, or the association is broken) means "do it now".
        Never raises; reads nothing."""
        if not self._open:
            return False
        try:
            self._wire.wait_readable(timeout_s, "waiting")
        except DispatchError:
            return False
        return True

    def _receive_response(self, message_id: int) -> StoreResponse:
        wire, settings = self._wire, self.settings
        what = f"waiting for the C-STORE response ({self._pending_path})"
        wire.wait_readable(settings.timeouts.dimse_s, what)
        pdu_type, pdu = wire.read_pdu(settings.max_pdu, what)
        if (
            pdu_type == P.P_DATA_TF
            and len(pdu) >= 12
            and pdu[11] == 0x03
            and int.from_bytes(pdu[6:10], "big") == len(pdu) - 10
        ):
            # As a rule the whole command comes in one PDV of one PDU, marked last.
            command = pdu[12:]
        else:
            command = self._collect_pdus(pdu_type, pdu, what)
        decoded = decode_command(command)
        if decoded.command_field != C_STORE_RSP:
            raise ProtocolError(f"unexpected command 0x{decoded.command_field:04X}")
        if decoded.message_id_responded != message_id:
            raise ProtocolError(
                f"response to message {decoded.message_id_responded}, expected {message_id}"
            )
        if decoded.status is None:
            raise ProtocolError("C-STORE response without a status")
        sop_class, sop_instance = self._sent.pop(message_id, ("", ""))
        _check_named(decoded.sop_instance_uid, sop_instance, "instance")
        _check_named(decoded.sop_class_uid, sop_class, "SOP class")
        return StoreResponse(
            decoded.status, decoded.error_comment, decoded.sop_class_uid, decoded.sop_instance_uid
        )

    def _collect_pdus(self, pdu_type: int, pdu: bytes, what: str) -> bytes:
        """The command whose first PDU has been read (``pdu_type``, ``pdu``): its
        fragments from as many P-DATA-TF PDUs as it takes."""
        command = bytearray()
        while True:
            if pdu_type == P.ABORT:
                self._open = False
                raise PeerAborted(P.describe_abort(pdu[8], pdu[9]), pdu[8], pdu[9])
            if pdu_type == P.RELEASE_RQ:
                raise PeerRequestedRelease
            if pdu_type != P.P_DATA_TF:
                raise ProtocolError(f"unexpected PDU type 0x{pdu_type:02X} instead of P-DATA-TF")
            if self._collect_command(pdu, command):
                return bytes(command)
            pdu_type, pdu = self._wire.read_pdu(self.settings.max_pdu, what)

    @staticmethod
    def _collect_command(pdu: bytes, command: bytearray) -> bool:
        """Append the command fragments of a P-DATA-TF to ``command``; True once the
        last fragment has arrived."""
        pos, end = 6, len(pdu)
        done = False
        while pos < end:
            if pos + 6 > end:
                raise ProtocolError("truncated PDV item")
            item = int.from_bytes(pdu[pos : pos + 4], "big")
            if item < 2 or pos + 4 + item > end:
                raise ProtocolError("bad PDV item length")
            control = pdu[pos + 5]
            if not control & 0x01:
                raise ProtocolError("data set fragment in a C-STORE response")
            command += pdu[pos + 6 : pos + 4 + item]
            done = bool(control & 0x02)
            pos += 4 + item
        return done

    # -- ending ------------------------------------------------------------------------

    def release(self) -> None:
        """A-RELEASE-RQ and wait for A-RELEASE-RP (ACSE timeout). Raises on failure,
        after aborting; a no-op when the association is already closed."""
        if not self._open:
            return
        wire, what = self._wire, "releasing the association"
        try:
            wire.send(P.RELEASE_RQ_BYTES, what)
            wire.wait_readable(self.settings.timeouts.acse_s, what)
            while True:
                pdu_type, pdu = wire.read_pdu(self.settings.max_pdu, what)
                if pdu_type == P.RELEASE_RP:
                    break
                if pdu_type == P.ABORT:
                    self._open = False
                    raise PeerAborted(P.describe_abort(pdu[8], pdu[9]), pdu[8], pdu[9])
                if pdu_type == P.RELEASE_RQ:
                    # Release collision (PS3.8 7.2.2): as requestor we answer it.
                    wire.send(P.RELEASE_RP_BYTES, what)
                    continue
                raise ProtocolError(f"unexpected PDU type 0x{pdu_type:02X} while releasing")
        except DispatchError as exc:
            self._abort_after(exc)
            raise
        self._open = False
        wire.close()

    def abort(self) -> None:
        """Send A-ABORT (user-initiated) and close; never raises."""
        if self._open:
            self._open = False
            _abort_quietly(self._wire, None)
        else:
            self._wire.close()

    def _abort_after(self, exc: DispatchError) -> None:
        self._open = False
        _abort_quietly(self._wire, exc)

    # -- other DIMSE messages (C-ECHO, N-ACTION, N-EVENT-REPORT) -------------------------

    def send_dimse(self, context_id: int, command: bytes, data_set: bytes | None = None) -> None:
        """Send one whole message from memory on ``context_id``: ``command`` (a command
        set, see :mod:`dispatch.net.dimse`) and its ``data_set`` if any. Raises like
        :meth:`send_request`, after aborting."""
        if not self._open:
            raise ConnectionLost("association is no longer open")
        try:
            send_message(self._wire, context_id, self._fragment, command, data_set)
        except DispatchError as exc:
            self._abort_after(exc)
            raise

    def receive_dimse(self, timeout_s: float | None, what: str) -> Message:
        """The next whole message from the peer, waited for at most ``timeout_s`` (None:
        the socket timeout). Raises like :meth:`receive_response`, after aborting."""
        if not self._open:
            raise ConnectionLost("association is no longer open")
        try:
            return receive_message(self._wire, self.settings.max_pdu, timeout_s, what)
        except DispatchError as exc:
            self._abort_after(exc)
            raise


def _connect(settings: AssociationSettings) -> Wire:
    """The connection for ``settings``: plain TCP, or TLS with the handshake bounded by
    the ACSE timeout (else the socket timeout)."""
    timeouts = settings.timeouts
    tls = settings.tls
    if tls is None:
        return Wire.connect(settings.host, settings.port, timeouts.connect_s, timeouts.socket_s)
    from dispatch.net.tls import client_context

    context = client_context(tls)
    server_name = tls.server_name
    if server_name is None and tls.check_hostname:
        server_name = settings.host
    return Wire.connect(
        settings.host,
        settings.port,
        timeouts.connect_s,
        timeouts.socket_s,
        tls=context,
        server_hostname=server_name,
        handshake_timeout_s=timeouts.acse_s or timeouts.socket_s,
    )


_Outcome = tuple[acse.Negotiated, tuple[AcceptedContext, ...]]
_NEGOTIATED: Recent[tuple[AssociationSettings, bytes], _Outcome] = Recent(16)
"""What recent A-ASSOCIATE-ACs said, by the settings proposed and the AC's bytes: a
worker opens one association per chunk to the same peer with the same proposal, and
the peer answers it the same way each time (decoding 128 contexts costs a fraction of a
millisecond)."""


def _negotiated(settings: AssociationSettings, pdu: bytes) -> _Outcome:
    """The decoded A-ASSOCIATE-AC ``pdu`` and the contexts it accepted of ``settings``'s
    proposal, in context id order. Raises :class:`ProtocolError` for a malformed AC."""
    found = _NEGOTIATED.get((settings, pdu))
    if found is not None:
        return found
    negotiated = acse.decode_associate_ac(pdu)
    proposed = {c.context_id: c.abstract_syntax for c in settings.contexts}
    accepted = tuple(
        AcceptedContext(cid, proposed[cid], ts)
        for cid, (result, ts) in sorted(negotiated.results.items())
        if result == 0 and cid in proposed and ts
    )
    _NEGOTIATED.put((settings, pdu), (negotiated, accepted))
    return negotiated, accepted


def _check_identity(identity: UserIdentity | None, negotiated: acse.Negotiated) -> None:
    """-rsp: as DCMTK, a user name (and passcode) identity whose positive response was
    requested must be answered; for the ticket kinds nothing is checked."""
    if identity is None or not identity.positive_response:
        return
    if identity.kind not in (IdentityKind.USERNAME, IdentityKind.USERNAME_PASSCODE):
        return
    if negotiated.identity_response is None:
        raise IdentityNotConfirmed(
            "User Identity Negotiation failed: Positive response requested but none received"
        )


def _check_named(answered: str, sent: str, what: str) -> None:
    """A C-STORE-RSP confirms the instance (or SOP class) of its request, or none:
    :class:`ProtocolError` when it names another (``answered``, as decoded, without
    its padding; empty when the response leaves the element out)."""
    sent = sent.rstrip("\0 ")
    if answered and sent and answered != sent:
        raise ProtocolError(f"the peer's response names {what} {answered}, not {sent}")


def _check_send_limit(limit: int, what: str) -> None:
    """Raise :class:`SendLimitTooSmall` when ``limit`` (``what``) is under
    :data:`MIN_SEND_PDU`."""
    if limit < MIN_SEND_PDU:
        raise SendLimitTooSmall(
            f"{what} is {limit} bytes, too small to send with (at least {MIN_SEND_PDU})"
        )


def _abort_quietly(wire: Wire, cause: DispatchError | None) -> None:
    """Abort and close, whatever state the socket is in.

    No A-ABORT is sent to a peer that aborted or vanished; a protocol error gets a
    provider abort, anything else (a peer's A-RELEASE-RQ in the middle of a store
    included, as storescu does) a user abort.
    """
    if isinstance(cause, PeerRequestedRelease) or not isinstance(
        cause, PeerAborted | ConnectionLost
    ):
        source = P.ABORT_SOURCE_PROVIDER if isinstance(cause, ProtocolError) else 0
        reason = P.ABORT_REASON_INVALID_PARAMETER if source else 0
        wire.abort(P.abort_bytes(source, reason))
    else:
        wire.close()


__all__ = [
    "AcceptedContext",
    "Association",
    "DataSource",
    "NetworkTimeout",
    "StoreResponse",
]
