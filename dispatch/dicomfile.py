"""Fast inspection of one input file: what to send, in which syntax, from which offset.

:func:`read_info` reads the file meta information (if any) and walks the top-level
elements of the data set without building a pydicom ``Dataset``: values are skipped by
their length, and only undefined-length values (sequences, items, encapsulated pixel
data) are descended into. That walk finds a truncated file before anything is sent, and
picks up the few attributes the sender needs on the way.

The SOP Class and SOP Instance UIDs are taken from the data set, (0008,0016) and
(0008,0018), as DCMTK's storescu does: a file whose meta header names them but whose data
set lacks them is refused. The meta header only tells where the data set starts and how
it is encoded.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from stat import S_ISCHR, S_ISDIR, S_ISFIFO, S_ISREG, S_ISSOCK

from dispatch.errors import BadFile
from dispatch.settings import ReadMode
from dispatch.uids import DEFLATED_LE, EXPLICIT_BE, EXPLICIT_LE, IMPLICIT_LE

#: Explicit VRs whose header has two reserved bytes and a 4-byte length.
LONG_LENGTH_VRS: frozenset[bytes] = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
#: Explicit VRs with a 2-byte length. Any VR in neither set is non-standard; DCMTK then
#: assumes the 4-byte length form, and so do we.
SHORT_LENGTH_VRS: frozenset[bytes] = frozenset(
    {
        b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO",
        b"LT", b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US",
    }
)  # fmt: skip
STANDARD_VRS: frozenset[bytes] = LONG_LENGTH_VRS | SHORT_LENGTH_VRS

UNDEFINED_LENGTH = 0xFFFFFFFF
ITEM = 0xE000
ITEM_DELIMITER = 0xE00D
SEQUENCE_DELIMITER = 0xE0DD

_HEAD_SIZE = 1 << 16
"""Bytes read at once: a tiny file in one read, the meta and first elements of a big one."""
_MAX_DEPTH = 64
"""Deeper nesting of sequences than this is treated as a corrupt file, not recursed into."""
_MAX_CAPTURED = 1024
"""Longest value of a captured attribute (UIDs are at most 64 bytes)."""

SOP_CLASS_UID = 0x00080016
SOP_INSTANCE_UID = 0x00080018
STUDY_INSTANCE_UID = 0x0020000D
_TRAILING_PADDING = 0xFFFCFFFC
_CAPTURED = frozenset({SOP_CLASS_UID, SOP_INSTANCE_UID, STUDY_INSTANCE_UID})

_LE_EXPLICIT = struct.Struct("<HH2sH")
_BE_EXPLICIT = struct.Struct(">HH2sH")
_LE_IMPLICIT = struct.Struct("<HHI")
_BE_IMPLICIT = struct.Struct(">HHI")
_LE_U32 = struct.Struct("<I")
_LE_U16_PAIR = struct.Struct("<HH")
_BE_U16_PAIR = struct.Struct(">HH")
_BE_U32 = struct.Struct(">I")


@dataclass(frozen=True)
class DicomFileInfo:
    """What the sender needs to know about one input file.

    The UIDs have their trailing padding removed, NULs and spaces alike, as DCMTK reads
    them: old modalities pad UI values with a space, which is no part of the UID.
    ``space_padded`` lists the tags of those UIDs (SOP Class, SOP Instance, Study
    Instance) whose value in the file ends in a space: storescu sends them NUL-padded,
    so the sender rewrites them (see :func:`uid_value`). ``transfer_syntax`` is the
    syntax of the data set as stored: from the meta header, or detected when the meta
    header has none.
    The data set to send occupies bytes ``[dataset_offset, dataset_offset +
    dataset_length)``: up to the end of the file, less a Data Set Trailing Padding
    element (FFFC,FFFC) that ends an uncompressed data set (storescu leaves it out too).
    """

    path: str
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    dataset_offset: int
    dataset_length: int
    has_meta: bool
    study_instance_uid: str | None
    space_padded: tuple[int, ...] = ()


def uid_value(uid: str) -> bytes:
    """``uid`` as a UI value: NUL-padded to an even length."""
    raw = uid.encode("ascii")
    return raw + b"\0" if len(raw) % 2 else raw


class _Malformed(Exception):
    """Internal: the data set cannot be parsed; ``truncated`` tells which way."""

    def __init__(self, reason: str, truncated: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.truncated = truncated


def _truncated(reason: str) -> _Malformed:
    return _Malformed(reason, truncated=True)


def _bad(reason: str) -> _Malformed:
    return _Malformed(reason, truncated=False)


class _FileSource:
    """Random access to a file through one buffer, refilled with ``pread`` on demand."""

    __slots__ = ("base", "buf", "fd", "size")

    def __init__(self, fd: int, size: int, head: bytes) -> None:
        self.fd = fd
        self.size: int | None = size
        self.buf = head
        self.base = 0

    def window(self, pos: int, need: int) -> None:
        """Make ``buf`` hold ``need`` bytes from ``pos``, or all that is left of the file."""
        off = pos - self.base
        if off >= 0 and off + need <= len(self.buf):
            return
        self.buf = os.pread(self.fd, max(need, _HEAD_SIZE), pos)
        self.base = pos

    def reaches(self, pos: int) -> bool:
        """Whether the stream is at least ``pos`` bytes long."""
        assert self.size is not None
        return pos <= self.size


class _InflateSource:
    """Forward-only view of a deflated data set, inflated piecewise in bounded memory."""

    __slots__ = ("_decomp", "_done", "_fd", "base", "buf", "size")

    def __init__(self, fd: int, start: int) -> None:
        self._fd = fd
        self._decomp = zlib.decompressobj(-zlib.MAX_WBITS)
        self._done = False
        self.buf = b""
        self.base = 0
        self.size: int | None = None
        os.lseek(fd, start, os.SEEK_SET)

    def _more(self) -> None:
        decomp = self._decomp
        try:
            if decomp.unconsumed_tail:
                out = decomp.decompress(decomp.unconsumed_tail, _HEAD_SIZE)
            else:
                chunk = os.read(self._fd, _HEAD_SIZE)
                if chunk:
                    out = decomp.decompress(chunk, _HEAD_SIZE)
                else:
                    out = decomp.flush()
                    self._done = True
        except zlib.error as exc:
            raise _bad(f"corrupt deflated data set ({exc})") from None
        self.buf += out
        if self._done or decomp.eof:
            self.size = self.base + len(self.buf)

    def window(self, pos: int, need: int) -> None:
        """Drop what lies before ``pos``; inflate until ``need`` bytes follow it or the end."""
        if pos > self.base:
            self.reaches(pos)
            self.buf = self.buf[pos - self.base :]
            self.base = pos
        while len(self.buf) < need and self.size is None:
            self._more()

    def reaches(self, pos: int) -> bool:
        """Whether the inflated stream is at least ``pos`` bytes long (discards up to it)."""
        while self.base + len(self.buf) < pos and self.size is None:
            # Everything buffered lies before ``pos``: nobody will look at it again.
            self.base += len(self.buf)
            self.buf = b""
            self._more()
        return self.base + len(self.buf) >= pos


_Source = _FileSource | _InflateSource


class _Found:
    """What the top-level walk picks up on its way."""

    __slots__ = ("padding_at", "values")

    def __init__(self) -> None:
        self.values: dict[int, bytes] = {}
        """Values of the captured attributes, by tag."""
        self.padding_at: int | None = None
        """Where a top-level Data Set Trailing Padding (FFFC,FFFC) element starts."""


def uses_long_length(vr: bytes) -> bool:
    """Whether an explicit VR header has the 4-byte length form.

    True for the standard long VRs; an unknown VR of two capital letters is taken for a
    future VR with a 4-byte length and any other unknown VR (garbage) has a 2-byte
    length, as DCMTK reads them.
    """
    return vr in LONG_LENGTH_VRS or (
        vr not in SHORT_LENGTH_VRS and 65 <= vr[0] <= 90 and 65 <= vr[1] <= 90
    )


def _walk(
    src: _Source,
    pos: int,
    explicit: bool,
    little: bool,
    depth: int,
    found: _Found | None,
) -> int:
    """Walk the elements of a data set (top level) or of an item (``depth`` > 0).

    Returns the position after the data set, or after the item delimiter of an item.
    ``found`` collects what the top level holds of interest.
    """
    if depth > _MAX_DEPTH:
        raise _bad("sequences nested too deeply")
    header = (_LE_EXPLICIT if little else _BE_EXPLICIT) if explicit else None
    implicit = _LE_IMPLICIT if little else _BE_IMPLICIT
    u32 = _LE_U32 if little else _BE_U32
    limit = src.size
    buf = src.buf
    base = src.base
    while True:
        start = pos
        off = pos - base
        if len(buf) - off < 12:
            src.window(pos, 12)
            buf, base = src.buf, src.base
            off = pos - base
            avail = len(buf) - off
            if avail == 0:
                if depth:
                    raise _truncated("item without delimiter at end of file")
                return pos
            if avail < 8:
                raise _truncated(f"{avail} stray bytes at end of file")
        vr = None
        if header is not None:
            group, elem, vr, length = header.unpack_from(buf, off)
            if group == 0xFFFE:
                length = u32.unpack_from(buf, off + 4)[0]
                pos += 8
            elif not uses_long_length(vr):
                pos += 8
            else:
                if len(buf) - off < 12:
                    raise _truncated(f"header of ({group:04X},{elem:04X}) cut short")
                length = u32.unpack_from(buf, off + 8)[0]
                pos += 12
        else:
            group, elem, length = implicit.unpack_from(buf, off)
            pos += 8
        if group == 0xFFFE:
            if depth and elem == ITEM_DELIMITER:
                return pos
            raise _bad(f"unexpected ({group:04X},{elem:04X}) among data elements")
        if length == UNDEFINED_LENGTH:
            if vr == b"UN":
                # PS3.5 6.2.2: an undefined-length UN holds a sequence in implicit VR LE.
                pos = _walk_items(src, pos, False, True, depth + 1)
            else:
                pos = _walk_items(src, pos, explicit, little, depth + 1)
            limit = src.size
            buf, base = src.buf, src.base
            continue
        end = pos + length
        if limit is not None:
            if end > limit:
                raise _truncated(
                    f"({group:04X},{elem:04X}) has {length} bytes, only {limit - pos} left in file"
                )
        elif not src.reaches(end):
            raise _truncated(f"({group:04X},{elem:04X}) has {length} bytes, more than left")
        if found is not None:
            tag = group << 16 | elem
            if tag in _CAPTURED and length <= _MAX_CAPTURED:
                src.window(pos, length)
                buf, base = src.buf, src.base
                found.values[tag] = bytes(buf[pos - base : end - base])
            elif tag == _TRAILING_PADDING:
                found.padding_at = start
        pos = end


def _walk_head_le(src: _FileSource, head: bytes, pos: int, found: _Found) -> int:
    """:func:`_walk` at the top level of an explicit VR little endian data set, fast for
    the elements that lie in ``head`` (the file's first bytes, read from byte 0): the
    whole of a small file.

    Same results and errors as :func:`_walk`: the loop handles the element headers of
    the standard VRs with a defined length in place, descends into undefined-length
    values with :func:`_walk_items`, and hands anything else (an item tag among the
    elements, a non-standard VR, a value running past ``head``, its last few bytes) to
    :func:`_walk` from the start of that element.
    """
    buf = head
    size = len(buf)
    unpack = _LE_EXPLICIT.unpack_from
    u32 = _LE_U32.unpack_from
    short_vrs = SHORT_LENGTH_VRS
    long_vrs = LONG_LENGTH_VRS
    values = found.values
    while size - pos >= 12:
        group, elem, vr, length = unpack(buf, pos)
        if group == 0xFFFE:
            break
        if vr in short_vrs:
            value = pos + 8
        elif vr in long_vrs:
            length = u32(buf, pos + 8)[0]
            value = pos + 12
            if length == UNDEFINED_LENGTH:
                # PS3.5 6.2.2: an undefined-length UN holds a sequence in implicit VR LE.
                pos = _walk_items(src, value, vr != b"UN", True, 1)
                continue
        else:
            break
        end = value + length
        if end > size:
            break
        if group == 0x0008 or group == 0x0020:
            tag = group << 16 | elem
            if tag in _CAPTURED and length <= _MAX_CAPTURED:
                values[tag] = buf[value:end]
        elif group == 0xFFFC and elem == 0xFFFC:
            found.padding_at = pos
        pos = end
    if pos == src.size:
        return pos  # the end of the data set, as :func:`_walk` would find it
    return _walk(src, pos, True, True, 0, found)


def _walk_items(src: _Source, pos: int, explicit: bool, little: bool, depth: int) -> int:
    """Walk the items of an undefined-length value; return the position after its end."""
    if depth > _MAX_DEPTH:
        raise _bad("sequences nested too deeply")
    header = _LE_IMPLICIT if little else _BE_IMPLICIT
    while True:
        src.window(pos, 8)
        off = pos - src.base
        if len(src.buf) - off < 8:
            raise _truncated("sequence without delimiter at end of file")
        group, elem, length = header.unpack_from(src.buf, off)
        pos += 8
        if group != 0xFFFE or elem not in (ITEM, SEQUENCE_DELIMITER):
            raise _bad(f"({group:04X},{elem:04X}) where a sequence item was expected")
        if elem == SEQUENCE_DELIMITER:
            return pos
        if length == UNDEFINED_LENGTH:
            pos = _walk(src, pos, explicit, little, depth, None)
        else:
            pos += length
            if not src.reaches(pos):
                raise _truncated(f"item of {length} bytes runs past the end of file")


def detect_syntax(head: bytes | memoryview) -> str:
    """Guess the transfer syntax of a bare data set from its first element header.

    Explicit VR when bytes 4-5 are a standard VR; then big endian when the group read as
    little endian is implausibly large (0x0008 big endian reads as 0x0800), as pydicom
    does. Implicit VR is always little endian.
    """
    if len(head) < 6 or bytes(head[4:6]) not in STANDARD_VRS:
        return IMPLICIT_LE
    group_le = head[0] | head[1] << 8
    group_be = head[0] << 8 | head[1]
    if group_le >= 0x0400 and group_be < group_le:
        return EXPLICIT_BE
    return EXPLICIT_LE


def _uid(raw: bytes) -> str:
    # Spaces too, leading ones included: DCMTK removes them from any UI value it reads.
    return raw.strip(b"\0 ").decode("latin-1")


def _read_meta(src: _FileSource, head: bytes, start: int) -> tuple[int, str | None]:
    """Parse the group 0002 elements from ``start``; return (data set offset, syntax).

    The explicit VR elements that lie in ``head`` (the file's first bytes, read from
    byte 0: the whole meta of nearly every file) are parsed in place; the rest, and a
    meta group in implicit VR, by :func:`_read_meta_from`, with the same results and
    errors.
    """
    if head[start + 4 : start + 6] not in STANDARD_VRS:
        return _read_meta_from(src, start, None)
    buf = head
    size = len(buf)
    unpack = _LE_EXPLICIT.unpack_from
    u32 = _LE_U32.unpack_from
    short_vrs = SHORT_LENGTH_VRS
    pos = start
    syntax: str | None = None
    while size - pos >= 12 and buf[pos] == 2 and buf[pos + 1] == 0:
        _group, elem, vr, length = unpack(buf, pos)
        if vr in short_vrs:
            value = pos + 8
        else:
            length = u32(buf, pos + 8)[0]
            value = pos + 12
            if length == UNDEFINED_LENGTH:
                break
        end = value + length
        if end > size:
            break
        if elem == 0x0010:
            syntax = buf[value:end].rstrip(b"\0 ").decode("latin-1") or None
        pos = end
    return _read_meta_from(src, pos, syntax, explicit=True)


def _read_meta_from(
    src: _FileSource, pos: int, syntax: str | None, *, explicit: bool | None = None
) -> tuple[int, str | None]:
    """:func:`_read_meta` from ``pos`` with ``syntax`` found so far; ``explicit``
    None: decided by the VR field of the element at ``pos``."""
    if explicit is None:
        src.window(pos, 6)
        explicit = bytes(src.buf[pos - src.base + 4 : pos - src.base + 6]) in STANDARD_VRS
    while True:
        src.window(pos, 12)
        buf, off = src.buf, pos - src.base
        if len(buf) - off < 8 or buf[off : off + 2] != b"\x02\x00":
            return pos, syntax
        if explicit:
            group, elem, vr, length = _LE_EXPLICIT.unpack_from(buf, off)
            if vr in SHORT_LENGTH_VRS:
                pos += 8
            else:
                if len(buf) - off < 12:
                    raise _truncated("file meta information cut short")
                length = _LE_U32.unpack_from(buf, off + 8)[0]
                pos += 12
        else:
            group, elem, length = _LE_IMPLICIT.unpack_from(buf, off)
            pos += 8
        if length == UNDEFINED_LENGTH:
            raise _bad(f"undefined length in file meta information ({group:04X},{elem:04X})")
        if not src.reaches(pos + length):
            raise _truncated("file meta information cut short")
        if elem == 0x0010:
            src.window(pos, length)
            raw = bytes(src.buf[pos - src.base : pos - src.base + length])
            syntax = raw.rstrip(b"\0 ").decode("latin-1") or None
        pos += length


def read_info(path: str, mode: ReadMode = ReadMode.FILE) -> DicomFileInfo:
    """Inspect ``path`` and return what sending it needs.

    ``mode`` follows storescu: ``FILE`` reads a Part-10 file (preamble + meta, or a meta
    group at byte 0), or else a bare data set; ``FILE_ONLY`` refuses a file without meta
    header; ``DATASET`` reads a bare data set from byte 0, even if the file has a
    preamble (which then makes it unreadable, as with DCMTK's ``-f``).

    Raises :class:`BadFile` with a one-line reason when the file cannot be opened, is
    not a regular file (a FIFO is refused, never waited on), is not DICOM, is
    truncated, or lacks the SOP Class or SOP Instance UID.
    """
    return read_info_and_data(path, mode)[0]


def read_info_and_data(
    path: str, mode: ReadMode = ReadMode.FILE
) -> tuple[DicomFileInfo, bytes | None]:
    """:func:`read_info`, and the whole file when that read it in one piece (a file of
    at most :data:`WHOLE_READ_MAX` bytes; None for a bigger one).

    A sender sends the data set from those bytes instead of reading the file again.
    They are for the file about to be sent: a :class:`DicomFileInfo` kept for later
    never carries them.
    """
    info, data, _stat = _read_opened(path, mode)
    return info, data


def read_info_and_stat(
    path: str, mode: ReadMode = ReadMode.FILE
) -> tuple[DicomFileInfo, os.stat_result]:
    """:func:`read_info`, and the status of the file it read (size, modification time),
    taken from the open file: no second look-up of the path."""
    info, _data, stat = _read_opened(path, mode)
    return info, stat


def _read_opened(path: str, mode: ReadMode) -> tuple[DicomFileInfo, bytes | None, os.stat_result]:
    """What :func:`read_info_and_data` and :func:`read_info_and_stat` return."""
    try:
        # O_NONBLOCK: a FIFO (or a device) opens at once, to be refused below, where a
        # plain open would wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise BadFile(path, f"cannot open: {exc.strerror}") from None
    try:
        try:
            stat = os.fstat(fd)
            if not S_ISREG(stat.st_mode):
                raise BadFile(path, _not_regular(stat.st_mode))
            head = os.read(fd, _HEAD_SIZE)
            size = len(head) if len(head) < _HEAD_SIZE else os.fstat(fd).st_size
        except OSError as exc:
            raise BadFile(path, f"cannot read: {exc.strerror}") from None
        info = _inspect(path, fd, size, head, mode)
    finally:
        os.close(fd)
    return info, head if size == len(head) else None, stat


WHOLE_READ_MAX = _HEAD_SIZE
"""Files up to this size are read whole by :func:`read_info_and_data`."""


def _not_regular(mode: int) -> str:
    """Why a file of ``mode`` (not a regular file) cannot be sent."""
    if S_ISDIR(mode):
        return "is a directory"
    kinds = ((S_ISFIFO, "a FIFO"), (S_ISSOCK, "a socket"), (S_ISCHR, "a character device"))
    kind = next((name for test, name in kinds if test(mode)), "a device")
    return f"not a regular file: {kind}"


NOT_DICOM = "not a DICOM file (no file meta information, and no data set at its start)"
"""The reason for a file with neither a meta header nor the start of a data set that
could hold a SOP Class UID: a text file, an image of another format..."""


def _starts_data_set(head: bytes, size: int, syntax: str) -> bool:
    """Whether a file without meta header may be a bare data set: at least one element
    header long, its first tag no later than the SOP Class UID (0008,0016), which a
    data set to send must hold (the tags of a data set ascend). The first two bytes of
    a text file, read as a group number, are far beyond that."""
    if size < 8 or len(head) < 4:
        return False
    pair = _BE_U16_PAIR if syntax == EXPLICIT_BE else _LE_U16_PAIR
    group, element = pair.unpack_from(head)
    tag: int = group << 16 | element
    return tag <= SOP_CLASS_UID


def _inspect(path: str, fd: int, size: int, head: bytes, mode: ReadMode) -> DicomFileInfo:
    if size == 0:
        raise BadFile(path, "bad DICOM file: empty file")
    src = _FileSource(fd, size, head)
    has_meta = False
    offset = 0
    syntax: str | None = None
    try:
        if mode is not ReadMode.DATASET:
            if head[128:132] == b"DICM":
                has_meta = True
                offset, syntax = _read_meta(src, head, 132)
            elif head[:2] == b"\x02\x00" and head[4:6] in STANDARD_VRS:
                has_meta = True
                offset, syntax = _read_meta(src, head, 0)
            elif mode is ReadMode.FILE_ONLY:
                raise BadFile(path, "file meta information header missing")
    except _Malformed as exc:
        kind = "truncated file" if exc.truncated else "bad DICOM file"
        raise BadFile(path, f"{kind}: {exc.reason}") from None
    if syntax is None:
        src.window(offset, 6)
        syntax = detect_syntax(src.buf[offset - src.base : offset - src.base + 6])
    if not has_meta and head[128:132] != b"DICM" and not _starts_data_set(head, size, syntax):
        # (A Part-10 file read with -f is DICOM, read the wrong way: "bad DICOM file".)
        raise BadFile(path, NOT_DICOM)
    found = _Found()
    try:
        if syntax == DEFLATED_LE:
            _walk(_InflateSource(fd, offset), 0, True, True, 0, found)
        else:
            explicit = syntax != IMPLICIT_LE
            little = syntax != EXPLICIT_BE
            if explicit and little:
                _walk_head_le(src, head, offset, found)
            else:
                _walk(src, offset, explicit, little, 0, found)
    except _Malformed as exc:
        if exc.truncated and (has_meta or found.values):
            raise BadFile(path, f"truncated data set: {exc.reason}") from None
        raise BadFile(path, f"bad DICOM file: {exc.reason}") from None
    except OSError as exc:
        raise BadFile(path, f"cannot read: {exc.strerror}") from None
    sop_class = _uid(found.values.get(SOP_CLASS_UID, b""))
    if not sop_class:
        raise BadFile(path, "no SOP Class UID in data set")
    sop_instance = _uid(found.values.get(SOP_INSTANCE_UID, b""))
    if not sop_instance:
        raise BadFile(path, "no SOP Instance UID in data set")
    study = found.values.get(STUDY_INSTANCE_UID)
    padded = tuple(
        tag
        for tag in (SOP_CLASS_UID, SOP_INSTANCE_UID, STUDY_INSTANCE_UID)
        if b" " in found.values.get(tag, b"")
    )
    end = size
    if found.padding_at is not None and syntax != DEFLATED_LE:
        # storescu does not send the trailing padding: the data set ends before it.
        end = found.padding_at
    return DicomFileInfo(
        path=path,
        sop_class_uid=sop_class,
        sop_instance_uid=sop_instance,
        transfer_syntax=syntax,
        dataset_offset=offset,
        dataset_length=end - offset,
        has_meta=has_meta,
        study_instance_uid=None if study is None else _uid(study) or None,
        space_padded=padded,
    )
