"""Streaming conversion of a data set between the uncompressed transfer syntaxes.

:func:`convert_dataset` re-encodes a data set element by element as it reads it, so
memory stays bounded by the chunk size whatever the size of the file: large values are
copied (and byte-swapped when the endianness changes) one chunk at a time.

Sequences and items are always written with undefined length and delimiters, because a
header's size differs between implicit and explicit VR and defined lengths would have to
be recomputed. Group length elements (gggg,0000) and Data Set Trailing Padding
(FFFC,FFFC) are dropped, as DCMTK does when it converts. VRs missing from an implicit VR
source come from pydicom's data dictionary (private and unknown tags become UN; an
unknown tag with undefined length is a sequence).

The same walk rewrites on the way (see :func:`convert_dataset`): new values for some
top-level attributes (invented identities) and, with ``old_vrs``, the VRs introduced
after 1993 written as OB, their values in little endian order whatever the target
syntax (a big endian source is swapped by the original VR's width), as DCMTK 3.6.7 on
a little endian host does with ``-u``. When only top-level values change and the
encoding stays the same (also for a compressed file sent as it is), everything after
the last tag to replace is copied as it is: pixel data, compressed or not, is never
walked.
"""

from __future__ import annotations

import array
import struct
import zlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, BinaryIO

from dispatch.dicomfile import (
    ITEM,
    ITEM_DELIMITER,
    SEQUENCE_DELIMITER,
    SHORT_LENGTH_VRS,
    STANDARD_VRS,
    UNDEFINED_LENGTH,
    uses_long_length,
)
from dispatch.errors import BadFile
from dispatch.uids import DEFLATED_LE, EXPLICIT_BE, EXPLICIT_LE, IMPLICIT_LE, UNCOMPRESSED

STREAM_NAME = "<stream>"
"""The path reported in :class:`BadFile` for malformed input (the caller knows the file)."""

_MAX_DEPTH = 64
_READ_SIZE = 1 << 16

#: Byte width by which a value of each VR is swapped when the endianness changes.
#: AT is a pair of 2-byte numbers; VRs not listed (strings, OB, UN) are never swapped.
_SWAP_WIDTH: dict[bytes, int] = {
    b"OW": 2, b"US": 2, b"SS": 2, b"AT": 2,
    b"UL": 4, b"SL": 4, b"FL": 4, b"OL": 4, b"OF": 4,
    b"FD": 8, b"OD": 8, b"UV": 8, b"SV": 8, b"OV": 8,
}  # fmt: skip
_ARRAY_CODE = {2: "H", 4: "I", 8: "Q"}

_PIXEL_REPRESENTATION = 0x00280103
_TRAILING_PADDING = 0xFFFCFFFC

#: The VRs DCMTK's ``-u`` (dcmDisableGenerationOfNewVRs) writes as OB in explicit VR:
#: what DCMTK 3.6.7's storescu puts on the wire.
OLD_VR_MAP: dict[bytes, bytes] = {
    vr: b"OB" for vr in (b"UN", b"UT", b"UC", b"UR", b"OD", b"OF", b"OL", b"OV", b"SV", b"UV")
}


class _Malformed(Exception):
    """Internal: the input cannot be parsed."""


def _swap(data: bytes | bytearray | memoryview, width: int) -> bytes:
    """Reverse the byte order of each ``width``-byte word; a ragged tail is kept as is."""
    whole = len(data) - len(data) % width
    words = array.array(_ARRAY_CODE[width], data[:whole])
    words.byteswap()
    if whole == len(data):
        return words.tobytes()
    return words.tobytes() + bytes(data[whole:])


