"""Settings of the distributed sender: broker, expiry, leases, retries.

Built once by :func:`load_config` from, in increasing priority: the defaults below
(the same values the shipped ``config/dispatch.toml`` documents), a TOML file
(``path``, else ``$DISPATCH_CONFIG``), environment variables ``DISPATCH_<NAME>``
(``DISPATCH_BROKER_URL``, ``DISPATCH_LEASE_S``, ...) and explicit ``overrides`` (the
command line). This module is the only one of :mod:`dispatch.jobs` that reads the
environment.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from dispatch.errors import UsageError


@dataclass(frozen=True)
class JobsConfig:
    """Times are seconds."""

    broker_url: str = ""
    """Redis URL of the Celery broker; "" means no broker: jobs run in-process."""
    store_url: str = ""
    """Redis URL of the job records; "" means the broker's."""
    queue: str = "dispatch"
    """Celery queue of the send tasks."""
    broker_key_prefix: str = ""
    """kombu's ``global_keyprefix`` transport option: a prefix of every key the broker's
    Redis transport writes (queues, kombu's bookkeeping), for a Redis shared with other
    applications; "" means none. Every worker and submitter must use the same."""
    key_prefix: str = "dispatch"
    """Prefix of every Redis key of the job records, slots and leases."""
    job_ttl_s: float = 7 * 86400.0
    """Job records expire this long after the job's last activity."""
    result_expires_s: float = 86400.0
    """Celery's own task results (unused by the job records) expire after this."""
    lease_s: float = 10.0
    """Lease of a running chunk, of an association slot and of a submission while it
    scans; a dead worker's chunk is handed on, and its slot freed, this long after its
    last heartbeat, and a dead submitter's job closed as interrupted."""
    reaper_interval_s: float = 2.0
    """How often each worker looks for chunks whose lease ran out."""
    unclaimed_grace_s: float = 60.0
    """A chunk recorded this long ago that no worker has claimed, and whose task is
    neither queued nor taken by a worker, is sent again by the reaper (its submitter died
    before sending it). Only when the job records live in the broker's Redis."""
    visibility_timeout_s: float = 7200.0
    """Redis transport: an unacknowledged task is redelivered after this. Must exceed
    the longest task and the longest retry countdown."""
    retries: int = 3
    """Default number of retries of a chunk after transient failures."""
    retry_base_s: float = 2.0
    retry_cap_s: float = 300.0
    """Backoff: exponential from ``retry_base_s``, capped, full jitter."""
    chunk_files: int = 1000
    """Default maximum files per chunk (one task, one association)."""
    max_associations: int = 2
    """Default limit of simultaneous associations per destination."""
    slot_poll_cap_s: float = 2.0
    """Longest pause between two tries to take an association slot."""
    tls_key_password: str = field(default="", repr=False)
    """A worker's password of its TLS private key (secret: never in job records)."""
    identity_password: str = field(default="", repr=False)
    """A worker's user identity password, sent with a job's -usr (secret: never in job
    records; see :mod:`dispatch.jobs.secrets`)."""
    no_worker_notice_s: float = 30.0
    """A submit waiting for its job says once, after this long, that no worker has taken
    any of its tasks yet (and on which queue they wait)."""
    retry_for_s: float = 4 * 3600.0
    """Default of ``--retry-for``: how long a job waits out a destination it cannot reach
    (connection refused, reset or timed out, association rejected-transient) before the
    chunks waiting for it give up; not counted in ``retries``."""

    @property
    def redis_url(self) -> str:
        """Where the job records live."""
        return self.store_url or self.broker_url

    def check(self) -> JobsConfig:
        """Raise :class:`UsageError` for values that would lose or duplicate tasks."""
        if self.lease_s <= 0 or self.reaper_interval_s <= 0 or self.unclaimed_grace_s <= 0:
            raise UsageError("lease_s, reaper_interval_s and unclaimed_grace_s must be positive")
        if self.retry_cap_s + self.lease_s * 3 >= self.visibility_timeout_s:
            raise UsageError(
                "visibility_timeout_s must exceed retry_cap_s plus three leases: a retry"
                " countdown longer than the visibility timeout duplicates tasks"
            )
        if self.retry_for_s < 0:
            raise UsageError("retry_for_s must be >= 0")
        if self.retries < 0 or self.chunk_files < 1 or self.max_associations < 1:
            raise UsageError("retries must be >= 0, chunk_files and max_associations >= 1")
        for name in ("broker_url", "store_url"):
            url = getattr(self, name)
            scheme = url.partition("://")[0].lower() if "://" in url else url
            if url and scheme not in _REDIS_SCHEMES:
                raise UsageError(
                    f"{name} {scheme!r}: the broker and job records are Redis; give a"
                    " redis://, rediss:// or unix:// URL"
                )
        return self


_ENV_PREFIX = "DISPATCH_"
_REDIS_SCHEMES = ("redis", "rediss", "unix")
"""URL schemes of Redis (redis-py's); the job records need Redis, so the broker is it."""


def _coerce(name: str, kind: Any, value: Any) -> Any:
    try:
        if kind in (int, "int"):
            return int(value)
        if kind in (float, "float"):
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise UsageError(f"setting {name}: bad value {value!r}") from None


def load_config(
    path: str | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> JobsConfig:
    """Build the settings (see the module docstring for the order) and check them.

    Raises :class:`UsageError` for an unreadable file, an unknown setting or a bad value.
    """
    env = os.environ if environ is None else environ
    known = {f.name: f.type for f in fields(JobsConfig)}
    values: dict[str, Any] = {}
    file_path = path or env.get(f"{_ENV_PREFIX}CONFIG")
    if file_path:
        try:
            with open(file_path, "rb") as handle:
                data = tomllib.load(handle)
        except OSError as exc:
            raise UsageError(f"cannot read settings file {file_path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"bad settings file {file_path}: {exc}") from None
        section = data.get("dispatch", data)
        for name, value in section.items():
            if name not in known:
                raise UsageError(f"settings file {file_path}: unknown setting {name!r}")
            values[name] = value
    for name in known:
        env_value = env.get(_ENV_PREFIX + name.upper())
        if env_value is not None:
            values[name] = env_value
    for name, value in (overrides or {}).items():
        if name not in known:
            raise UsageError(f"unknown setting {name!r}")
        if value is not None:
            values[name] = value
    typed = {name: _coerce(name, known[name], value) for name, value in values.items()}
    return replace(JobsConfig(), **typed).check()
