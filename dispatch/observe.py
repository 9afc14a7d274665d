"""What the senders report while they work, for whoever watches (metrics).

The engine and the chunk runner call the installed :class:`SendObserver` at a few
points of a send; by default nobody watches (:class:`NullObserver`). The command line
and the workers install a Prometheus observer (:mod:`dispatch.metrics`) when metrics
are asked for, so that nothing here knows of Prometheus and the package starts without
it. The installed observer is the one piece of global state of this module: one per
process, set once at start-up (a worker process sets its own after the fork).

Contract of every callback: called on the sending thread, must be quick and must not
raise; ``destination`` is the bounded name of a peer (:func:`destination_name`), never
a file, UID or job id.
"""

from __future__ import annotations

from typing import Protocol

from dispatch.errors import UsageError
from dispatch.outcome import FileOutcome
from dispatch.settings import AssociationSettings


class SendObserver(Protocol):
    """The hooks a sender calls."""

    def association_opened(self, destination: str, setup_s: float) -> None:
        """An association was accepted after ``setup_s`` seconds (connect, negotiate)."""

    def association_closed(self, destination: str) -> None:
        """An association reported opened has ended (released, aborted or broken)."""

    def association_limit(self, destination: str, limit: int) -> None:
        """The configured limit of simultaneous associations to ``destination``."""

    def file_done(self, destination: str, outcome: FileOutcome) -> None:
        """A file got its (first recorded) outcome."""

    def retry(self, destination: str, reason: str) -> None:
        """A transient failure will be retried; ``reason`` is one of :data:`RETRY_REASONS`."""

    def file_committed(self, destination: str, result: str) -> None:
        """A stored file's storage commitment ended: ``result`` is one of
        :data:`COMMIT_RESULTS`."""


RETRY_REASONS = ("association", "exchange", "out_of_resources")
"""Why a send is retried: the association could not be opened; it broke during an
exchange (timeout, reset, abort); the peer answered 0xA7xx (out of resources)."""


COMMIT_RESULTS = ("committed", "commit_failed", "commit_pending")
"""How a file's storage commitment ends (:class:`dispatch.commitment.CommitState`)."""


class NullObserver:
    """Watches nothing."""

    def association_opened(self, destination: str, setup_s: float) -> None:
        pass

    def association_closed(self, destination: str) -> None:
        pass

    def association_limit(self, destination: str, limit: int) -> None:
        pass

    def file_done(self, destination: str, outcome: FileOutcome) -> None:
        pass

    def retry(self, destination: str, reason: str) -> None:
        pass

    def file_committed(self, destination: str, result: str) -> None:
        pass


_observer: SendObserver = NullObserver()


def install(observer: SendObserver) -> None:
    """Make ``observer`` the one this process's senders report to."""
    global _observer
    _observer = observer


def current() -> SendObserver:
    """The installed observer (a :class:`NullObserver` until one is installed)."""
    return _observer


def destination_name(settings: AssociationSettings) -> str:
    """A peer's bounded label: ``AE@host:port`` (the same key as the association limit)."""
    return peer_name(settings.called_ae, settings.host, settings.port)


def peer_name(called_ae: str, host: str, port: int) -> str:
    """The one formatter of a destination's name, ``AE@host:port`` (an IPv6 address in
    brackets, ``AE@[::1]:104``): metrics labels, slot keys, job records and the command
    line's text all use it."""
    shown = f"[{host}]" if ":" in host else host
    return f"{called_ae}@{shown}:{port}"


def parse_listen_address(text: str, default_host: str = "0.0.0.0") -> tuple[str, int]:
    """``PORT`` or ``HOST:PORT`` (``[v6]:PORT``) as ``(host, port)``; raises
    :class:`UsageError` for anything else. Without a host the metrics are served on
    ``default_host`` (every interface: Prometheus scrapes from another host)."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host = default_host
    host = host.strip("[]") or default_host
    try:
        port = int(port_text)
    except ValueError:
        raise UsageError(f"bad metrics address {text!r}: expected PORT or HOST:PORT") from None
    if not 0 < port < 65536:
        raise UsageError(f"bad metrics address {text!r}: port must be 1-65535")
    return host, port
