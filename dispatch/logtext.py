"""Text from outside (file names above all) made safe for a log line.

A file name may hold a newline or other control characters; written as it is, it would
end the log line and could forge the next one. :func:`printable` escapes what cannot be
shown, as the JSON report does (``\\n``, ``\\t``, ``\\u001b``...), and leaves printable
text (the usual case) as it is, so log lines stay those of storescu.
:func:`counted` writes a count with its noun ("1 task", "3 tasks").
"""

from __future__ import annotations

__all__ = ["counted", "printable"]

_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def printable(text: object) -> str:
    """``text`` (a path, or a message that holds one) with every character that is not
    printable escaped; backslashes are escaped too when anything was."""
    shown = str(text)
    if shown.isprintable():
        return shown
    return "".join(c if c.isprintable() and c != "\\" else _escape(c) for c in shown)


def _escape(char: str) -> str:
    short = _SHORT.get(char)
    if short is not None:
        return short
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def counted(count: int, noun: str, plural: str = "") -> str:
    """``count`` and ``noun``, the noun plural unless the count is 1 (``plural``, by
    default the noun with an "s")."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"
