"""Scanning the inputs of a job: read each file's meta header and the few attributes
needed, group the files by study, and cut the groups into chunks.

:func:`scan` + :func:`chunk` do it in two passes (all files, then all chunks);
:class:`Scanner` does it incrementally, yielding each chunk as soon as it is full, so
that sending can start while the scan goes on.

Files are read with :func:`~dispatch.dicomfile.read_info_and_stat`, which walks the data set
without decoding it (many files per second). A file that cannot be used is never
dropped silently: it lands in :attr:`ScanResult.problems` with its reason, as the
NOT_SENT outcome the job will report.

A file without a StudyInstanceUID is a group of its own, under the key
``no-study:<path>``: guessing which study it belongs to could file it under another
patient's study. Like any small study it may share a chunk (and so an association, as
every file of a storescu run does) with other small studies.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from dispatch.dicomfile import read_info_and_stat
from dispatch.errors import BadFile
from dispatch.jobs.model import Chunk, FileRef
from dispatch.outcome import FileOutcome, Outcome
from dispatch.settings import ReadMode
from dispatch.uids import is_storage_class

NO_STUDY_PREFIX = "no-study:"
QUIET_FILES = 256
"""A study none of whose files was among the last this many scanned is handed out."""
HOLD_CHUNKS = 2
"""At most this many chunks' worth of files (``max_files`` each) wait across studies."""
PACK_PARTS = 4
"""Studies of fewer than ``max_files / PACK_PARTS`` files are packed together."""


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


Found = tuple[str, FileRef, str]
"""A usable file as read: (study key, reference without its index, SOP class)."""


def read_files(
    inputs: Iterable[str | FileOutcome], read_mode: ReadMode, *, storage_only: bool = False
) -> Iterator[Found | FileOutcome]:
    """The first stage of :meth:`Scanner.items`: read each path of ``inputs`` once (a
    path given twice is read once), in order; an outcome (a problem found before) is
    passed on in its place. Yields what :func:`_read` finds; with ``storage_only``
    (``-R``) a file whose SOP class is not a known storage class is NOT_SENT, as
    storescu refuses it. Depends on nothing but its arguments, so it may run in another
    process (:mod:`dispatch.jobs.reader`)."""
    seen: set[str] = set()
    for item in inputs:
        if isinstance(item, FileOutcome):
            yield item
            continue
        if item in seen:
            continue
        seen.add(item)
        yield _read(item, read_mode, storage_only)


def _read(path: str, read_mode: ReadMode, storage_only: bool = False) -> Found | FileOutcome:
    """(study key, reference, SOP class) of a usable file, else its NOT_SENT outcome."""
    try:
        try:
            info, stat = read_info_and_stat(path, read_mode)
        except BadFile:
            # A path that cannot even be looked up is "cannot access file" (storescu's
            # words), whatever opening it said.
            os.stat(path)
            raise
    except FileNotFoundError:
        return FileOutcome(path, Outcome.NOT_SENT, reason="cannot access file")
    except OSError as exc:
        return FileOutcome(
            path, Outcome.NOT_SENT, reason=f"cannot access file: {exc.strerror or exc}"
        )
    except BadFile as exc:
        return FileOutcome(path, Outcome.NOT_SENT, reason=exc.reason)
    if storage_only and not is_storage_class(info.sop_class_uid):
        reason = f"unknown storage SOP class in file: {path}: {info.sop_class_uid}"
        return FileOutcome(path, Outcome.NOT_SENT, reason=reason)
    key = info.study_instance_uid or f"{NO_STUDY_PREFIX}{path}"
    # The info travels with the reference: the runner sends from it while the file's
    # size and modification time are unchanged, without reading the file again.
    return key, FileRef(path, stat.st_size, stat.st_mtime_ns, info=info), info.sop_class_uid


