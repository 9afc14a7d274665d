"""The Lua scripts of the Redis backend, read from the package's ``lua`` directory.

A script is one file, ``lua/<name>.lua``; the functions it calls are defined in library
files (``now_ms``, ``touch``, ``record_items``, ``finish_job``) that :func:`source` puts
in front of it, as :data:`SCRIPTS` lists. Redis runs the concatenation as one chunk.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

SCRIPTS: dict[str, tuple[str, ...]] = {
    # the job store
    "record_many": ("touch", "record_items"),
    "add_chunks": ("touch",),
    "close_job": ("touch", "record_items", "finish_job"),
    "halt": (),
    "cancel": (),
    "watch_unclaimed": ("now_ms",),
    "claim_chunk": ("now_ms", "touch"),
    "renew_chunk": ("now_ms",),
    "release_chunk": (),
    "defer_chunk": ("now_ms",),
    "finish_chunk": ("touch", "finish_job"),
    "reopen": ("touch", "record_items"),
    "reap": ("now_ms",),
    # the association slots
    "slot_acquire": ("now_ms",),
    "slot_renew": ("now_ms",),
    "slot_count": ("now_ms",),
    # interrupted submissions
    "hold_submission": ("now_ms",),
    "close_interrupted": ("now_ms", "finish_job"),
    # destinations that cannot be reached
    "destination_probe": (),
    "destination_failed": (),
    "add_wait": (),
    # storage commitment
    "record_commitment": (),
}
"""Every script by name, with the libraries put in front of it, in that order."""


@functools.cache
def _read(name: str) -> str:
    return (resources.files(__package__) / "lua" / f"{name}.lua").read_text(encoding="utf-8")


def source(name: str) -> str:
    """The Lua text of the script ``name`` (a key of :data:`SCRIPTS`) with its
    libraries; raises KeyError for an unknown name."""
    return "".join(_read(lib) for lib in (*SCRIPTS[name], name))


def register(client: Any, name: str) -> Any:
    """The script ``name`` registered on the redis-py ``client`` (run by EVALSHA, loaded
    again by the client when the server lost it)."""
    return client.register_script(source(name))
