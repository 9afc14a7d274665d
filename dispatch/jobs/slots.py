"""Association slots: at most N simultaneous associations to one destination.

A slot is held under a lease: the holder renews it (a :class:`Heartbeat` does, every
third of the lease) and releases it when its association ends. A holder that dies
stops renewing, and its slot frees itself when the lease runs out.

The :class:`SlotPool` contract has two implementations:
:class:`~dispatch.jobs.backends.redis.RedisSlots` shares the limit across every worker
on every host (a sorted set of holders scored by lease expiry, on the Redis server's
clock; acquiring is one Lua script: drop expired holders, count, add if below the
limit); :class:`~dispatch.jobs.backends.memory.MemorySlots` is the same within one
process (the embedded mode). This module also holds what uses any pool:
:func:`wait_for_slot` and the :class:`Heartbeat` that renews leases.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from dispatch.jobs.backends.memory import MemorySlots
    from dispatch.jobs.backends.redis import RedisSlots

__all__ = ["Heartbeat", "MemorySlots", "RedisSlots", "SlotPool", "wait_for_slot"]

log = logging.getLogger("dispatch.jobs")


class SlotPool(Protocol):
    """Leased slots per destination."""

    def try_acquire(self, destination: str, limit: int, holder: str, lease_s: float) -> bool:
        """Take a slot unless ``limit`` live holders have one (True if ``holder``
        already holds one: it is renewed)."""

    def renew(self, destination: str, holder: str, lease_s: float) -> bool:
        """Extend the holder's lease; False when it has no live slot any more."""

    def release(self, destination: str, holder: str) -> None:
        """Give the slot back (a no-op when not held)."""

    def in_use(self, destination: str) -> int:
        """How many live holders the destination has now."""


def wait_for_slot(
    pool: SlotPool,
    destination: str,
    limit: int,
    holder: str,
    lease_s: float,
    should_stop: Callable[[], bool],
    poll_cap_s: float = 2.0,
) -> bool:
    """Wait until a slot is ours (True) or ``should_stop()`` says to give up (False).

    Polls with a delay doubling from 50 ms up to ``poll_cap_s``: another host's
    release cannot be awaited, only seen.
    """
    delay = 0.05
    while True:
        if should_stop():
            return False
        if pool.try_acquire(destination, limit, holder, lease_s):
            return True
        time.sleep(delay)
        delay = min(delay * 2, poll_cap_s)


class Heartbeat:
    """A daemon thread that calls each ``renew`` callable every ``interval_s``.

    When one answers False (the lease was lost, e.g. this process stalled for longer
    than the lease and another took over), :attr:`lost` is set and the owner must stop
    after its current file. An exception (Redis briefly unreachable) is logged and
    tried again at the next beat.
    """

    def __init__(self, interval_s: float, renewals: dict[str, Callable[[], bool]]) -> None:
        self.interval_s = interval_s
        self._renewals = dict(renewals)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.lost = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dispatch-heartbeat", daemon=True)

    def add(self, name: str, renew: Callable[[], bool]) -> None:
        with self._lock:
            self._renewals[name] = renew

    def remove(self, name: str) -> None:
        with self._lock:
            self._renewals.pop(name, None)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            with self._lock:
                renewals = list(self._renewals.items())
            for name, renew in renewals:
                try:
                    if not renew():
                        log.warning("lease lost: %s", name)
                        self.lost.set()
                except Exception as exc:  # keep beating; the lease decides
                    log.warning("renewing %s failed: %s", name, exc)


def __getattr__(name: str) -> Any:
    # The pools lived here before the backends had a package of their own; they are
    # imported on demand, as the store's are from dispatch.jobs.store.
    if name == "MemorySlots":
        from dispatch.jobs.backends.memory import MemorySlots

        return MemorySlots
    if name == "RedisSlots":
        from dispatch.jobs.backends.redis import RedisSlots

        return RedisSlots
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
