"""A programmable pynetdicom Storage SCP for tests: it answers as told and records all.

One :class:`StorageScp` listens on 127.0.0.1 for a whole test session; a test programs
its behaviour (statuses, aborts, stalls, rejections, accepted syntaxes, maximum PDU),
then reads what it received. :meth:`StorageScp.reset` returns it to a plain SCP that
accepts every storage SOP class in every proposed transfer syntax and answers 0x0000.

Every handler runs on a pynetdicom association thread; all state is guarded by one
condition variable, which also wakes the ``wait_*`` methods.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any, cast

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filereader import read_dataset
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian
from pynetdicom import AE, build_context, evt
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation,
    SOPClassExtendedNegotiation,
)
from pynetdicom.service_class import StorageServiceClass, VerificationServiceClass
from pynetdicom.sop_class import uid_to_service_class

#: A-ASSOCIATE-RJ results.
REJECTED_PERMANENT = 0x01
REJECTED_TRANSIENT = 0x02

_VERIFICATION = "1.2.840.10008.1.1"

#: PDU type bytes.
_P_DATA_TF = 0x04
_A_ABORT = 0x07


@dataclass(frozen=True)
class ProposedContext:
    """One presentation context of an A-ASSOCIATE-RQ, in the order proposed."""

    context_id: int
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]


@dataclass(frozen=True)
class AcceptedContext:
    """One presentation context the SCP accepted."""

    context_id: int
    abstract_syntax: str
    transfer_syntax: str


@dataclass
class AssociationRecord:
    """What the SCP saw of one association (fields fill in as it goes on).

    `ended` is None while the association is open, then one of ``"released"``,
    ``"aborted"`` (the requestor sent A-ABORT), ``"aborted-by-scp"``, ``"rejected"``
    or ``"closed"`` (the connection closed without release or abort).
    `largest_pdu` is the length of the largest P-DATA-TF PDU received, header included.
    """

    calling_ae: str
    called_ae: str
    max_pdu: int | None
    implementation_class_uid: str | None
    implementation_version_name: str | None
    proposed: tuple[ProposedContext, ...]
    accepted: tuple[AcceptedContext, ...] = ()
    ended: str | None = None
    largest_pdu: int = 0
    stores: int = 0
    roles: tuple[tuple[str, bool, bool], ...] = ()
    """SCP/SCU role selection items proposed: (SOP class, SCU role, SCP role)."""
    extended: tuple[tuple[str, bytes], ...] = ()
    """SOP class extended negotiation items proposed: (SOP class, data)."""


@dataclass(frozen=True)
class ReceivedStore:
    """One C-STORE request as received, with the status the SCP answered.

    `data` is the data set exactly as encoded on the wire; `status` is None when the
    SCP aborted instead of answering.
    """

    message_id: int
    sop_class_uid: str
    sop_instance_uid: str
    priority: int
    context_id: int
    transfer_syntax: str
    data: bytes
    status: int | None
    association: AssociationRecord = field(repr=False, compare=False)

    def dataset(self) -> Dataset:
        """Decode :attr:`data` in the transfer syntax of its presentation context."""
        ts = UID(self.transfer_syntax)
        raw = self.data
        if ts == DeflatedExplicitVRLittleEndian:
            raw = zlib.decompress(raw, -zlib.MAX_WBITS)
        ds = read_dataset(BytesIO(raw), ts.is_implicit_VR, ts.is_little_endian)
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ts
        return ds


def _is_acceptable_class(uid: str) -> bool:
    """True for the SOP classes pynetdicom can serve as a storage (or echo) SCP."""
    service = uid_to_service_class(uid)
    return service is StorageServiceClass or service is VerificationServiceClass


def _user_item(items: Iterable[Any], kind: type, attribute: str) -> Any:
    for item in items:
        if isinstance(item, kind):
            return getattr(item, attribute)
    return None


class StorageScp:
    """A Storage SCP on 127.0.0.1 whose answers are programmed by the test.

    Stores are counted from the last :meth:`reset` across all associations: "the Nth
    store" means the Nth C-STORE-RQ received since then. :attr:`default_status` answers
    every store once the statuses given to :meth:`respond` are used up;
    :attr:`max_concurrent` is the most associations accepted and open at once.
    """

    def __init__(self, ae_title: str = "ANY-SCP", stall_timeout_s: float = 30.0) -> None:
        self.ae_title = ae_title
        #: The longest a stalled store or association waits for :meth:`release_stall`.
        self.stall_timeout_s = stall_timeout_s
        self._cond = threading.Condition()
        self._ae = AE(ae_title=ae_title)
        self._ae.maximum_associations = 64
        # Replaced per association in _on_requested; the server needs one to start.
        self._ae.add_supported_context(_VERIFICATION)
        handlers: list[Any] = [
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_ACCEPTED, self._on_accepted),
            (evt.EVT_RELEASED, self._on_released),
            (evt.EVT_ABORTED, self._on_aborted),
            (evt.EVT_CONN_CLOSE, self._on_conn_close),
            (evt.EVT_DATA_RECV, self._on_data_recv),
            (evt.EVT_C_STORE, self._on_store),
        ]
        self._release = threading.Event()
        self._records: dict[Any, AssociationRecord] = {}
        self._open: set[Any] = set()
        self._active = 0
        self._scp_aborted: set[Any] = set()
        self._clear()
        server = self._ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=handlers)
        assert server is not None
        self._server = server
        self.host: str = "127.0.0.1"
        self.port: int = server.server_address[1]

    # -- programming -------------------------------------------------------------------

    def _clear(self) -> None:
        """Forget records and behaviour (caller holds no open associations)."""
        self._statuses: deque[int] = deque()
        self.default_status = 0x0000
        self._abort_on: set[int] = set()
        self._stall_on: set[int] = set()
        self._stall_associate = False
        self._reject: tuple[int, int, int] | None = None
        self._transfer_syntaxes: frozenset[str] | None = None
        self._abstract_syntaxes: frozenset[str] | None = None
        self._max_pdu = 16384
        self._stores: list[ReceivedStore] = []
        self._associations: list[AssociationRecord] = []
        self._stalled = 0
        self._stall_at_least_s = 0.0
        self.max_concurrent = 0
        self._release = threading.Event()
        self._data_hook: Callable[[int], None] | None = None
        self._data_received = 0

    def reset(self, timeout_s: float = 5.0) -> None:
        """Release stalls, abort associations still open, then forget everything.

        Afterwards the SCP accepts every storage SOP class in every proposed transfer
        syntax, answers 0x0000 and offers a maximum PDU of 16384.
        """
        self._release.set()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._cond:
                still_open = list(self._open)
            if not still_open:
                break
            for assoc in still_open:
                # Only an established association can be aborted; one being
                # negotiated or rejected ends by itself (A-ABORT there is a protocol
                # error that pynetdicom raises in its own thread).
                if assoc.is_established and not (assoc.is_aborted or assoc.is_released):
                    assoc.abort()
            with self._cond:
                self._cond.wait_for(lambda: not self._open, 0.2)
        with self._cond:
            self._open.clear()
            self._records.clear()
            self._scp_aborted.clear()
            self._active = 0
            self._clear()

    def respond(self, *statuses: int) -> None:
        """Answer the next C-STOREs with these statuses, in order; then the default."""
        with self._cond:
            self._statuses.extend(statuses)

    def abort_on_store(self, *numbers: int) -> None:
        """Send A-ABORT instead of answering the Nth stores (1-based, since reset)."""
        with self._cond:
            self._abort_on.update(numbers)

    def stall_on_store(self, *numbers: int, at_least_s: float = 0.0) -> None:
        """Hold the answer to the Nth stores until :meth:`release_stall` or the timeout,
        and for at least ``at_least_s`` (a peer slower than a sender's idea of slow)."""
        with self._cond:
            self._stall_on.update(numbers)
            self._stall_at_least_s = at_least_s

    def stall_associations(self) -> None:
        """Leave A-ASSOCIATE-RQs unanswered until :meth:`release_stall` or the timeout."""
        with self._cond:
            self._stall_associate = True

    def release_stall(self) -> None:
        """Let every stalled store or association go on (and any stalled later)."""
        self._release.set()

    def reject_associations(
        self, result: int = REJECTED_PERMANENT, source: int = 0x01, reason: int = 0x01
    ) -> None:
        """Answer every A-ASSOCIATE-RQ with A-ASSOCIATE-RJ(result, source, reason).

        `result` is :data:`REJECTED_PERMANENT` or :data:`REJECTED_TRANSIENT`; `source`
        and `reason` follow PS3.8 9.3.4 (e.g. source 3, reason 2: local limit exceeded).
        """
        with self._cond:
            self._reject = (result, source, reason)

    def accept_associations(self) -> None:
        """Undo :meth:`reject_associations`."""
        with self._cond:
            self._reject = None

    def accept_only(
        self,
        *,
        transfer_syntaxes: Iterable[str] | None = None,
        abstract_syntaxes: Iterable[str] | None = None,
    ) -> None:
        """Accept only these transfer / abstract syntaxes (None: any proposed one)."""
        with self._cond:
            if transfer_syntaxes is not None:
                self._transfer_syntaxes = frozenset(transfer_syntaxes)
            if abstract_syntaxes is not None:
                self._abstract_syntaxes = frozenset(abstract_syntaxes)

    def on_data_received(self, hook: Callable[[int], None]) -> None:
        """Call ``hook`` after every P-DATA-TF PDU received, with the bytes of P-DATA-TF
        received since then (on pynetdicom's DUL thread, before the PDU is handled)."""
        with self._cond:
            self._data_hook, self._data_received = hook, 0

    @property
    def max_pdu(self) -> int:
        """The maximum PDU length the SCP offers (0: unlimited)."""
        return self._max_pdu

    @max_pdu.setter
    def max_pdu(self, value: int) -> None:
        with self._cond:
            self._max_pdu = value

    # -- records -----------------------------------------------------------------------

    @property
    def stores(self) -> list[ReceivedStore]:
        """Every C-STORE received since the last reset, in order of arrival."""
        with self._cond:
            return list(self._stores)

    @property
    def associations(self) -> list[AssociationRecord]:
        """Every association requested since the last reset, in order of arrival."""
        with self._cond:
            return list(self._associations)

    def wait_for(self, predicate: Callable[[], bool], what: str, timeout_s: float) -> None:
        """Wait until `predicate()` (called under the lock) holds; fail the test if not."""
        with self._cond:
            if not self._cond.wait_for(predicate, timeout_s):
                raise AssertionError(
                    f"SCP: timed out after {timeout_s} s waiting for {what} "
                    f"({len(self._stores)} stores, {len(self._associations)} associations)"
                )

    def wait_for_stores(self, n: int, timeout_s: float = 5.0) -> list[ReceivedStore]:
        """Wait until at least `n` C-STOREs arrived; return all received."""
        self.wait_for(lambda: len(self._stores) >= n, f"{n} C-STOREs", timeout_s)
        return self.stores

    def wait_for_associations(self, n: int, timeout_s: float = 5.0) -> list[AssociationRecord]:
        """Wait until at least `n` associations have ended; return all requested."""
        self.wait_for(
            lambda: sum(a.ended is not None for a in self._associations) >= n,
            f"{n} associations to end",
            timeout_s,
        )
        return self.associations

    def wait_until_stalled(self, n: int = 1, timeout_s: float = 5.0) -> None:
        """Wait until `n` stores or associations are being held by a stall."""
        self.wait_for(lambda: self._stalled >= n, f"{n} stalls", timeout_s)

    def shutdown(self) -> None:
        """Stop listening and end every association."""
        self._release.set()
        self._server.shutdown()

    # -- pynetdicom event handlers (association threads) --------------------------------

    def _stall(self, release: threading.Event) -> None:
        with self._cond:
            self._stalled += 1
            self._cond.notify_all()
            at_least_s = self._stall_at_least_s
        held = time.monotonic()
        release.wait(self.stall_timeout_s)
        # A floor on the stall, not a wait for an event: the peer's answer time itself.
        time.sleep(max(0.0, held + at_least_s - time.monotonic()))

    def _on_requested(self, event: evt.Event) -> None:
        assoc = event.assoc
        rq = cast(A_ASSOCIATE, assoc.requestor.primitive)
        items = rq.user_information
        proposed = tuple(
            ProposedContext(
                cast(int, cx.context_id),
                str(cx.abstract_syntax),
                tuple(str(ts) for ts in cx.transfer_syntax),
            )
            for cx in rq.presentation_context_definition_list
        )
        record = AssociationRecord(
            calling_ae=str(rq.calling_ae_title).strip(),
            called_ae=str(rq.called_ae_title).strip(),
            max_pdu=_user_item(items, MaximumLengthNotification, "maximum_length_received"),
            implementation_class_uid=_user_item(
                items, ImplementationClassUIDNotification, "implementation_class_uid"
            ),
            implementation_version_name=_user_item(
                items, ImplementationVersionNameNotification, "implementation_version_name"
            ),
            proposed=proposed,
            roles=tuple(
                (str(i.sop_class_uid), bool(i.scu_role), bool(i.scp_role))
                for i in items
                if isinstance(i, SCP_SCU_RoleSelectionNegotiation)
            ),
            extended=tuple(
                (str(i.sop_class_uid), bytes(i.service_class_application_information or b""))
                for i in items
                if isinstance(i, SOPClassExtendedNegotiation)
            ),
        )
        with self._cond:
            self._records[assoc] = record
            self._open.add(assoc)
            self._associations.append(record)
            reject = self._reject
            stall = self._stall_associate
            release = self._release
            transfer_syntaxes = self._transfer_syntaxes
            abstract_syntaxes = self._abstract_syntaxes
            max_pdu = self._max_pdu
            self._cond.notify_all()
        if stall:
            self._stall(release)
        if reject is not None:
            with self._cond:
                record.ended = "rejected"
            assoc.acse.send_reject(*reject)
            assoc.kill()
            return
        offered: dict[str, list[str]] = {}
        for cx in proposed:
            wanted = (
                cx.abstract_syntax in abstract_syntaxes
                if abstract_syntaxes is not None
                else _is_acceptable_class(cx.abstract_syntax)
            )
            if not wanted:
                continue
            syntaxes = offered.setdefault(cx.abstract_syntax, [])
            for ts in cx.transfer_syntaxes:
                if ts not in syntaxes and (transfer_syntaxes is None or ts in transfer_syntaxes):
                    syntaxes.append(ts)
        assoc.acceptor.supported_contexts = [
            build_context(abstract, syntaxes) for abstract, syntaxes in offered.items() if syntaxes
        ]
        assoc.acceptor.maximum_length = max_pdu

    def _on_accepted(self, event: evt.Event) -> None:
        assoc = event.assoc
        accepted = tuple(
            AcceptedContext(
                cast(int, cx.context_id), str(cx.abstract_syntax), str(cx.transfer_syntax[0])
            )
            for cx in assoc.accepted_contexts
        )
        with self._cond:
            record = self._records.get(assoc)
            if record is not None:
                record.accepted = accepted
            self._active += 1
            self.max_concurrent = max(self.max_concurrent, self._active)
            self._cond.notify_all()

    def _end(self, assoc: Any, how: str) -> None:
        with self._cond:
            record = self._records.get(assoc)
            if record is not None and record.ended is None:
                record.ended = how
            self._cond.notify_all()

    def _on_released(self, event: evt.Event) -> None:
        self._end(event.assoc, "released")

    def _on_aborted(self, event: evt.Event) -> None:
        with self._cond:
            by_scp = event.assoc in self._scp_aborted
        self._end(event.assoc, "aborted-by-scp" if by_scp else "aborted")

    def _on_conn_close(self, event: evt.Event) -> None:
        assoc = event.assoc
        self._end(assoc, "closed")
        with self._cond:
            if assoc in self._open:
                self._open.discard(assoc)
                record = self._records.get(assoc)
                if record is not None and record.accepted:
                    self._active -= 1
            self._cond.notify_all()

    def _on_data_recv(self, event: evt.Event) -> None:
        data: bytes = event.data
        if data[:1] == bytes([_A_ABORT]):
            # Noted here, on the DUL thread: EVT_ABORTED comes from the association
            # thread, which a stalled handler can hold until after the connection
            # closed, and "closed" would be recorded instead.
            self._end(event.assoc, "aborted")
            return
        if data[:1] != bytes([_P_DATA_TF]):
            return
        with self._cond:
            record = self._records.get(event.assoc)
            if record is not None:
                record.largest_pdu = max(record.largest_pdu, len(data))
            self._data_received += len(data)
            hook, received = self._data_hook, self._data_received
        if hook is not None:
            hook(received)

    def _orphan(self, assoc: Any) -> AssociationRecord:
        # An association that outlived a reset: record its stores all the same.
        record = AssociationRecord("", "", None, None, None, ())
        self._records[assoc] = record
        return record

    def _on_store(self, event: evt.Event) -> int:
        assoc = event.assoc
        rq = cast(C_STORE, event.request)
        with self._cond:
            record = self._records.get(assoc) or self._orphan(assoc)
            number = len(self._stores) + 1
            abort = number in self._abort_on
            stall = number in self._stall_on
            release = self._release
            status: int | None = None
            if not abort:
                status = self._statuses.popleft() if self._statuses else self.default_status
            self._stores.append(
                ReceivedStore(
                    message_id=cast(int, rq.MessageID),
                    sop_class_uid=str(rq.AffectedSOPClassUID),
                    sop_instance_uid=str(rq.AffectedSOPInstanceUID),
                    priority=rq.Priority,
                    context_id=int(event.context.context_id),
                    transfer_syntax=str(event.context.transfer_syntax),
                    data=event.encoded_dataset(include_meta=False),
                    status=status,
                    association=record,
                )
            )
            record.stores += 1
            if abort:
                self._scp_aborted.add(assoc)
            self._cond.notify_all()
        if stall:
            self._stall(release)
        if abort:
            # Inside a handler pynetdicom queues the A-ABORT ahead of the response
            # returned below, which is then never sent.
            assoc.abort()
            return 0x0000
        assert status is not None
        return status
