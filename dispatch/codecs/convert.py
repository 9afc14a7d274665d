"""Streaming conversion of a data set whose pixel data must be decoded or encoded.

:func:`open_conversion` reads the elements before the Pixel Data (with pydicom, as a
header: values are small), decodes the first frame, and returns the data set in the
target syntax as a stream of chunks: the header re-encoded, then the pixel data frame
by frame (native frames one at a time; encapsulated: one frame's fragments decoded,
re-encoded as one fragment), then any elements after the Pixel Data. Memory is bounded
by a few frames whatever the number of frames.

Lossy targets are the exception: the compression ratio goes into Lossy Image
Compression Ratio (0028,2112), which precedes the pixel data, so the frames are encoded
first into a spooled temporary file (memory up to :data:`SPOOL_MEMORY`, disk beyond) and
sent from there.

Nothing is sent for a file that fails before the first frame is decoded: the caller
gets a :class:`BadFile`. A frame failing later is a :class:`BadFile` raised from the
stream, which ends the association (part of the data set is already on the wire).
"""

from __future__ import annotations

import re
import struct
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from dispatch.codecs import LOSSY_ENCODERS, LOSSY_METHODS, NATIVE, fidelity, missing_codecs
from dispatch.codecs.pixels import FrameEncoder, PixelFormat, decode_frames, native_bytes
from dispatch.dicomfile import DicomFileInfo
from dispatch.errors import BadFile
from dispatch.uids import DEFLATED_LE, EXPLICIT_BE, EXPLICIT_LE, IMPLICIT_LE

if TYPE_CHECKING:
    import numpy as np
    from pydicom.dataset import Dataset

SPOOL_MEMORY = 64 << 20
"""Encoded frames of a lossy conversion kept in memory before spilling to disk."""

_PIXEL_DATA = 0x7FE00010
_EXTENDED_OFFSETS = (0x7FE00001, 0x7FE00002)
_TRAILING_PADDING = 0xFFFCFFFC
_UNDEFINED = 0xFFFFFFFF
_ITEM = struct.Struct("<HHI")
_LOSSY_SOURCES = frozenset(LOSSY_METHODS)


@dataclass
class _Layout:
    """Where the parts of a data set lie in its file."""

    header: Dataset
    """Elements before the Pixel Data (all of them when there is none)."""
    value_start: int | None
    """Offset of the Pixel Data value; None without Pixel Data."""
    value_length: int | None
    """Its length; None when undefined (encapsulated)."""
    trailing: Dataset | None
    """Elements after the Pixel Data, if any."""


def _at_pixel_data(tag: Any, vr: Any, length: Any) -> bool:
    return int(tag) == _PIXEL_DATA


def _read_layout(handle: BinaryIO, info: DicomFileInfo) -> _Layout:
    from pydicom.filereader import read_dataset

    implicit = info.transfer_syntax == IMPLICIT_LE
    little = info.transfer_syntax != EXPLICIT_BE
    end = info.dataset_offset + info.dataset_length
    handle.seek(info.dataset_offset)
    header = read_dataset(
        handle, implicit, little, bytelength=info.dataset_length, stop_when=_at_pixel_data
    )
    start = handle.tell()
    if start >= end:
        return _Layout(_clean(header), None, None, None)
    order = "<" if little else ">"
    if implicit:
        _group, _elem, length = struct.unpack(order + "HHI", handle.read(8))
        value_start = start + 8
    else:
        raw = handle.read(12)
        if raw[4:6] in (b"OB", b"OW", b"UN"):
            length = struct.unpack(order + "I", raw[8:12])[0]
            value_start = start + 12
        else:
            length = struct.unpack(order + "H", raw[6:8])[0]
            value_start = start + 8
    if length == _UNDEFINED:
        value_length = None
        after = _encapsulated_end(handle, value_start, end)
    else:
        value_length = length
        after = value_start + length
    trailing = None
    if after < end:
        handle.seek(after)
        trailing = _clean(read_dataset(handle, implicit, little, bytelength=end - after))
    return _Layout(_clean(header), value_start, value_length, trailing)


def _encapsulated_end(handle: BinaryIO, pos: int, end: int) -> int:
    """The offset after the sequence delimiter of encapsulated data at ``pos``."""
    while pos + 8 <= end:
        handle.seek(pos)
        group, elem, length = _ITEM.unpack(handle.read(8))
        if group != 0xFFFE or elem not in (0xE000, 0xE0DD):
            raise ValueError("bad item in encapsulated pixel data")
        pos += 8
        if elem == 0xE0DD:
            return pos
        if length == _UNDEFINED:
            raise ValueError("fragment of undefined length in encapsulated pixel data")
        pos += length
    raise ValueError("encapsulated pixel data without sequence delimiter")