class Scanner:
    """The incremental scan: :meth:`items` reads the inputs one by one and yields each
    chunk as soon as it can, and each problem (a NOT_SENT outcome) as it is found.

    Files are grouped by study as in :func:`scan`. A study's pending files are handed
    out when any of these happens:

    - they reach ``max_files``;
    - the study has gone quiet: ``quiet_files`` files of other studies were scanned
      since its last one (studies stored one after the other go out whole, each as
      soon as the next few are under way);
    - more than ``hold_files`` files wait across all studies: the studies with the
      most pending files go out as they are. This bounds what the scan holds back when
      the inputs list the studies interleaved, and lets sending start early then too;
    - the inputs end: each study's remaining files go out.

    Files handed out become a chunk of their own, unless they are fewer than the pack
    size: such small studies (one or two images are common) are packed into one chunk,
    study after study, which goes out once it holds the pack size (or at the end). A
    task's fixed costs (a message, an association) then weigh on hundreds of files,
    not on one or two.

    The chunks fill the ``parallel`` associations the job may use: a chunk cut while
    ``n`` files have been scanned holds about ``n / parallel`` of them at most (a pack
    may go over by part of its last study, and a study of its own may be bigger), so
    that a small job is not sent by one association while others could help. The pack
    size is the smaller of ``pack_files`` and that share (at the end: of the files
    still pending); a study that reaches ``max_files`` goes out in pieces of that share
    when it is smaller; and studies are not handed out for going quiet before
    ``parallel * pack_files`` files were scanned (at most ``hold_files``), so that a job
    that small is cut once its scan ended, into even parts. With ``parallel`` 1 the
    sizes are ``pack_files`` and ``max_files``.

    A study may span several chunks, and a chunk may hold several small studies; no
    chunk holds more than ``max_files``, and a study of at most ``max_files`` is split
    only when the inputs interleave it with others beyond ``hold_files``. Chunk ids are
    ``c00001``, ``c00002``... in the order the chunks are yielded.
    """

    def __init__(
        self,
        max_files: int,
        read_mode: ReadMode = ReadMode.FILE,
        *,
        storage_only: bool = False,
        parallel: int = 1,
        quiet_files: int = QUIET_FILES,
        hold_files: int | None = None,
        pack_files: int | None = None,
    ) -> None:
        if max_files < 1:
            raise ValueError("max_files must be at least 1")
        self.max_files = max_files
        self.read_mode = read_mode
        self.storage_only = storage_only
        """-R: a file whose SOP class is not a known storage class is NOT_SENT."""
        self.parallel = max(1, parallel)
        self.quiet_files = max(1, quiet_files)
        self.hold_files = max(1, hold_files if hold_files is not None else HOLD_CHUNKS * max_files)
        packed = pack_files if pack_files is not None else max_files // PACK_PARTS
        self.pack_files = min(max(1, packed), max_files)
        self.warm_up = min(self.hold_files, self.parallel * self.pack_files)
        """Files scanned before studies are handed out for going quiet."""
        self._pending: dict[str, list[FileRef]] = {}
        self._last_seen: dict[str, int] = {}
        """Pending studies, least recently seen first: the scan count of their last file."""
        self._pack: list[FileRef] = []
        self._pack_studies: list[str] = []
        self._held = 0
        """Files pending in studies and in the pack."""
        self._share = self.max_files
        """The most files a chunk cut now may hold (see the class docstring)."""
        self._classes: dict[str, None] = {}
        self._count = 0
        self._ended = False

    @property
    def sop_classes(self) -> list[str]:
        """Every SOP class seen so far, first-seen order."""
        return list(self._classes)

    def ended(self) -> bool:
        """Whether the inputs have all been read: the chunks yielded from now on are
        the rest of every study, yielded one after the other without reading more."""
        return self._ended

    def pending(self) -> list[FileRef]:
        """The files scanned but not yet yielded in a chunk (when the caller stops
        early, e.g. the job halted)."""
        return [*self._pack, *(ref for refs in self._pending.values() for ref in refs)]

    def _set_share(self, files: int) -> None:
        """Chunks cut from now on share ``files`` among the parallel associations."""
        self._share = min(self.max_files, max(1, -(-files // self.parallel)))

    @property
    def _pack_size(self) -> int:
        return min(self.pack_files, self._share)

    def _chunk(self, studies: list[str], files: list[FileRef]) -> Chunk:
        self._held -= len(files)
        self._count += 1
        return Chunk(f"c{self._count:05d}", studies[0], tuple(files), len(studies))

    def _hand_out(self, key: str) -> Iterator[Chunk]:
        """The study's pending files as a chunk, or into the pack (and the pack out
        once it is full)."""
        count, pack_size = len(self._pending[key]), self._pack_size
        if count < pack_size and len(self._pack) + count > self.max_files:
            # The full pack first, while the study's files are still pending (a caller
            # that stops at this chunk records them from pending()).
            yield from self._pack_out()
        files = self._pending.pop(key)
        del self._last_seen[key]
        if len(files) >= pack_size:
            yield self._chunk([key], files)
            return
        self._pack += files
        self._pack_studies.append(key)
        if len(self._pack) >= pack_size:
            yield from self._pack_out()

    def _split_out(self, key: str) -> Iterator[Chunk]:
        """A study that reached ``max_files``: its first ``max_files`` files in chunks
        of the current share (even parts), the rest stays pending."""
        files = self._pending[key]
        part, rest = files[: self.max_files], files[self.max_files :]
        pieces = -(-len(part) // self._share)
        size = -(-len(part) // pieces)
        for start in range(0, len(part), size):
            # What is still pending stays in pending() until its chunk is yielded.
            self._pending[key] = part[start + size :] + rest
            yield self._chunk([key], part[start : start + size])
        if not rest:
            del self._pending[key]
            del self._last_seen[key]

    def _pack_out(self) -> Iterator[Chunk]:
        if self._pack:
            pack, studies = self._pack, self._pack_studies
            self._pack, self._pack_studies = [], []
            yield self._chunk(studies, pack)

    def items(self, inputs: Iterable[str | FileOutcome]) -> Iterator[Chunk | FileOutcome]:
        """Scan ``inputs`` (paths of files; an outcome is a problem found before, passed
        on in its place). A path given twice is scanned once."""
        return self.group(read_files(inputs, self.read_mode, storage_only=self.storage_only))

    def group(self, found: Iterable[Found | FileOutcome]) -> Iterator[Chunk | FileOutcome]:
        """The second stage of :meth:`items`: group what :func:`read_files` found into
        chunks, passing problems on."""
        usable = 0  # files found usable so far: the next one's index (for +II)
        pending, last_seen = self._pending, self._last_seen
        parallel, max_files = self.parallel, self.max_files
        for item in found:
            if isinstance(item, FileOutcome):
                yield item
                continue
            key, ref, sop_class = item
            # Not dataclasses.replace, which costs twice as much per file.
            ref = FileRef(ref.path, ref.size, ref.mtime_ns, usable, ref.info)
            usable += 1
            if parallel > 1:
                self._set_share(usable)
            self._classes.setdefault(sop_class, None)
            files = pending.setdefault(key, [])
            files.append(ref)
            self._held += 1
            # Moved to the end: the first key is then the study seen least recently.
            last_seen.pop(key, None)
            last_seen[key] = usable
            if len(files) > max_files or (len(files) == max_files and self._share == max_files):
                yield from self._split_out(key)
            if usable >= self.warm_up:
                oldest = next(iter(last_seen), None)
                while oldest is not None and usable - last_seen[oldest] >= self.quiet_files:
                    yield from self._hand_out(oldest)
                    oldest = next(iter(last_seen), None)
            while self._held > self.hold_files:
                if pending and len(self._pack) < self._pack_size:
                    yield from self._hand_out(max(pending, key=lambda k: len(pending[k])))
                else:
                    yield from self._pack_out()
        # The end: what is left shares the associations.
        self._ended = True
        if parallel > 1:
            self._set_share(self._held)
        while pending:
            yield from self._hand_out(next(iter(pending)))
        yield from self._pack_out()


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
