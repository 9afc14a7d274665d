"""The Redis job store's former home: it is :mod:`dispatch.jobs.backends.redis` now."""

from __future__ import annotations

from dispatch.jobs.backends.redis import RedisJobStore

__all__ = ["RedisJobStore"]