def _clean(ds: Dataset) -> Dataset:
    """Drop what is wrong after conversion: group lengths (pydicom skips most when
    writing), trailing padding, the extended offset table."""
    for tag in list(ds.keys()):
        if tag.element == 0 or int(tag) == _TRAILING_PADDING or int(tag) in _EXTENDED_OFFSETS:
            del ds[tag]
    return ds


def _encode_elements(ds: Dataset, target: str) -> bytes:
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    out = DicomBytesIO()
    out.is_little_endian = target != EXPLICIT_BE
    out.is_implicit_VR = target == IMPLICIT_LE
    write_dataset(out, ds)
    return out.getvalue()


def pixel_format(handle: BinaryIO, info: DicomFileInfo) -> PixelFormat | None:
    """The Image Pixel module of the file's data set; None without Pixel Data.
    Raises :class:`BadFile` when the header cannot be read or is incomplete."""
    try:
        layout = _read_layout(handle, info)
        return None if layout.value_start is None else PixelFormat.of(layout.header)
    except BadFile:
        raise
    except Exception as exc:  # pydicom raises many kinds for a malformed header
        raise BadFile(info.path, f"cannot read the image header: {exc}") from None


def target_checker(info: DicomFileInfo) -> Callable[[str], str]:
    """A function telling why the file cannot be converted to a target syntax ("" when
    it can). The file's header is read on the first call, and only when needed."""
    cache: dict[str, PixelFormat | str | None] = {}

    def problem(target: str) -> str:
        if fidelity(info.transfer_syntax, target) is None:
            return "no conversion"
        if info.transfer_syntax in NATIVE and target in NATIVE:
            return ""
        missing = missing_codecs(info.transfer_syntax, target)
        if missing:
            return missing
        if "fmt" not in cache:
            try:
                with open(info.path, "rb") as handle:
                    cache["fmt"] = pixel_format(handle, info)
            except BadFile as exc:
                cache["fmt"] = exc.reason
            except OSError as exc:
                cache["fmt"] = f"cannot open: {exc.strerror or exc}"
        fmt = cache["fmt"]
        if isinstance(fmt, str):
            return fmt
        if fmt is None:
            return ""  # no pixel data: only the elements are re-encoded
        from dispatch.codecs.pixels import unsupported

        return unsupported(target, fmt.decoded(info.transfer_syntax))

    return problem


def open_conversion(
    handle: BinaryIO,
    info: DicomFileInfo,
    target: str,
    deflate_level: int = 6,
    chunk_size: int = 1 << 20,
    replace: Mapping[int, bytes] | None = None,
    old_vrs: bool = False,
) -> Iterator[bytes]:
    """The data set of ``info`` (open as ``handle``) re-encoded in ``target``.

    Reads the header and decodes the first frame now: a file that cannot be converted
    raises :class:`BadFile` (path and reason) before anything is sent. The returned
    chunks are at most about ``chunk_size`` bytes, or one encoded frame. The caller
    decided that the conversion is allowed (lossy ones included): lossy targets get
    Lossy Image Compression (0028,2110) "01", and a ratio and method appended to
    (0028,2112) and (0028,2114). ``replace`` gives new values (encoded, padded) of
    top-level attributes, each replaced only where present (invented identities).
    ``old_vrs`` (``-u``): post-1993 VRs are written as OB in an explicit VR target.
    """
    try:
        layout = _read_layout(handle, info)
        _replace(layout.header, replace or {})
        if old_vrs and target != IMPLICIT_LE:
            _to_old_vrs(layout.header)
        plan = _Plan(handle, info, layout, target)
        return _with_path(plan.chunks(chunk_size, deflate_level), info, target)
    except BadFile:
        raise
    except Exception as exc:  # pydicom and the codecs raise many kinds for bad input
        raise BadFile(info.path, f"{_conversion(info, target)}: {_reason(exc)}") from None


def _replace(header: Dataset, replace: Mapping[int, bytes]) -> None:
    for tag, raw in replace.items():
        if tag in header:
            header[tag].value = raw.decode("latin-1").rstrip("\0 ")


def _to_old_vrs(dataset: Dataset) -> None:
    """Turn every element of a post-1993 VR into OB holding its little endian value
    bytes, as :func:`dispatch.codecs.transcode.convert_dataset` does on the streaming path."""
    from pydicom.dataelem import DataElement
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_data_element

    from dispatch.codecs.transcode import OLD_VR_MAP

    old = {vr.decode() for vr in OLD_VR_MAP}
    for elem in list(dataset):
        if elem.VR == "SQ":
            for item in elem.value:
                _to_old_vrs(item)
        elif elem.VR in old:
            buffer = DicomBytesIO()
            buffer.is_little_endian, buffer.is_implicit_VR = True, True
            write_data_element(buffer, elem)
            dataset[elem.tag] = DataElement(elem.tag, "OB", buffer.getvalue()[8:])


