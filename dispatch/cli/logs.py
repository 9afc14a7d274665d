"""Log output in DCMTK's style: one line per message, prefixed with the level's letter
(``F:``, ``E:``, ``W:``, ``I:``, ``D:``, ``T:``)."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dispatch.cli.logconfig import LogConfig

TRACE = 5

LEVELS = {
    "fatal": logging.CRITICAL,
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": TRACE,
}

_LETTERS = {logging.CRITICAL: "F", logging.ERROR: "E", logging.WARNING: "W", logging.INFO: "I"}


class _DcmtkFormatter(logging.Formatter):
    """``L: message``; a message of several lines (an association dump) gets the prefix
    on each line, as DCMTK writes it."""

    def format(self, record: logging.LogRecord) -> str:
        letter = _LETTERS.get(record.levelno, "D" if record.levelno >= logging.DEBUG else "T")
        message = record.getMessage()
        if "\n" not in message:
            return f"{letter}: {message}"
        return "\n".join(f"{letter}: {line}" for line in message.split("\n"))


def configure_for(level_name: str, config: LogConfig | None) -> logging.Logger:
    """:func:`configure` at ``level_name``, or as a ``-lc`` file says (``config``).
    Raises :class:`~dispatch.cli.cmdline.CommandLineError` for a log file that cannot
    be opened."""
    if config is None:
        return configure(level_name)
    from dispatch.cli.logconfig import apply_log_config

    return apply_log_config(config)


def configure(level_name: str) -> logging.Logger:
    """Send the ``dispatch`` loggers to standard error at ``level_name`` (a key of
    :data:`LEVELS`) and return the command's logger."""
    logging.addLevelName(TRACE, "TRACE")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_DcmtkFormatter())
    root = logging.getLogger("dispatch")
    for old in root.handlers:
        old.close()  # a log file of an earlier -lc configuration
    root.handlers[:] = [handler]
    root.setLevel(LEVELS.get(level_name, logging.WARNING))
    root.propagate = False
    return root
