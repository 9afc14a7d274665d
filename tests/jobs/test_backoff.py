"""backoff_s: exponential growth, the cap, full jitter."""

from __future__ import annotations

import random

import pytest

from dispatch.jobs.backoff import backoff_s


def test_ceiling_doubles_up_to_the_cap() -> None:
    assert [backoff_s(n, 2.0, 20.0, jitter=False) for n in range(6)] == [2, 4, 8, 16, 20, 20]


def test_full_jitter_stays_within_zero_and_the_ceiling() -> None:
    rng = random.Random(7)
    waits = [backoff_s(3, 1.0, 100.0, rng=rng) for _ in range(500)]
    assert all(0.0 <= w <= 8.0 for w in waits)
    assert min(waits) < 1.0 and max(waits) > 7.0  # spread over the whole range


def test_huge_attempts_do_not_overflow() -> None:
    assert backoff_s(10_000, 1.0, 60.0, jitter=False) == 60.0


def test_negative_attempt_is_refused() -> None:
    with pytest.raises(ValueError):
        backoff_s(-1)