def _conversion(info: DicomFileInfo, target: str) -> str:
    """ "cannot convert from <syntax> to <syntax>", in DCMTK's titles of the syntaxes."""
    from dispatch.dcmtk_names import transfer_syntax_title as title

    return f"cannot convert from {title(info.transfer_syntax)} to {title(target)}"


_LIBRARY_PREFIX = re.compile(
    r"^(?:[\w.]*(?:jpeg|jpg|j2k|openjp|charls|gdcm|codec|rle|lib)[\w.]*(?: error)?: )+", re.I
)
_REASON_MAX = 100


def _reason(exc: BaseException) -> str:
    """Why a conversion failed, short: the first line of ``exc``'s text without the
    codec library's preamble ("pylibjpeg: libjpeg error code '-1038' returned from
    Decode(): "), its first clause, at most about :data:`_REASON_MAX` characters."""
    lines = str(exc).strip().splitlines()
    if not lines:
        return type(exc).__name__
    text = lines[0].rsplit("(): ", 1)[-1]
    text = _LIBRARY_PREFIX.sub("", text).split(" - ", 1)[0].strip().rstrip(".")
    if len(text) > _REASON_MAX:
        text = text[: _REASON_MAX - 3].rstrip() + "..."
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        text = text[0].lower() + text[1:]
    return text or type(exc).__name__


def _with_path(chunks: Iterator[bytes], info: DicomFileInfo, target: str) -> Iterator[bytes]:
    try:
        yield from chunks
    except BadFile:
        raise
    except Exception as exc:
        raise BadFile(info.path, f"{_conversion(info, target)}: {_reason(exc)}") from None


