"""redis-py's and kombu's errors translated into the project's, in one place.

The Redis job store, slots and task publisher run each of their commands inside
:func:`map_broker_errors` (:func:`broker_command` wraps a method in it), so their callers
catch :class:`~dispatch.errors.BrokerUnavailable` and never need to know which library
talks to Redis. Neither library is imported here: an exception of one is only ever raised
once it is loaded, so their classes are looked up among the loaded modules.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from dispatch.errors import BrokerUnavailable

_LIBRARY_ERRORS = (("redis.exceptions", "RedisError"), ("kombu.exceptions", "KombuError"))
"""The base class of every error of redis-py and of kombu."""

P = ParamSpec("P")
R = TypeVar("R")


def _loaded_error_classes() -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = []
    for module_name, class_name in _LIBRARY_ERRORS:
        module = sys.modules.get(module_name)
        if module is not None:
            found.append(getattr(module, class_name))
    return tuple(found)


def is_broker_error(exc: BaseException) -> bool:
    """True when redis-py or kombu raised ``exc``."""
    return isinstance(exc, _loaded_error_classes())


@contextmanager
def map_broker_errors() -> Iterator[None]:
    """Raise :class:`~dispatch.errors.BrokerUnavailable` (from the original) for any
    error of redis-py or kombu raised inside; other exceptions pass unchanged."""
    try:
        yield
    except Exception as exc:
        if is_broker_error(exc):
            raise BrokerUnavailable(_one_line(exc)) from exc
        raise


def broker_command(method: Callable[P, R]) -> Callable[P, R]:
    """``method`` run inside :func:`map_broker_errors` (not for generators: their body
    runs after the call returns)."""

    @functools.wraps(method)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with map_broker_errors():
            return method(*args, **kwargs)

    return run


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
