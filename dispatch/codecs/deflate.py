"""Deflating a data set on the way out (Deflated Explicit VR Little Endian, PS3.5 A.5)."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator


def deflate(chunks: Iterable[bytes], level: int = 6) -> Iterator[bytes]:
    """The explicit VR little endian data set in ``chunks``, deflated (raw deflate, no
    zlib header, as the standard requires) at zlib ``level``; streams, bounded memory.

    A stream of odd length gets one 0x00 byte after its end, as DCMTK (and pydicom)
    pad it: a value on the wire has an even length, and an inflater stops at the end
    of the stream."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    total = 0
    for chunk in chunks:
        out = compressor.compress(chunk)
        if out:
            total += len(out)
            yield out
    last = compressor.flush()
    total += len(last)
    yield last + b"\0" if total % 2 else last