class _Plan:
    """One conversion: the header prepared, the first frame decoded."""

    def __init__(self, handle: BinaryIO, info: DicomFileInfo, layout: _Layout, target: str):
        self.handle = handle
        self.info = info
        self.layout = layout
        self.source = info.transfer_syntax
        self.target = target
        self.plain = EXPLICIT_LE if target in (DEFLATED_LE,) or target not in NATIVE else target
        """The syntax the elements are written in (deflated: before deflating)."""
        self.fmt: PixelFormat | None = None
        self.frames: Iterator[tuple[np.ndarray, str]] = iter(())
        self.first: tuple[np.ndarray, str] | None = None
        self.encoder: FrameEncoder | None = None
        self.first_encoded = b""
        if layout.value_start is None:
            return
        self.fmt = PixelFormat.of(layout.header)
        handle.seek(layout.value_start)
        self.frames = decode_frames(handle, self.source, self.fmt)
        self.first = next(self.frames, None)
        if self.first is None:
            raise ValueError("no frame in the pixel data")
        if target not in NATIVE:
            decoded = self.fmt.decoded(self.source)
            decoded = PixelFormat(
                decoded.rows, decoded.columns, decoded.samples, decoded.bits_allocated,
                decoded.bits_stored, decoded.signed, self.first[1], decoded.frames, 0,
            )  # fmt: skip
            self.encoder = FrameEncoder(target, decoded)
            self.first_encoded = self.encoder.encode(self.first[0])

    def _all_frames(self) -> Iterator[np.ndarray]:
        assert self.first is not None
        yield self.first[0]
        for array, _photometric in self.frames:
            yield array

    def chunks(self, chunk_size: int, deflate_level: int) -> Iterator[bytes]:
        body = self._body(chunk_size)
        if self.target == DEFLATED_LE:
            from dispatch.codecs.deflate import deflate

            return deflate(body, deflate_level)
        return body

    def _body(self, chunk_size: int) -> Iterator[bytes]:
        header, layout = self.layout.header, self.layout
        self._mark_lossy_source(header)
        if self.fmt is None:
            yield _encode_elements(header, self.plain)
        elif self.encoder is None:
            yield from self._native(header, chunk_size)
        elif self.target in LOSSY_ENCODERS:
            yield from self._lossy(header, chunk_size)
        else:
            yield from self._encapsulated(header, chunk_size)
        if layout.trailing is not None and len(layout.trailing):
            yield _encode_elements(layout.trailing, self.plain)

    def _mark_lossy_source(self, header: Dataset) -> None:
        # A lossy source stays lossy whatever it becomes (PS3.3 C.7.6.1.1.5).
        if self.source in _LOSSY_SOURCES and self.fmt is not None:
            header.LossyImageCompression = "01"

    def _set_pixel_module(self, header: Dataset, photometric: str) -> None:
        assert self.fmt is not None
        header.PhotometricInterpretation = photometric
        if self.fmt.samples > 1:
            header.PlanarConfiguration = 0

    def _pixel_header(self, vr: bytes, length: int) -> bytes:
        if self.plain == IMPLICIT_LE:
            return struct.pack("<HHI", 0x7FE0, 0x0010, length)
        order = ">" if self.plain == EXPLICIT_BE else "<"
        return struct.pack(order + "HH2s2xI", 0x7FE0, 0x0010, vr, length)

    def _native(self, header: Dataset, chunk_size: int) -> Iterator[bytes]:
        fmt, first = self.fmt, self.first
        assert fmt is not None and first is not None
        self._set_pixel_module(header, first[1])
        length = fmt.frame_bytes * fmt.frames
        vr = b"OW" if fmt.bits_allocated > 8 else b"OB"
        pending = bytearray(_encode_elements(header, self.plain))
        pending += self._pixel_header(vr, length + length % 2)
        count = 0
        for array in self._all_frames():
            data = native_bytes(array, fmt, self.plain)
            if len(data) != fmt.frame_bytes:
                raise ValueError(f"frame {count + 1} decoded to {len(data)} bytes")
            pending += data
            count += 1
            if len(pending) >= chunk_size:
                yield bytes(pending)
                pending.clear()
        if count != fmt.frames:
            raise ValueError(f"{count} frames decoded, {fmt.frames} expected")
        if length % 2:
            pending += b"\0"
        if pending:
            yield bytes(pending)

    def _encoded_frames(self) -> Iterator[bytes]:
        assert self.encoder is not None and self.fmt is not None
        yield self.first_encoded
        count = 1
        for array, _photometric in self.frames:
            count += 1
            yield self.encoder.encode(array)
        if count != self.fmt.frames:
            raise ValueError(f"{count} frames decoded, {self.fmt.frames} expected")

    def _encapsulated_head(self, header: Dataset) -> bytes:
        assert self.encoder is not None
        self._set_pixel_module(header, self.encoder.photometric)
        head = _encode_elements(header, EXPLICIT_LE)
        # Undefined length, then an empty Basic Offset Table item (PS3.5 A.4).
        return head + self._pixel_header(b"OB", _UNDEFINED) + _ITEM.pack(0xFFFE, 0xE000, 0)

    def _encapsulated(self, header: Dataset, chunk_size: int) -> Iterator[bytes]:
        pending = bytearray(self._encapsulated_head(header))
        for frame in self._encoded_frames():
            pending += _ITEM.pack(0xFFFE, 0xE000, len(frame) + len(frame) % 2)
            pending += frame
            if len(frame) % 2:
                pending += b"\0"
            if len(pending) >= chunk_size:
                yield bytes(pending)
                pending.clear()
        pending += _ITEM.pack(0xFFFE, 0xE0DD, 0)
        yield bytes(pending)

    def _lossy(self, header: Dataset, chunk_size: int) -> Iterator[bytes]:
        assert self.fmt is not None
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY) as spool:
            sizes: list[int] = []
            for frame in self._encoded_frames():
                spool.write(frame)
                sizes.append(len(frame))
            encoded = sum(sizes) or 1
            ratio = self.fmt.frame_bytes * self.fmt.frames / encoded
            _add_lossy(header, ratio, LOSSY_METHODS[self.target])
            pending = bytearray(self._encapsulated_head(header))
            spool.seek(0)
            for size in sizes:
                pending += _ITEM.pack(0xFFFE, 0xE000, size + size % 2)
                pending += spool.read(size)
                if size % 2:
                    pending += b"\0"
                if len(pending) >= chunk_size:
                    yield bytes(pending)
                    pending.clear()
        pending += _ITEM.pack(0xFFFE, 0xE0DD, 0)
        yield bytes(pending)


def _values(ds: Dataset, keyword: str) -> list[str]:
    value = ds.get(keyword)
    if value is None or value == "":
        return []
    items: Iterable[Any] = value if isinstance(value, list | tuple) or _is_multi(value) else [value]
    return [str(v) for v in items]


def _is_multi(value: Any) -> bool:
    from pydicom.multival import MultiValue

    return isinstance(value, MultiValue)


def _add_lossy(header: Dataset, ratio: float, method: str) -> None:
    """Record one more lossy compression step (PS3.3 C.7.6.1.1.5): the values of
    (0028,2112) and (0028,2114) list every step, oldest first."""
    ratios = _values(header, "LossyImageCompressionRatio")
    methods = _values(header, "LossyImageCompressionMethod")
    header.LossyImageCompression = "01"
    header.LossyImageCompressionRatio = [*ratios, f"{ratio:.2f}"[:16]]
    header.LossyImageCompressionMethod = [*methods, method]


__all__ = ["SPOOL_MEMORY", "open_conversion", "pixel_format", "target_checker"]
