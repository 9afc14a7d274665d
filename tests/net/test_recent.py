"""The engine's small caches (dispatch.net.recent), shared by sending threads."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

from dispatch.net.recent import Recent


@pytest.fixture
def eager_switching() -> Iterator[None]:
    """Threads switch as often as the interpreter allows: races show at once."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def test_keeps_the_last_values_and_drops_the_oldest() -> None:
    cache: Recent[str, int] = Recent(2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("a", 10)  # replacing a value keeps the others
    assert (cache.get("a"), cache.get("b")) == (10, 2)
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (None, 2, 3)


def test_an_unhashable_key_is_never_kept() -> None:
    cache: Recent[object, int] = Recent(2)
    cache.put(["not", "hashable"], 1)
    assert cache.get(["not", "hashable"]) is None


def test_threads_filling_a_full_cache_at_once_never_fail(eager_switching: None) -> None:
    cache: Recent[int, int] = Recent(16)
    errors: list[BaseException] = []

    def fill(base: int) -> None:
        try:
            for n in range(20_000):
                key = base + n % 64
                if cache.get(key) is None:
                    cache.put(key, n)
        except BaseException as exc:  # what the test is about
            errors.append(exc)

    threads = [threading.Thread(target=fill, args=(base,)) for base in (0, 7, 13)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