class _Reader:
    """Sequential reader of the data set bytes, from the file or inflated on the fly."""

    def __init__(self, f: BinaryIO, length: int, inflate: bool) -> None:
        self._f = f
        self._left = length
        self._decomp = zlib.decompressobj(-zlib.MAX_WBITS) if inflate else None
        self._buf = b""
        self._i = 0
        self.pos = 0
        """Bytes of the (inflated) data set consumed so far."""

    def _raw(self, want: int) -> bytes:
        """At least one and about ``want`` more bytes of data set, or b"" at its end."""
        decomp = self._decomp
        if decomp is None:
            if self._left <= 0:
                return b""
            data = self._f.read(min(max(want, _READ_SIZE), self._left))
            self._left -= len(data)
            if not data:
                self._left = 0
            return data
        want = max(want, _READ_SIZE)
        try:
            while True:
                if decomp.eof:
                    return b""  # bytes after the end of the deflate stream are ignored
                if decomp.unconsumed_tail:
                    out = decomp.decompress(decomp.unconsumed_tail, want)
                elif self._left <= 0:
                    return decomp.flush()
                else:
                    chunk = self._f.read(min(_READ_SIZE, self._left))
                    self._left -= len(chunk)
                    if not chunk:
                        self._left = 0
                        continue
                    out = decomp.decompress(chunk, want)
                if out:
                    return out
        except zlib.error as exc:
            raise _Malformed(f"corrupt deflated data set ({exc})") from None

    def _fill(self, n: int) -> bool:
        """Make ``n`` bytes available at the cursor; False when the data set ends first."""
        have = len(self._buf) - self._i
        parts = [self._buf[self._i :]] if have else []
        while have < n:
            data = self._raw(n - have)
            if not data:
                self._buf = b"".join(parts)
                self._i = 0
                return False
            parts.append(data)
            have += len(data)
        self._buf = b"".join(parts)
        self._i = 0
        return True

    def peek(self, n: int) -> bytes | None:
        """The next ``n`` bytes without consuming them; None when fewer are left."""
        if self._i + n > len(self._buf) and not self._fill(n):
            return None
        return self._buf[self._i : self._i + n]

    def rest(self, size: int) -> Iterator[bytes]:
        """Everything left of the data set, as it is, in pieces of about ``size``."""
        if self._i < len(self._buf):
            yield self._buf[self._i :]
        self._buf, self._i = b"", 0
        while data := self._raw(size):
            yield data

    def at_end(self) -> bool:
        """Whether the whole data set has been consumed."""
        return self._i >= len(self._buf) and not self._fill(1)

    def take(self, n: int) -> bytes:
        """Exactly ``n`` bytes (``n`` small: headers and short values)."""
        i = self._i
        if i + n > len(self._buf) and not self._fill(n):
            raise _Malformed(f"data set ends {n - (len(self._buf) - self._i)} bytes early")
        i = self._i
        self._i = i + n
        self.pos += n
        return self._buf[i : i + n]

    def unpack(self, fmt: struct.Struct) -> tuple[Any, ...]:
        """Read and unpack one header of ``fmt.size`` bytes."""
        i = self._i
        n = fmt.size
        if i + n > len(self._buf):
            if not self._fill(n):
                raise _Malformed("data set ends inside an element header")
            i = 0
        self._i = i + n
        self.pos += n
        return fmt.unpack_from(self._buf, i)

    def pieces(self, n: int, size: int, align: int) -> Iterator[bytes]:
        """``n`` bytes as consecutive pieces of at most ``size`` bytes, each a multiple
        of ``align`` bytes but the last (so that no word straddles two pieces)."""
        while n > 0:
            have = len(self._buf) - self._i
            if have == 0 or (have < align and have < n):
                rest = self._buf[self._i :]
                data = self._raw(min(n, size) - len(rest))
                if not data:
                    raise _Malformed(f"data set ends {n} bytes early inside a value")
                self._buf = rest + data if rest else data
                self._i = 0
                continue
            k = min(have, n, size)
            if k < n:
                k -= k % align
            i = self._i
            self._i = i + k
            self.pos += k
            n -= k
            yield self._buf[i : i + k]


class _Encoding:
    """Header layouts of one transfer syntax (explicit or implicit VR, endianness)."""

    def __init__(self, explicit: bool, little: bool) -> None:
        e = "<" if little else ">"
        self.explicit = explicit
        self.little = little
        self.implicit = struct.Struct(e + "HHI")
        self.short = struct.Struct(e + "HH2sH")
        self.long = struct.Struct(e + "HH2s2xI")
        self.u32 = struct.Struct(e + "I")
        self.u16 = struct.Struct(e + "H")


_IMPLICIT_LE = _Encoding(False, True)
_ENCODINGS = {
    IMPLICIT_LE: _IMPLICIT_LE,
    EXPLICIT_LE: _Encoding(True, True),
    EXPLICIT_BE: _Encoding(True, False),
    DEFLATED_LE: _Encoding(True, True),
}


