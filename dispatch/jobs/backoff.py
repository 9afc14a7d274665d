"""How long to wait before trying again: exponential backoff, with full jitter for a
chunk's retries, half fixed and half random for a destination that cannot be reached."""

from __future__ import annotations

import random


def backoff_s(
    attempt: int,
    base_s: float = 2.0,
    cap_s: float = 300.0,
    jitter: bool = True,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number ``attempt + 1`` (``attempt`` counts from 0).

    The ceiling grows as ``base_s * 2**attempt`` up to ``cap_s``; with ``jitter`` the
    wait is drawn uniformly from ``[0, ceiling]`` ("full jitter"), so that the chunks of
    a job that failed together do not come back together.
    """
    if attempt < 0:
        raise ValueError("attempt counts from 0")
    ceiling = min(cap_s, base_s * 2.0 ** min(attempt, 64))
    if not jitter:
        return ceiling
    return (rng or random).uniform(0.0, ceiling)


def wait_s(attempt: int, base_s: float, cap_s: float, fraction: float) -> float:
    """Seconds to wait before trying an unreachable destination again, after its
    ``attempt + 1``-th failure in a row (``attempt`` counts from 0).

    Half the ceiling of :func:`backoff_s` is fixed, the other half scaled by
    ``fraction`` (drawn uniformly from ``[0, 1)`` by the caller): never a retry at once,
    yet the waiting chunks of many jobs do not come back together. (The Redis job store
    repeats this rule in Lua.)
    """
    ceiling = backoff_s(attempt, base_s, cap_s, jitter=False)
    return ceiling / 2.0 * (1.0 + min(max(fraction, 0.0), 1.0))
