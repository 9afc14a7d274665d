"""A Storage SCP that is also a Storage Commitment (Push Model) SCP, with pynetdicom.

How it answers an N-ACTION (Request Storage Commitment) is programmed by the test
(:attr:`CommitmentScp.mode`):

- ``"same"``: the N-EVENT-REPORT follows on the requesting association;
- ``"new"``: on a new association it opens to :attr:`report_to` (host, port, AE title),
  proposing the SCP role for the SOP class, as archives do;
- ``"never"``: no report at all.

:attr:`fail` names instances reported as failed, with their Failure Reason (event type
2); the others are committed (event type 1 when none failed).

:attr:`fail_once`: each of those fails in the first request naming it only (a file sent
again is then committed).

:attr:`actions` is set at each N-ACTION received; a test that clears :attr:`release`
holds every report back until it sets it again (to act between request and report).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, build_role, evt
from pynetdicom.presentation import StoragePresentationContexts

from dispatch.commitment import STORAGE_COMMITMENT as StorageCommitmentPushModel
from dispatch.commitment import STORAGE_COMMITMENT_INSTANCE

TRANSFER_SYNTAXES = ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"]


@dataclass
class ActionRequest:
    """One N-ACTION received: its Transaction UID and the instances it named."""

    transaction_uid: str
    instances: list[str] = field(default_factory=list)


class CommitmentScp:
    """Listens on 127.0.0.1 as ``ae_title``; :meth:`shutdown` stops it."""

    def __init__(self, ae_title: str = "ANY-SCP") -> None:
        self.mode = "same"
        self.fail: dict[str, int] = {}
        self.fail_once = False
        self._failed: set[str] = set()
        self.report_to: tuple[str, int, str] | None = None
        self.requests: list[ActionRequest] = []
        self.stored: list[str] = []
        """SOP instance UIDs stored, in order (a file sent again: twice)."""
        self.reports_sent = threading.Event()
        self.actions = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []
        ae = AE(ae_title=ae_title)
        for context in StoragePresentationContexts:
            assert context.abstract_syntax is not None
            ae.add_supported_context(context.abstract_syntax, TRANSFER_SYNTAXES)
        ae.add_supported_context(StorageCommitmentPushModel, TRANSFER_SYNTAXES)
        handlers: list[Any] = [
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_N_ACTION, self._on_action),
        ]
        server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=handlers)
        assert server is not None
        self._server = server
        self.host = "127.0.0.1"
        self.port: int = server.server_address[1]

    def _on_store(self, event: Any) -> int:
        self.stored.append(str(event.request.AffectedSOPInstanceUID))
        return 0x0000

    def _on_action(self, event: Any) -> tuple[int, Dataset | None]:
        info = event.action_information
        request = ActionRequest(
            str(info.TransactionUID),
            [str(item.ReferencedSOPInstanceUID) for item in info.ReferencedSOPSequence],
        )
        self.requests.append(request)
        self.actions.set()
        report = self._report(info)
        if self.mode != "never":
            # The report goes out once the N-ACTION-RSP has: from another thread.
            target = self._report_here if self.mode == "same" else self._report_anew
            thread = threading.Thread(target=self._guarded, args=(target, event.assoc, report))
            self._threads.append(thread)
            thread.start()
        return 0x0000, None

    def _report(self, info: Dataset) -> Dataset:
        report = Dataset()
        report.TransactionUID = info.TransactionUID
        committed, failed = [], []
        for item in info.ReferencedSOPSequence:
            ref = Dataset()
            ref.ReferencedSOPClassUID = item.ReferencedSOPClassUID
            ref.ReferencedSOPInstanceUID = item.ReferencedSOPInstanceUID
            uid = str(item.ReferencedSOPInstanceUID)
            reason = self.fail.get(uid)
            if reason is not None and self.fail_once and uid in self._failed:
                reason = None
            self._failed.add(uid)
            if reason is None:
                committed.append(ref)
            else:
                ref.FailureReason = reason
                failed.append(ref)
        if committed:
            report.ReferencedSOPSequence = committed
        if failed:
            report.FailedSOPSequence = failed
        return report

    def _guarded(self, target: Any, assoc: Any, report: Dataset) -> None:
        try:
            self.release.wait()
            target(assoc, report)
            self.reports_sent.set()
        except BaseException as exc:  # reported to the test through .errors
            self.errors.append(exc)

    @staticmethod
    def _event_type(report: Dataset) -> int:
        return 2 if "FailedSOPSequence" in report else 1

    def _report_here(self, assoc: Any, report: Dataset) -> None:
        status, _reply = assoc.send_n_event_report(
            report, self._event_type(report), StorageCommitmentPushModel,
            STORAGE_COMMITMENT_INSTANCE,
        )  # fmt: skip
        assert status is not None and status.Status == 0x0000, status

    def _report_anew(self, _assoc: Any, report: Dataset) -> None:
        assert self.report_to is not None
        host, port, ae_title = self.report_to
        ae = AE(ae_title="COMMIT-SCP")
        ae.add_requested_context(StorageCommitmentPushModel, TRANSFER_SYNTAXES[0])
        role = build_role(StorageCommitmentPushModel, scp_role=True)
        assoc = ae.associate(host, port, ae_title=ae_title, ext_neg=[role])
        assert assoc.is_established, "the listener refused the association"
        try:
            status, _reply = assoc.send_n_event_report(
                report, self._event_type(report), StorageCommitmentPushModel,
                STORAGE_COMMITMENT_INSTANCE,
            )  # fmt: skip
            assert status is not None and status.Status == 0x0000, status
        finally:
            assoc.release()

    def shutdown(self) -> None:
        for thread in self._threads:
            thread.join(10)
        self._server.shutdown()
