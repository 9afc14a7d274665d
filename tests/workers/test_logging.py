"""A worker's log lines: none per file at the default level."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from celery.signals import after_setup_logger  # type: ignore[import-untyped]

import workers.app  # noqa: F401  (connects the worker's logging set-up)
from workers.app import PER_FILE_LOGGER


@pytest.fixture
def per_file_logger() -> Iterator[logging.Logger]:
    logger, root = logging.getLogger(PER_FILE_LOGGER), logging.getLogger()
    levels = logger.level, root.level
    yield logger
    logger.setLevel(levels[0])
    root.setLevel(levels[1])


@pytest.mark.parametrize(
    ("worker_level", "shown"),
    [(logging.INFO, False), (logging.WARNING, False), (logging.DEBUG, True)],
)
def test_the_lines_of_each_file_show_only_at_debug_level(
    per_file_logger: logging.Logger, worker_level: int, shown: bool
) -> None:
    # What Celery does when it sets up a worker's logging.
    logging.getLogger().setLevel(worker_level)
    after_setup_logger.send(
        sender=None,
        logger=logging.getLogger(),
        loglevel=worker_level,
        logfile=None,
        format="",
        colorize=False,
    )
    assert per_file_logger.isEnabledFor(logging.INFO) is shown
