"""Scanning the inputs of a job: read each file's meta header and the few attributes
needed, group the files by study, and cut the groups into chunks.

Files are read with :func:`~dispatch.dicomfile.read_info`, which walks the data set
without decoding it (many files per second). A file that cannot be used is never
dropped silently: it lands in :attr:`ScanResult.problems` with its reason, as the
NOT_SENT outcome the job will report.

A file without a StudyInstanceUID is grouped alone, under the key ``no-study:<path>``:
guessing which study it belongs to could mix patients on one association.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

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
        try:
            stat = os.stat(path)
            info = read_info(path, read_mode)
        except FileNotFoundError:
            result.problems.append(FileOutcome(path, Outcome.NOT_SENT, reason="cannot access file"))
            continue
        except OSError as exc:
            reason = f"cannot access file: {exc.strerror or exc}"
            result.problems.append(FileOutcome(path, Outcome.NOT_SENT, reason=reason))
            continue
        except BadFile as exc:
            result.problems.append(FileOutcome(path, Outcome.NOT_SENT, reason=exc.reason))
            continue
        key = info.study_instance_uid or f"{NO_STUDY_PREFIX}{path}"
        ref = FileRef(path, stat.st_size, stat.st_mtime_ns)
        result.groups.setdefault(key, []).append(ref)
        classes.setdefault(info.sop_class_uid, None)
    result.sop_classes = list(classes)
    return result


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
