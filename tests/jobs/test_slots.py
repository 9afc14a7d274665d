"""Association slots: the limit per destination, and leases that free dead holders."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from dispatch.jobs.backends.memory import MemorySlots
from dispatch.jobs.backends.redis import RedisSlots
from dispatch.jobs.slots import Heartbeat, wait_for_slot


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_memory_slots_hold_the_limit_and_expired_lease_frees_the_slot() -> None:
    clock = FakeClock()
    slots = MemorySlots(clock)
    assert slots.try_acquire("peer", 2, "a", 10)
    assert slots.try_acquire("peer", 2, "b", 10)
    assert not slots.try_acquire("peer", 2, "c", 10)
    assert slots.try_acquire("other", 2, "c", 10)
    clock.now += 5
    assert slots.renew("peer", "a", 10)
    clock.now += 6  # b's lease ran out; a renewed
    assert slots.in_use("peer") == 1
    assert not slots.renew("peer", "b", 10)
    assert slots.try_acquire("peer", 2, "c", 10)
    slots.release("peer", "a")
    assert slots.in_use("peer") == 1


def test_redis_slots_hold_the_limit_and_expired_lease_frees_the_slot(redis_client: Any) -> None:
    slots = RedisSlots(redis_client, prefix="t")
    now = 1_000_000.0
    assert slots.try_acquire("peer", 1, "a", 10, now=now)
    assert not slots.try_acquire("peer", 1, "b", 10, now=now + 9)
    assert slots.try_acquire("peer", 1, "a", 10, now=now + 1)  # a holder renews its own
    assert slots.in_use("peer", now=now + 10.5) == 1
    # a died: no renewal; its lease ends at now + 11
    assert slots.try_acquire("peer", 1, "b", 10, now=now + 11.5)
    assert not slots.renew("peer", "a", 10, now=now + 12)
    slots.release("peer", "b")
    assert slots.in_use("peer", now=now + 12) == 0


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_wait_for_slot_gets_one_when_released_and_gives_up_when_told(
    kind: str, request: pytest.FixtureRequest
) -> None:
    slots = (
        MemorySlots()
        if kind == "memory"
        else RedisSlots(request.getfixturevalue("redis_client"), "t")
    )
    assert slots.try_acquire("peer", 1, "a", 30)
    stop = threading.Event()
    assert not wait_for_slot(slots, "peer", 1, "b", 30, should_stop=lambda: True)
    releaser = threading.Timer(0.1, slots.release, args=("peer", "a"))
    releaser.start()
    assert wait_for_slot(slots, "peer", 1, "b", 30, should_stop=stop.is_set, poll_cap_s=0.05)
    assert slots.in_use("peer") == 1


def test_heartbeat_flags_a_lost_lease() -> None:
    calls = threading.Event()

    def lost() -> bool:
        calls.set()
        return False

    beat = Heartbeat(0.01, {"chunk": lost}).start()
    try:
        assert beat.lost.wait(5)
    finally:
        beat.stop()
    assert calls.is_set()
