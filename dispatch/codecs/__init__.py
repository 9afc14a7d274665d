"""Which transfer syntax conversions the sender can make, and at what cost to the pixels.

This module is the capability table only: it imports no codec, so that choosing a
presentation context stays cheap. :mod:`dispatch.codecs.pixels` holds the codecs and
:mod:`dispatch.codecs.convert` the streaming conversion of a data set.

A conversion is :attr:`Fidelity.LOSSLESS` when every pixel value the source decodes to
reaches the peer unchanged (decompressing, even a lossy JPEG, is lossless in this sense:
nothing more is lost), :attr:`Fidelity.LOSSY` when the target syntax's encoder discards
information (JPEG baseline, JPEG 2000 irreversible, JPEG-LS near-lossless); lossy
conversions are made only when the user allowed them.
"""

from __future__ import annotations

from enum import Enum
from importlib.util import find_spec

from dispatch.uids import (
    DEFLATED_LE,
    JPEG_2000,
    JPEG_2000_LOSSLESS,
    JPEG_BASELINE,
    JPEG_EXTENDED,
    JPEG_LOSSLESS_SV1,
    JPEG_LS_LOSSLESS,
    JPEG_LS_NEAR_LOSSLESS,
    RLE_LOSSLESS,
    UNCOMPRESSED,
)

JPEG_LOSSLESS = "1.2.840.10008.1.2.4.57"
"""JPEG Lossless, Non-Hierarchical (Process 14): decoded, never produced."""


class Fidelity(Enum):
    """What a conversion does to the pixel values."""

    SAME = "same"
    """No conversion: the file's own syntax."""
    LOSSLESS = "lossless"
    LOSSY = "lossy"


NATIVE: frozenset[str] = UNCOMPRESSED | {DEFLATED_LE}
"""Syntaxes with native (not encapsulated) pixel data."""

DECODABLE: frozenset[str] = frozenset(
    {
        JPEG_BASELINE,
        JPEG_EXTENDED,
        JPEG_LOSSLESS,
        JPEG_LOSSLESS_SV1,
        JPEG_LS_LOSSLESS,
        JPEG_LS_NEAR_LOSSLESS,
        JPEG_2000_LOSSLESS,
        JPEG_2000,
        RLE_LOSSLESS,
    }
)
"""Encapsulated syntaxes whose pixel data can be decoded."""

LOSSLESS_ENCODERS: frozenset[str] = frozenset(
    {RLE_LOSSLESS, JPEG_LS_LOSSLESS, JPEG_2000_LOSSLESS, JPEG_LOSSLESS_SV1}
)
"""Encapsulated syntaxes produced without loss."""

LOSSY_ENCODERS: frozenset[str] = frozenset({JPEG_BASELINE, JPEG_2000, JPEG_LS_NEAR_LOSSLESS})
"""Encapsulated syntaxes produced with loss (only with the user's permission)."""

LOSSY_METHODS: dict[str, str] = {
    JPEG_BASELINE: "ISO_10918_1",
    JPEG_EXTENDED: "ISO_10918_1",
    JPEG_2000: "ISO_15444_1",
    JPEG_LS_NEAR_LOSSLESS: "ISO_14495_1",
}
"""Lossy Image Compression Method (0028,2114) of each lossy syntax (PS3.3 C.7.6.1.1.5)."""


def fidelity(source: str, target: str) -> Fidelity | None:
    """How a data set in ``source`` can be sent in ``target``; None when it cannot.

    Between native syntaxes (deflated included) the data set is re-encoded; an
    encapsulated source is decoded into any native syntax, or re-encoded into another
    encapsulated one; a native source (not deflated) is encoded into an encapsulated
    syntax. Whether a given file's pixels suit the target's encoder (bit depth, samples)
    is a separate question: see :func:`dispatch.codecs.pixels.encodable`.
    """
    if source == target:
        return Fidelity.SAME
    if target in NATIVE:
        return Fidelity.LOSSLESS if source in NATIVE or source in DECODABLE else None
    if source not in UNCOMPRESSED and source not in DECODABLE:
        return None
    if target in LOSSLESS_ENCODERS:
        return Fidelity.LOSSLESS
    if target in LOSSY_ENCODERS:
        return Fidelity.LOSSY
    return None


def needs_codec(source: str, target: str) -> bool:
    """Whether sending ``source`` as ``target`` decodes or encodes pixel data (rather
    than re-encoding native data sets element by element)."""
    return source != target and not (source in NATIVE and target in NATIVE)


CODECS_EXTRA = "pip install 'dicom-dispatch[codecs]'"
"""How to install the pixel codecs, which a lean install leaves out."""

_DECODE_MODULES: dict[str, tuple[str, ...]] = {
    JPEG_BASELINE: ("imagecodecs",),
    JPEG_EXTENDED: ("imagecodecs",),
    JPEG_LOSSLESS: ("imagecodecs",),
    JPEG_LOSSLESS_SV1: ("imagecodecs",),
    JPEG_LS_LOSSLESS: ("jpeg_ls",),
    JPEG_LS_NEAR_LOSSLESS: ("jpeg_ls",),
    JPEG_2000_LOSSLESS: ("pylibjpeg", "openjpeg"),
    JPEG_2000: ("pylibjpeg", "openjpeg"),
    RLE_LOSSLESS: ("pylibjpeg", "rle"),
}
_ENCODE_MODULES: dict[str, tuple[str, ...]] = {
    RLE_LOSSLESS: ("pylibjpeg", "rle"),
    JPEG_LS_LOSSLESS: ("jpeg_ls",),
    JPEG_LS_NEAR_LOSSLESS: ("jpeg_ls",),
    JPEG_2000_LOSSLESS: ("pylibjpeg", "openjpeg"),
    JPEG_2000: ("pylibjpeg", "openjpeg"),
    JPEG_LOSSLESS_SV1: ("imagecodecs",),
    JPEG_BASELINE: ("imagecodecs",),
}


def missing_codecs(source: str, target: str) -> str:
    """Why converting ``source`` to ``target`` cannot be done by this installation ("" when
    it can): the pixel codecs it needs are not installed. Looks the modules up without
    importing them."""
    if not needs_codec(source, target):
        return ""
    modules = ("numpy", *_DECODE_MODULES.get(source, ()), *_ENCODE_MODULES.get(target, ()))
    absent = sorted({name for name in modules if find_spec(name) is None})
    if not absent:
        return ""
    return f"the pixel codecs are not installed ({', '.join(absent)}): {CODECS_EXTRA}"


__all__ = [
    "CODECS_EXTRA",
    "DECODABLE",
    "JPEG_LOSSLESS",
    "LOSSLESS_ENCODERS",
    "LOSSY_ENCODERS",
    "LOSSY_METHODS",
    "NATIVE",
    "Fidelity",
    "fidelity",
    "missing_codecs",
    "needs_codec",
]
