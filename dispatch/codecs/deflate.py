"""Deflating a data set on the way out (Deflated Explicit VR Little Endian, PS3.5 A.5)."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator


def deflate(chunks: Iterable[bytes], level: int = 6) -> Iterator[bytes]:
    """The explicit VR little endian data set in ``chunks``, deflated (raw deflate, no
    zlib header, as the standard requires) at zlib ``level``; streams, bounded memory."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    for chunk in chunks:
        out = compressor.compress(chunk)
        if out:
            yield out
    yield compressor.flush()