class _Converter:
    """Re-encodes one data set; state shared across nesting levels lives here."""

    def __init__(
        self,
        reader: _Reader,
        src: _Encoding,
        dst: _Encoding,
        chunk_size: int,
        replace: Mapping[int, bytes] | None = None,
        vr_map: Mapping[bytes, bytes] | None = None,
        copy_after: int | None = None,
    ) -> None:
        self.reader = reader
        self.src = src
        self.dst = dst
        self.chunk_size = chunk_size
        self.out = bytearray()
        self.pixel_rep = 0
        self._dictionary_vr: Callable[[int], str] | None = None
        self.replace = replace or {}
        """New values of top-level elements, by tag (only where present)."""
        self.vr_map = vr_map or {}
        """Output VRs replaced by others (explicit VR output only)."""
        self.copy_after = copy_after
        """Top-level elements after this tag are copied as they are (same encoding)."""
        self._tag_header = struct.Struct(("<" if src.little else ">") + "HH")

    # -- VRs for implicit sources ---------------------------------------------------
    def _lookup(self, tag: int) -> str:
        if self._dictionary_vr is None:
            from pydicom.datadict import dictionary_VR

            self._dictionary_vr = dictionary_VR
        try:
            return self._dictionary_vr(tag)
        except KeyError:
            return "UN"

    def implicit_vr(self, tag: int, length: int) -> bytes:
        """The VR an implicit-VR element gets in an explicit output, as pydicom picks it."""
        group, elem = tag >> 16, tag & 0xFFFF
        if group & 1:
            # Private: creators are LO; the rest is unknown without a private dictionary.
            return b"LO" if 0x0010 <= elem <= 0x00FF else b"UN"
        if length == UNDEFINED_LENGTH:
            return b"SQ"
        vr = self._lookup(tag)
        if " or " not in vr:
            return b"UN" if vr == "NONE" else vr.encode()
        if vr == "OB or OW":
            return b"OW"  # implicit VR pixel, overlay and waveform data are OW
        if length > 2 and "OW" in vr:
            return b"OW"  # LUT data with more than one entry
        if "SS" in vr and self.pixel_rep == 1:
            return b"SS"
        return b"US"

    # -- output --------------------------------------------------------------------
    def _header(self, group: int, elem: int, vr: bytes, length: int) -> None:
        dst = self.dst
        if not dst.explicit:
            self.out += dst.implicit.pack(group, elem, length)
        elif vr in SHORT_LENGTH_VRS:
            self.out += dst.short.pack(group, elem, vr, length)
        else:
            self.out += dst.long.pack(group, elem, vr, length)

    def _marker(self, elem: int) -> None:
        self.out += self.dst.implicit.pack(0xFFFE, elem, UNDEFINED_LENGTH if elem == ITEM else 0)

    def _flush(self) -> Iterator[bytes]:
        if len(self.out) >= self.chunk_size:
            yield bytes(self.out)
            self.out.clear()

    # -- input ---------------------------------------------------------------------
    def dataset(self, depth: int, end: int | None) -> Iterator[bytes]:
        """Convert elements until ``end`` (a defined-length item), an item delimiter
        (``end`` None at ``depth`` > 0), or the end of the data set (top level)."""
        if depth > _MAX_DEPTH:
            raise _Malformed("sequences nested too deeply")
        reader, src = self.reader, self.src
        while True:
            if end is not None:
                if reader.pos >= end:
                    if reader.pos > end:
                        raise _Malformed("element runs past the end of its item")
                    return
            elif depth == 0:
                if self.copy_after is not None:
                    head = reader.peek(4)
                    if head is None:
                        return
                    group, elem = self._tag_header.unpack(head)
                    if (group << 16 | elem) > self.copy_after:
                        yield from self._copy_rest()
                        return
                elif reader.at_end():
                    return
            vr: bytes | None = None
            if src.explicit:
                group, elem, raw_vr, length = reader.unpack(src.short)
                if group == 0xFFFE:
                    # Items and delimiters have no VR: those 2 bytes belong to the length.
                    length = src.u32.unpack(raw_vr + src.u16.pack(length))[0]
                else:
                    if uses_long_length(raw_vr):
                        length = src.u32.unpack(reader.take(4))[0]
                    vr = raw_vr if raw_vr in STANDARD_VRS else b"UN"
            else:
                group, elem, length = reader.unpack(src.implicit)
            if group == 0xFFFE:
                if elem == ITEM_DELIMITER and depth and end is None:
                    return
                raise _Malformed(f"unexpected ({group:04X},{elem:04X}) among data elements")
            tag = group << 16 | elem
            if vr is None:
                if self.dst.explicit:
                    vr = self.implicit_vr(tag, length)
                else:
                    # Implicit to implicit (inside a UN sequence): only sequences matter.
                    vr = b"SQ" if length == UNDEFINED_LENGTH else b"UN"
            if vr == b"SQ" or (vr == b"UN" and length == UNDEFINED_LENGTH):
                # PS3.5 6.2.2 (CP-246): an undefined-length UN is a sequence encoded in
                # implicit VR LE; like DCMTK, write it as SQ in the target syntax.
                item_src = self.src if vr == b"SQ" else _IMPLICIT_LE
                self._header(group, elem, b"SQ", UNDEFINED_LENGTH)
                yield from self._items(length, depth, item_src, self.dst)
            elif length == UNDEFINED_LENGTH:
                yield from self._undefined(group, elem, vr)
            elif elem == 0 or tag == _TRAILING_PADDING:
                # Group lengths would be wrong after conversion; DCMTK drops both.
                for _ in reader.pieces(length, self.chunk_size, 1):
                    pass
            else:
                out_vr = vr
                width: int | None = None
                if self.dst.explicit:
                    if vr in SHORT_LENGTH_VRS and length > 0xFFFF:
                        out_vr = b"UN"  # too long for a 2-byte length field
                    if out_vr in self.vr_map:
                        # As DCMTK (on a little endian host): the value goes out in the
                        # order DCMTK holds it in, little endian, whatever the target.
                        width = _SWAP_WIDTH.get(out_vr, 1) if not self.src.little else 1
                        out_vr = self.vr_map[out_vr]
                new = self.replace.get(tag) if depth == 0 else None
                if new is not None:
                    for _ in reader.pieces(length, self.chunk_size, 1):
                        pass  # the old value
                    self._header(group, elem, out_vr, len(new))
                    self.out += new
                else:
                    self._header(group, elem, out_vr, length)
                    yield from self._value(tag, out_vr, length, width)
            yield from self._flush()

    def _copy_rest(self) -> Iterator[bytes]:
        """The rest of the data set as it is (the encoding does not change)."""
        if self.out:
            yield bytes(self.out)
            self.out.clear()
        yield from self.reader.rest(self.chunk_size)

    def _value(self, tag: int, vr: bytes, length: int, width: int | None = None) -> Iterator[bytes]:
        """Copy a value of ``length`` bytes, swapped per ``vr`` if the endianness changes
        (or by ``width`` bytes when given)."""
        if width is None:
            width = _SWAP_WIDTH.get(vr, 1) if self.src.little != self.dst.little else 1
        reader = self.reader
        if length <= self.chunk_size:
            data = reader.take(length)
            if tag == _PIXEL_REPRESENTATION and length == 2:
                self.pixel_rep = self.src.u16.unpack(data)[0]
            self.out += _swap(data, width) if width > 1 else data
            return
        if self.out:
            yield bytes(self.out)
            self.out.clear()
        for piece in reader.pieces(length, self.chunk_size - self.chunk_size % 8, width):
            yield _swap(piece, width) if width > 1 else piece

    def _undefined(self, group: int, elem: int, vr: bytes) -> Iterator[bytes]:
        """An undefined-length value that is neither SQ nor UN: encapsulated data."""
        if not self.dst.explicit:
            raise _Malformed(
                f"encapsulated ({group:04X},{elem:04X}) cannot be written in implicit VR"
            )
        self._header(group, elem, vr, UNDEFINED_LENGTH)
        reader, src = self.reader, self.src
        while True:
            item_group, item_elem, length = reader.unpack(src.implicit)
            if item_group != 0xFFFE or item_elem not in (ITEM, SEQUENCE_DELIMITER):
                raise _Malformed("bad item in encapsulated data")
            if item_elem == SEQUENCE_DELIMITER:
                self.out += self.dst.implicit.pack(0xFFFE, SEQUENCE_DELIMITER, 0)
                return
            if length == UNDEFINED_LENGTH:
                raise _Malformed("fragment of undefined length in encapsulated data")
            self.out += self.dst.implicit.pack(0xFFFE, ITEM, length)
            yield from self._value(0xFFFEE000, b"OB", length)  # fragments are bytes
            yield from self._flush()

    def _items(self, length: int, depth: int, src: _Encoding, dst: _Encoding) -> Iterator[bytes]:
        """The items of a sequence of ``length`` (maybe undefined), read in ``src``."""
        reader = self.reader
        end = None if length == UNDEFINED_LENGTH else reader.pos + length
        saved = self.src, self.dst
        self.src, self.dst = src, dst
        try:
            while True:
                if end is not None and reader.pos >= end:
                    if reader.pos > end:
                        raise _Malformed("item runs past the end of its sequence")
                    break
                group, elem, item_length = reader.unpack(src.implicit)
                if group != 0xFFFE or elem not in (ITEM, SEQUENCE_DELIMITER):
                    raise _Malformed(f"({group:04X},{elem:04X}) where an item was expected")
                if elem == SEQUENCE_DELIMITER:
                    if end is not None:
                        raise _Malformed("sequence delimiter in a defined-length sequence")
                    break
                self._marker(ITEM)
                item_end = None if item_length == UNDEFINED_LENGTH else reader.pos + item_length
                yield from self.dataset(depth + 1, item_end)
                self._marker(ITEM_DELIMITER)
        finally:
            self.src, self.dst = saved
        self._marker(SEQUENCE_DELIMITER)


