"""Turn the file and directory arguments of a send into the files to send, lazily.

storescu's rules, reproduced:

- arguments are taken in command-line order; a file argument is sent as given, whatever
  its name (``+sp`` does not filter it);
- a directory argument without ``+sd`` is skipped with the warning "ignoring directory
  because option --scan-directories is not set";
- with ``+sd`` a directory is listed in the order the file system returns its entries
  (DCMTK does not sort), hidden files included; with ``+r`` each subdirectory is
  scanned where it is met, depth first; ``+sp`` keeps the files whose base name matches
  the shell wildcard (case-sensitive, as POSIX ``fnmatch``); symbolic links are
  followed; entries that are neither regular files nor directories are left out;
- an argument that does not exist is a problem ("cannot access file") that the caller
  records as a file not sent (fatal in halt mode, skipped with ``-nh``).

Scanning uses :func:`os.scandir` and yields as it goes, so a directory of a million
files costs one ``readdir`` pass and no per-file ``stat`` on Linux.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from fnmatch import translate

__all__ = ["InputItem", "Problem", "expand_inputs"]


class Problem(StrEnum):
    """Why an argument yields nothing to send. The value is the message to show."""

    MISSING = "cannot access file"
    """The path does not exist (or cannot be stat'ed)."""
    DIRECTORY_NOT_SCANNED = "ignoring directory because option --scan-directories is not set"
    """A directory argument without ``+sd``: DCMTK warns and goes on."""
    UNREADABLE_DIRECTORY = "cannot read directory"
    """A directory (an argument or a subdirectory met with ``+r``) could not be listed."""


@dataclass(frozen=True, slots=True)
class InputItem:
    """One file to send, or one argument or directory that gives none, with the reason.

    ``problem`` is ``None`` for a file to send. Otherwise ``reason`` is the full message
    (the problem's text, plus the system's error text where there is one).
    """

    path: str
    problem: Problem | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        """True for a file to send."""
        return self.problem is None

    @property
    def reason(self) -> str:
        if self.problem is None:
            return ""
        return f"{self.problem.value}: {self.detail}" if self.detail else self.problem.value


def expand_inputs(
    paths: Iterable[str],
    scan_dirs: bool = False,
    pattern: str | None = None,
    recurse: bool = False,
    *,
    name_order: bool = False,
) -> Iterator[InputItem]:
    """Yield, in command-line order, an :class:`InputItem` per file to send or problem.

    ``paths`` are the file/directory arguments; ``scan_dirs`` is ``+sd``, ``pattern``
    ``+sp`` (matched against base names of files found by scanning only), ``recurse``
    ``+r``. Never raises for a bad path: problems come back as items.

    A scanned directory is listed in the order the file system gives (storescu's), or
    with ``name_order`` sorted by name: the files of one study, stored side by side
    under names that share a prefix, then come one after the other.
    """
    regex = re.compile(translate(pattern)) if pattern is not None else None
    for path in paths:
        try:
            is_dir = os.path.isdir(path)
            exists = is_dir or os.path.exists(path)
        except (OSError, ValueError):  # ValueError: an embedded NUL byte
            exists = is_dir = False
        if not exists:
            yield InputItem(path, Problem.MISSING)
        elif not is_dir:
            yield InputItem(path)
        elif not scan_dirs:
            yield InputItem(path, Problem.DIRECTORY_NOT_SCANNED)
        else:
            yield from _scan(path, regex, recurse, name_order)


def _scan(
    top: str, regex: re.Pattern[str] | None, recurse: bool, name_order: bool
) -> Iterator[InputItem]:
    """Depth-first walk in listing order (see :func:`expand_inputs`); subdirectories are
    entered where they appear."""
    # Directories already entered, by (device, inode): a symbolic link pointing back up
    # the tree would otherwise make the walk endless.
    seen: set[tuple[int, int]] = set()
    stack: list[Iterator[os.DirEntry[str]]] = []
    first = _open_dir(top, seen, name_order)
    if isinstance(first, InputItem):
        yield first
        return
    if first is not None:
        stack.append(first)
    while stack:
        try:
            entry = next(stack[-1], None)
        except OSError as exc:
            # The listing broke off half-way (a vanished directory, an I/O error).
            stack.pop()
            yield InputItem(exc.filename or top, Problem.UNREADABLE_DIRECTORY, exc.strerror or "")
            continue
        if entry is None:
            stack.pop()
            continue
        try:
            is_dir = entry.is_dir()
            is_file = not is_dir and entry.is_file()
        except OSError:
            continue
        if is_file:
            if regex is None or regex.match(entry.name):
                yield InputItem(entry.path)
        elif is_dir and recurse:
            opened = _open_dir(entry.path, seen, name_order)
            if isinstance(opened, InputItem):
                yield opened
            elif opened is not None:
                stack.append(opened)


def _open_dir(
    path: str, seen: set[tuple[int, int]], name_order: bool = False
) -> Iterator[os.DirEntry[str]] | InputItem | None:
    """An iterator over ``path``'s entries; a problem item if it cannot be listed; None
    when it was entered before (a link cycle)."""
    try:
        info = os.stat(path)
        key = (info.st_dev, info.st_ino)
        if key in seen:
            return None
        seen.add(key)
        scanner = os.scandir(path)
        if name_order:
            with scanner:
                return iter(sorted(scanner, key=_name))
        return _entries(scanner)
    except OSError as exc:
        return InputItem(path, Problem.UNREADABLE_DIRECTORY, exc.strerror or str(exc))


def _name(entry: os.DirEntry[str]) -> str:
    return entry.name


def _entries(scanner: os._ScandirIterator[str]) -> Iterator[os.DirEntry[str]]:
    # Closes the directory handle as soon as the listing is exhausted.
    with scanner:
        yield from scanner
