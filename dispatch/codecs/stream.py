"""The one entry for sending a data set in another form than the file holds it.

:func:`open_converted` chooses how: pixel data decoded or encoded
(:mod:`dispatch.codecs.convert`), or the data set re-encoded element by element between
the uncompressed syntaxes (:mod:`dispatch.codecs.transcode`), deflated on the way when
the target is Deflated Explicit VR Little Endian (:mod:`dispatch.codecs.deflate`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import BinaryIO

from dispatch.codecs import needs_codec
from dispatch.dicomfile import DicomFileInfo
from dispatch.uids import DEFLATED_LE, EXPLICIT_LE

__all__ = ["open_converted"]

log = logging.getLogger("dispatch.send")


def open_converted(
    handle: BinaryIO,
    info: DicomFileInfo,
    target: str,
    deflate_level: int,
    replace: Mapping[int, bytes] | None = None,
    old_vrs: bool = False,
) -> Iterator[bytes]:
    """The data set of ``info`` (open as ``handle``) as ``target`` encodes it, in
    chunks, when the target is not the file's syntax or elements are rewritten.
    ``replace`` and ``old_vrs``: see :func:`~dispatch.codecs.transcode.convert_dataset`
    (invented identities, ``-u``).

    Raises :class:`~dispatch.errors.BadFile` before anything is read from the stream
    when pixel data cannot be converted; a problem met later is a ``BadFile`` raised
    from the stream."""
    source = info.transfer_syntax
    if needs_codec(source, target):
        from dispatch.codecs.convert import open_conversion

        log.info("Converting pixel data: %s -> %s", source, target)
        return open_conversion(
            handle, info, target, deflate_level, replace=replace, old_vrs=old_vrs
        )
    from dispatch.codecs.deflate import deflate
    from dispatch.codecs.transcode import convert_dataset

    if target != source:
        log.info("Converting transfer syntax: %s -> %s", source, target)
    plain_target = EXPLICIT_LE if target == DEFLATED_LE else target
    chunks = convert_dataset(
        handle,
        info.dataset_offset,
        info.dataset_length,
        source,
        plain_target,
        replace=replace,
        old_vrs=old_vrs,
    )
    return deflate(chunks, deflate_level) if target == DEFLATED_LE else chunks