def convert_dataset(
    f: BinaryIO,
    offset: int,
    length: int,
    source_ts: str,
    target_ts: str,
    chunk_size: int = 1 << 20,
    *,
    replace: Mapping[int, bytes] | None = None,
    old_vrs: bool = False,
) -> Iterator[bytes]:
    """Yield the data set at ``f[offset:offset + length]`` re-encoded in ``target_ts``.

    ``source_ts`` is one of the uncompressed syntaxes or deflated explicit VR little
    endian; ``target_ts`` one of implicit VR LE, explicit VR LE, explicit VR BE. A
    compressed (encapsulated) syntax is allowed as both source and target: the data set
    is then rewritten (below) and its pixel data passed on as it is. Memory stays within
    a few ``chunk_size`` whatever the data set's size; pieces yielded are at most about
    ``chunk_size`` long (never empty).

    Rewriting: ``replace`` maps top-level tags to new values, encoded and padded to an
    even length by the caller; an element of such a tag that the data set holds (with
    a defined length, not a sequence) is written with the new value, and nothing is
    added for a tag it lacks. With ``old_vrs`` and an explicit VR target, the VRs of
    :data:`OLD_VR_MAP` are written as OB (storescu's ``-u``). Same syntaxes (not
    deflated) and nothing to rewrite: the bytes are yielded unchanged.

    Raises :class:`ValueError` for a syntax outside that set (a compressed source with
    another target is the caller's error) and :class:`BadFile` (path ``"<stream>"``)
    for malformed input.
    """
    if chunk_size < 64:
        raise ValueError("chunk_size must be at least 64 bytes")
    if source_ts == target_ts and source_ts not in _ENCODINGS:
        # Every encapsulated syntax encodes its data set in explicit VR little endian.
        src = dst = _ENCODINGS[EXPLICIT_LE]
    elif source_ts not in _ENCODINGS or target_ts not in UNCOMPRESSED:
        raise ValueError(f"cannot convert from {source_ts} to {target_ts}")
    else:
        src, dst = _ENCODINGS[source_ts], _ENCODINGS[target_ts]
    vr_map = OLD_VR_MAP if old_vrs and dst.explicit else None
    f.seek(offset)
    if source_ts == target_ts and not replace and not vr_map:
        return _copy(f, length, chunk_size)
    reader = _Reader(f, length, inflate=source_ts == DEFLATED_LE)
    same = src.explicit == dst.explicit and src.little == dst.little
    copy_after = max(replace) if replace and same and vr_map is None else None
    converter = _Converter(reader, src, dst, chunk_size, replace, vr_map, copy_after)
    return _run(converter)


def _copy(f: BinaryIO, length: int, chunk_size: int) -> Iterator[bytes]:
    while length > 0:
        data = f.read(min(chunk_size, length))
        if not data:
            raise BadFile(STREAM_NAME, "data set ends early")
        length -= len(data)
        yield data


def _run(converter: _Converter) -> Iterator[bytes]:
    try:
        yield from converter.dataset(0, None)
    except _Malformed as exc:
        raise BadFile(STREAM_NAME, f"cannot convert: {exc}") from None
    if converter.out:
        yield bytes(converter.out)
