"""Association slots: at most N simultaneous associations to one destination.

A slot is held under a lease: the holder renews it (a :class:`Heartbeat` does, every
third of the lease) and releases it when its association ends. A holder that dies
stops renewing, and its slot frees itself when the lease runs out.

:class:`RedisSlots` shares the limit across every worker on every host (a sorted set
of holders scored by lease expiry, on the Redis server's clock; acquiring is one Lua
script: drop expired holders, count, add if below the limit). :class:`MemorySlots` is
the same within one process (the embedded mode).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from dispatch.jobs.lua import NOW_MS

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


class MemorySlots:
    """:class:`SlotPool` within one process; ``clock`` is injectable for tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._held: dict[str, dict[str, float]] = {}

    def _live(self, destination: str) -> dict[str, float]:
        now = self._clock()
        held = self._held.setdefault(destination, {})
        for holder in [h for h, until in held.items() if until <= now]:
            del held[holder]
        return held

    def try_acquire(self, destination: str, limit: int, holder: str, lease_s: float) -> bool:
        with self._lock:
            held = self._live(destination)
            if holder not in held and len(held) >= limit:
                return False
            held[holder] = self._clock() + lease_s
            return True

    def renew(self, destination: str, holder: str, lease_s: float) -> bool:
        with self._lock:
            held = self._live(destination)
            if holder not in held:
                return False
            held[holder] = self._clock() + lease_s
            return True

    def release(self, destination: str, holder: str) -> None:
        with self._lock:
            self._held.get(destination, {}).pop(holder, None)

    def in_use(self, destination: str) -> int:
        with self._lock:
            return len(self._live(destination))


_NOW = NOW_MS

# KEYS: slots ; ARGV: holder, limit, lease ms, now ms ('' = server clock)
_ACQUIRE = (
    _NOW
    + """
local now = now_ms(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local lease = tonumber(ARGV[3])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease * 10)
return 1
"""
)

# KEYS: slots ; ARGV: holder, lease ms, now ms
_RENEW = (
    _NOW
    + """
local now = now_ms(ARGV[3])
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) <= now then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 10)
return 1
"""
)

# KEYS: slots ; ARGV: now ms
_COUNT = (
    _NOW
    + """
return redis.call('ZCOUNT', KEYS[1], '(' .. now_ms(ARGV[1]), '+inf')
"""
)


class RedisSlots:
    """:class:`SlotPool` shared by every worker through Redis.

    ``now`` (seconds) may be passed to the methods to test lease expiry without
    waiting; by default the Redis server's clock is used.
    """

    def __init__(self, client: Any, prefix: str = "dispatch") -> None:
        self._r = client
        self.prefix = prefix
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._count = client.register_script(_COUNT)

    def _key(self, destination: str) -> str:
        return f"{self.prefix}:slots:{destination}"

    @staticmethod
    def _ms(now: float | None) -> str:
        return "" if now is None else str(int(now * 1000))

    def try_acquire(
        self, destination: str, limit: int, holder: str, lease_s: float, now: float | None = None
    ) -> bool:
        args = [holder, limit, int(lease_s * 1000), self._ms(now)]
        return int(self._acquire(keys=[self._key(destination)], args=args)) == 1

    def renew(
        self, destination: str, holder: str, lease_s: float, now: float | None = None
    ) -> bool:
        args = [holder, int(lease_s * 1000), self._ms(now)]
        return int(self._renew(keys=[self._key(destination)], args=args)) == 1

    def release(self, destination: str, holder: str) -> None:
        self._r.zrem(self._key(destination), holder)

    def in_use(self, destination: str, now: float | None = None) -> int:
        return int(self._count(keys=[self._key(destination)], args=[self._ms(now)]))


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
