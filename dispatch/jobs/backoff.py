"""How long to wait before trying a chunk again: exponential backoff with full jitter."""

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
