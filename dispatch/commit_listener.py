"""The listener for storage commitment reports that the peer sends on an association of
its own (as most archives do): a Storage Commitment SCU in the acceptor's seat.

It accepts the Storage Commitment Push Model SOP Class with the role selection the
standard asks of a peer that sends N-EVENT-REPORT as association requestor (PS3.4
J.3.3: the peer proposes the SCP role, we accept it; without a role selection item the
default roles are accepted too), answers every report with success, and keeps the
reports by Transaction UID for :meth:`CommitmentListener.wait`. The peer must be
configured with our AE title (``-aet``), this host and the port.

pynetdicom serves the associations (imported only when a listener starts).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from dispatch.commitment import STORAGE_COMMITMENT, CommitmentReport, report_from_dataset
from dispatch.errors import DispatchError, UsageError
from dispatch.uids import EXPLICIT_LE, IMPLICIT_LE

__all__ = ["CommitmentListener"]

log = logging.getLogger("dispatch.commit")

_PROCESSING_FAILURE = 0x0110


class CommitmentListener:
    """Listens on ``host:port`` ("" host: every interface) as ``ae_title`` until
    :meth:`stop`. Raises :class:`UsageError` when it cannot listen there.

    ``on_report`` (a job store's ``commit_reported``, for ``dispatch commit-listener``)
    hears every report before it is answered; one it cannot take (it raises
    :class:`DispatchError`) is answered with a processing failure, so that the peer
    sends it again."""

    def __init__(
        self,
        ae_title: str,
        host: str,
        port: int,
        on_report: Callable[[CommitmentReport], object] | None = None,
    ) -> None:
        from pynetdicom import AE, evt

        self._on_report_hook = on_report
        self._cond = threading.Condition()
        self._reports: dict[str, CommitmentReport] = {}
        ae = AE(ae_title=ae_title)
        ae.add_supported_context(
            STORAGE_COMMITMENT, [IMPLICIT_LE, EXPLICIT_LE], scu_role=False, scp_role=True
        )
        handlers: list[Any] = [(evt.EVT_N_EVENT_REPORT, self._on_report)]
        try:
            server = ae.start_server((host, port), block=False, evt_handlers=handlers)
        except OSError as exc:
            where = f"{host or '*'}:{port}"
            raise UsageError(
                f"cannot listen for storage commitment reports on {where}: {exc.strerror}"
            ) from exc
        assert server is not None
        self._server = server
        self.port: int = server.server_address[1]

    def _on_report(self, event: Any) -> tuple[int, None]:
        try:
            report = report_from_dataset(event.event_information)
        except (DispatchError, ValueError, AttributeError) as exc:
            log.warning("unreadable storage commitment report: %s", exc)
            return _PROCESSING_FAILURE, None
        log.info("storage commitment report for transaction %s", report.transaction_uid)
        if self._on_report_hook is not None:
            try:
                self._on_report_hook(report)
            except DispatchError as exc:
                log.warning("could not record the storage commitment report: %s", exc)
                return _PROCESSING_FAILURE, None
            return 0x0000, None
        with self._cond:
            self._reports[report.transaction_uid] = report
            self._cond.notify_all()
        return 0x0000, None

    def wait(self, transaction_uid: str, timeout_s: float) -> CommitmentReport | None:
        """The report of ``transaction_uid`` (it may have come already), waited for at
        most ``timeout_s``; None when none came."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while transaction_uid not in self._reports:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
            return self._reports.pop(transaction_uid)

    def stop(self) -> None:
        """Stop listening (associations in progress are ended)."""
        self._server.shutdown()
