"""Log output in DCMTK's style: one line per message, prefixed with the level's letter
(``F:``, ``E:``, ``W:``, ``I:``, ``D:``, ``T:``)."""

from __future__ import annotations

import logging
import sys

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


def configure(level_name: str) -> logging.Logger:
    """Send the ``dispatch`` loggers to standard error at ``level_name`` (a key of
    :data:`LEVELS`) and return the command's logger."""
    logging.addLevelName(TRACE, "TRACE")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_DcmtkFormatter())
    root = logging.getLogger("dispatch")
    root.handlers[:] = [handler]
    root.setLevel(LEVELS.get(level_name, logging.WARNING))
    root.propagate = False
    return root
