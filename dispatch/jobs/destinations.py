"""Destinations that cannot be reached: their shared waiting state, and what one worker
keeps to itself.

A destination that refuses connections, times out or rejects associations
(rejected-transient) is *waiting*: "unreachable since T, last error E, next try at N".
That state lives in the job store (:meth:`JobStore.destination_failed` and its
siblings; Redis for workers, memory embedded), so that one worker's finding slows all
of them, and one success by anyone (an association accepted) clears it. Only one
chunk at a time tries a waiting destination once its next try is due (it *claims the
probe*); the others wait until the next try.

A destination reached by other workers but not by this one (a firewall, a route, a
name that resolves elsewhere) is this worker's own trouble: :class:`LocalBackoff`
remembers it, and the chunks go back to the queue for the others.

Times are wall-clock seconds (``time.time``), passed in, so that hosts agree and tests
need not sleep.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dispatch.jobs.backoff import wait_s
from dispatch.observe import SendObserver
from dispatch.outcome import FileOutcome

__all__ = [
    "DestinationState",
    "LocalBackoff",
    "ReachObserver",
    "WaitingNotices",
    "format_duration",
    "parse_duration",
    "waiting_line",
    "worker_name",
]


@dataclass(frozen=True)
class DestinationState:
    """What the job store knows of a destination's reachability."""

    destination: str
    since: float = 0.0
    """Unreachable since then (0: not waiting; reached, or never tried)."""
    error: str = ""
    """The last failure to reach it."""
    next_try: float = 0.0
    """No chunk tries it before this (while waiting)."""
    failures: int = 0
    """Failures in a row since ``since``."""
    reached_at: float = 0.0
    """When an association with it was last accepted (0: never, as far as known)."""
    reached_by: str = ""
    """The worker that reached it then (:func:`worker_name`)."""

    @property
    def waiting(self) -> bool:
        return self.since > 0


def waiting_line(state: DestinationState) -> str:
    """The one line that shows a waiting destination (``status``, ``watch``)."""
    return (
        f"waiting for {state.destination} since {_clock(state.since)},"
        f" next try {_clock(state.next_try)}: {state.error}"
    )


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """``90s``, ``30m``, ``4h``, ``1d`` or a number of seconds, as seconds; ValueError
    for anything else (negative included)."""
    value = text.strip().lower()
    scale = _UNITS.get(value[-1:], 0.0)
    number = float(value[:-1] if scale else value)
    if number < 0 or number != number or number == float("inf"):
        raise ValueError(text)
    return number * (scale or 1.0)


def format_duration(seconds: float) -> str:
    """A duration as an operator writes it: ``45s``, ``30m``, ``4h``, ``1h30m``."""
    if seconds < 60:
        return f"{round(seconds, 3):g}s"
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n)


_worker: tuple[int, str] = (0, "")
"""This process's pid and worker name (a forked child makes its own)."""


def worker_name() -> str:
    """This process's name as a worker that reaches destinations (``host:pid:random``):
    each process resolves and connects on its own."""
    global _worker
    if _worker[0] != os.getpid():
        _worker = (os.getpid(), f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")
    return _worker[1]


class LocalBackoff:
    """Destinations this worker cannot reach while others can: until when it leaves
    them to the others, and since when its own failures last. Safe for threads."""

    def __init__(self, base_s: float, cap_s: float, rng: random.Random | None = None) -> None:
        self.base_s = base_s
        self.cap_s = cap_s
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._since: dict[str, float] = {}
        self._until: dict[str, float] = {}
        self._failures: dict[str, int] = {}

    def since(self, destination: str) -> float:
        """When this worker's failures to reach ``destination`` began (0: none)."""
        with self._lock:
            return self._since.get(destination, 0.0)

    def until(self, destination: str) -> float:
        """This worker leaves ``destination`` to the others until then (0: it does not)."""
        with self._lock:
            return self._until.get(destination, 0.0)

    def failed(self, destination: str, now: float) -> None:
        """This worker failed to reach ``destination`` at ``now`` (its streak begins,
        unless it has begun)."""
        with self._lock:
            self._since.setdefault(destination, now)

    def back_off(self, destination: str, now: float) -> float:
        """Leave ``destination`` to the others for a while (longer each time in a row);
        returns until when."""
        with self._lock:
            count = self._failures.get(destination, 0)
            self._failures[destination] = count + 1
            until = now + wait_s(count, self.base_s, self.cap_s, self._rng.random())
            self._until[destination] = until
            return until

    def reached(self, destination: str) -> None:
        """This worker reached ``destination``: its trouble is over."""
        with self._lock:
            self._since.pop(destination, None)
            self._until.pop(destination, None)
            self._failures.pop(destination, None)


class ReachObserver:
    """A :class:`SendObserver` that passes everything on to ``inner`` and, when an
    association is accepted, calls ``on_reached(destination)`` (once per run is enough:
    later calls are cheap no-ops for the caller to skip)."""

    def __init__(self, inner: SendObserver, on_reached: Callable[[str], None]) -> None:
        self.inner = inner
        self.on_reached = on_reached
        self.reached = False

    def association_opened(self, destination: str, setup_s: float) -> None:
        self.inner.association_opened(destination, setup_s)
        if not self.reached:
            self.reached = True
            self.on_reached(destination)

    def association_closed(self, destination: str) -> None:
        self.inner.association_closed(destination)

    def association_limit(self, destination: str, limit: int) -> None:
        self.inner.association_limit(destination, limit)

    def file_done(self, destination: str, outcome: FileOutcome) -> None:
        self.inner.file_done(destination, outcome)

    def retry(self, destination: str, reason: str) -> None:
        self.inner.retry(destination, reason)

    def file_committed(self, destination: str, result: str) -> None:
        self.inner.file_committed(destination, result)


class WaitingNotices:
    """Follows a job's destination while the job is watched: ``notify`` gets the one line
    of :func:`waiting_line` when the destination starts waiting or its next try moves,
    and a line when it is reached again. Asks the store at most every ``every_s``; use
    it as a progress callback (it takes the job's snapshots)."""

    def __init__(
        self,
        destination: Callable[[str], DestinationState],
        notify: Callable[[str], None],
        every_s: float = 1.0,
    ) -> None:
        self._destination = destination
        self._notify = notify
        self._every_s = every_s
        self._asked = -every_s
        self._last: DestinationState | None = None

    def __call__(self, snapshot: Any) -> None:
        now = time.monotonic()
        if now - self._asked < self._every_s or not snapshot.destination:
            return
        self._asked = now
        state = self._destination(snapshot.destination)
        last, self._last = self._last, state
        if state.waiting and (last is None or last.next_try != state.next_try):
            self._notify(waiting_line(state))
        elif not state.waiting and last is not None and last.waiting:
            self._notify(f"{state.destination} reached again")
