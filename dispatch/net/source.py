"""Where the bytes of a data set to send come from."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import BinaryIO


@dataclass(frozen=True)
class DataSource:
    """Where a data set's bytes come from: one of

    - a byte range of an open file (``fd``), sent zero-copy on plain TCP;
    - bytes in memory (``data``), a small file read whole;
    - an iterable of byte chunks (``chunks``), a converted data set.
    """

    path: str
    fd: int = -1
    offset: int = 0
    length: int = 0
    chunks: Iterable[bytes] | None = None
    data: bytes | memoryview | None = None
    progress: Callable[[int], None] | None = None
    """Called with the data-set bytes sent so far, as they go: after each PDU sent
    zero-copy, after each batch otherwise (never for a data set that fits one PDU).
    It must be quick and must not raise."""

    @classmethod
    def file_range(cls, path: str, file: BinaryIO | int, offset: int, length: int) -> DataSource:
        """``length`` bytes from ``offset`` of ``file`` (an open file or its
        descriptor), which must stay open until the data set has been sent."""
        return cls(path, file if isinstance(file, int) else file.fileno(), offset, length)

    @classmethod
    def memory(cls, path: str, data: bytes | memoryview) -> DataSource:
        """The data set ``data``, already read (from ``path``)."""
        return cls(path, data=data)

    @classmethod
    def stream(cls, path: str, chunks: Iterable[bytes]) -> DataSource:
        """The data set as the concatenation of ``chunks`` (read once, while sending)."""
        return cls(path, chunks=chunks)
