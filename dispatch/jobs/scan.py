"""Scanning the inputs of a job: read each file's meta header and the few attributes
needed, group the files by study, and cut the groups into chunks.

:func:`scan` + :func:`chunk` do it in two passes (all files, then all chunks);
:class:`Scanner` does it incrementally, yielding each chunk as soon as it is full, so
that sending can start while the scan goes on.

Files are read with :func:`~dispatch.dicomfile.read_info`, which walks the data set
without decoding it (many files per second). A file that cannot be used is never
dropped silently: it lands in :attr:`ScanResult.problems` with its reason, as the
NOT_SENT outcome the job will report.

A file without a StudyInstanceUID is grouped alone, under the key ``no-study:<path>``:
guessing which study it belongs to could mix patients on one association.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from dispatch.dicomfile import read_info
from dispatch.errors import BadFile
from dispatch.jobs.model import Chunk, FileRef
from dispatch.outcome import FileOutcome, Outcome
from dispatch.settings import ReadMode

NO_STUDY_PREFIX = "no-study:"


@dataclass
class ScanResult:
    """Usable files grouped by study (first-seen order), the problems, the SOP classes."""

    groups: dict[str, list[FileRef]] = field(default_factory=dict)
    problems: list[FileOutcome] = field(default_factory=list)
    sop_classes: list[str] = field(default_factory=list)
    """Every SOP class seen, first-seen order (for proposing only those, as ``-R``)."""

    @property
    def files(self) -> int:
        return sum(len(g) for g in self.groups.values())

    @property
    def bytes(self) -> int:
        return sum(f.size for g in self.groups.values() for f in g)


def scan(paths: Iterable[str], read_mode: ReadMode = ReadMode.FILE) -> ScanResult:
    """Read every path (files, not directories: the caller expands those) once.

    A path given twice is scanned once. Unreadable, non-DICOM or incomplete files
    become NOT_SENT problems with their reason.
    """
    result = ScanResult()
    seen: set[str] = set()
    classes: dict[str, None] = {}
    for path in paths:
        if path in seen:
            continue
        seen.add(path)
        found = _read(path, read_mode)
        if isinstance(found, FileOutcome):
            result.problems.append(found)
            continue
        key, ref, sop_class = found
        # The index in submission order: invented identities (+II) derive from it.
        ref = replace(ref, index=len(seen) - len(result.problems) - 1)
        result.groups.setdefault(key, []).append(ref)
        classes.setdefault(sop_class, None)
    result.sop_classes = list(classes)
    return result


def _read(path: str, read_mode: ReadMode) -> tuple[str, FileRef, str] | FileOutcome:
    """(study key, reference, SOP class) of a usable file, else its NOT_SENT outcome."""
    try:
        stat = os.stat(path)
        info = read_info(path, read_mode)
    except FileNotFoundError:
        return FileOutcome(path, Outcome.NOT_SENT, reason="cannot access file")
    except OSError as exc:
        return FileOutcome(
            path, Outcome.NOT_SENT, reason=f"cannot access file: {exc.strerror or exc}"
        )
    except BadFile as exc:
        return FileOutcome(path, Outcome.NOT_SENT, reason=exc.reason)
    key = info.study_instance_uid or f"{NO_STUDY_PREFIX}{path}"
    # The info travels with the reference: the runner sends from it while the file's
    # size and modification time are unchanged, without reading the file again.
    return key, FileRef(path, stat.st_size, stat.st_mtime_ns, info=info), info.sop_class_uid


class Scanner:
    """The incremental scan: :meth:`items` reads the inputs one by one and yields each
    chunk as soon as it can, and each problem (a NOT_SENT outcome) as it is found.

    Files are grouped by study as in :func:`scan`. A study's pending files become a
    chunk when they reach ``max_files``; with ``linger_s``, when no chunk was yielded
    for that long, the study with the most pending files is yielded as it is (so that
    senders start early even when the directory lists the studies interleaved); at the
    end, each study's remaining files are one last chunk. A study may thus span several
    chunks, each of at most ``max_files``. Chunk ids are ``c00001``, ``c00002``... in the
    order the chunks are yielded.
    """

    def __init__(
        self,
        max_files: int,
        read_mode: ReadMode = ReadMode.FILE,
        *,
        linger_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_files < 1:
            raise ValueError("max_files must be at least 1")
        self.max_files = max_files
        self.read_mode = read_mode
        self.linger_s = linger_s
        self._clock = clock
        self._pending: dict[str, list[FileRef]] = {}
        self._classes: dict[str, None] = {}
        self._count = 0

    @property
    def sop_classes(self) -> list[str]:
        """Every SOP class seen so far, first-seen order."""
        return list(self._classes)

    def pending(self) -> list[FileRef]:
        """The files scanned but not yet yielded in a chunk (when the caller stops
        early, e.g. the job halted)."""
        return [ref for refs in self._pending.values() for ref in refs]

    def _emit(self, key: str) -> Chunk:
        files = self._pending.pop(key)
        self._count += 1
        return Chunk(f"c{self._count:05d}", key, tuple(files))

    def items(self, inputs: Iterable[str | FileOutcome]) -> Iterator[Chunk | FileOutcome]:
        """Scan ``inputs`` (paths of files; an outcome is a problem found before, passed
        on in its place). A path given twice is scanned once."""
        seen: set[str] = set()
        usable = 0  # files found usable so far: the next one's index (for +II)
        linger = self.linger_s
        last = self._clock()
        for item in inputs:
            if isinstance(item, FileOutcome):
                yield item
                continue
            if item in seen:
                continue
            seen.add(item)
            found = _read(item, self.read_mode)
            if isinstance(found, FileOutcome):
                yield found
                continue
            key, ref, sop_class = found
            ref = replace(ref, index=usable)
            usable += 1
            self._classes.setdefault(sop_class, None)
            files = self._pending.setdefault(key, [])
            files.append(ref)
            if len(files) >= self.max_files:
                yield self._emit(key)
                last = self._clock()
            elif linger is not None and self._clock() - last >= linger:
                yield self._emit(max(self._pending, key=lambda k: len(self._pending[k])))
                last = self._clock()
        while self._pending:
            yield self._emit(next(iter(self._pending)))


def chunk(groups: Mapping[str, Sequence[FileRef]], max_files: int) -> list[Chunk]:
    """Cut each study's files into chunks of at most ``max_files``, in order.

    Chunk ids are ``c00001``, ``c00002``... in order of the groups, so a job's chunks
    go out study by study.
    """
    if max_files < 1:
        raise ValueError("max_files must be at least 1")
    chunks: list[Chunk] = []
    for study_uid, files in groups.items():
        for start in range(0, len(files), max_files):
            part = tuple(files[start : start + max_files])
            chunks.append(Chunk(f"c{len(chunks) + 1:05d}", study_uid, part))
    return chunks
