"""Pixel codecs: decoding frames of any supported syntax, encoding frames into one.

Decoding goes through pydicom's decoders (so a frame decodes to what pydicom's own
``pixel_array`` gives, colour conversion included); encoding through pydicom's encoders
and, for the JPEG processes pydicom cannot write, libjpeg-turbo (``imagecodecs``).
Plugins were chosen by measured speed and correctness (``benchmarks/bench_codecs.py``):
RLE by pylibjpeg-rle (ten times pydicom's own decoder, twice its encoder), JPEG-LS by
pyjpegls (CharLS; faster than libjpeg or GDCM), JPEG 2000 by pylibjpeg-openjpeg. JPEG
is decoded by libjpeg-turbo directly (:data:`JPEG_DECODED`), chosen for pixels identical
to DCMTK's. GDCM is left out although it is faster at some of these:
its RLE encoder aborts the whole process on odd image sizes. The plugins are named
explicitly, so that another one installed alongside is not picked by pydicom first;
a preferred plugin that is missing is replaced by any other that is installed.

Everything here works on one frame at a time: memory is bounded by a frame whatever
the number of frames.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from dispatch.codecs import DECODABLE, JPEG_LOSSLESS, LOSSLESS_ENCODERS, LOSSY_ENCODERS, NATIVE
from dispatch.uids import (
    EXPLICIT_BE,
    JPEG_2000,
    JPEG_2000_LOSSLESS,
    JPEG_BASELINE,
    JPEG_EXTENDED,
    JPEG_LOSSLESS_SV1,
    JPEG_LS_LOSSLESS,
    JPEG_LS_NEAR_LOSSLESS,
    RLE_LOSSLESS,
)

if TYPE_CHECKING:
    import numpy as np
    from pydicom.dataset import Dataset

#: Syntaxes decoded by libjpeg-turbo (imagecodecs' ``jpeg8_decode``: 8- and 12-bit
#: baseline and extended, lossless up to 16 bits), not through pydicom: its frames are
#: the very pixels DCMTK's dcmdjpeg gives (same IJG arithmetic), where pylibjpeg-libjpeg
#: differs by a few levels on most lossy files and refuses some 12-bit streams; GDCM
#: decodes no 12-bit extended JPEG (measured: README, Conversion).
JPEG_DECODED: frozenset[str] = frozenset(
    {JPEG_BASELINE, JPEG_EXTENDED, JPEG_LOSSLESS, JPEG_LOSSLESS_SV1}
)
#: Decoding plugin per syntax decoded through pydicom.
DECODE_PLUGINS: dict[str, str] = {
    JPEG_2000_LOSSLESS: "pylibjpeg",
    JPEG_2000: "pylibjpeg",
    JPEG_LS_LOSSLESS: "pyjpegls",
    JPEG_LS_NEAR_LOSSLESS: "pyjpegls",
    RLE_LOSSLESS: "pylibjpeg",
}
#: Encoding plugin per syntax encoded through pydicom.
ENCODE_PLUGINS: dict[str, str] = {
    RLE_LOSSLESS: "pylibjpeg",
    JPEG_LS_LOSSLESS: "pyjpegls",
    JPEG_LS_NEAR_LOSSLESS: "pyjpegls",
    JPEG_2000_LOSSLESS: "pylibjpeg",
    JPEG_2000: "pylibjpeg",
}

JPEG_QUALITY = 90
"""libjpeg quality of JPEG baseline output (lossy, only when allowed)."""
J2K_RATIO = 10.0
"""Target compression ratio of JPEG 2000 irreversible output."""
JLS_NEAR = 2
"""Largest error per sample of JPEG-LS near-lossless output (NEAR parameter)."""

_COLOUR_DECODED = frozenset({"YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT"})
"""Photometric interpretations that pydicom's decoding turns into RGB."""


@dataclass(frozen=True)
class PixelFormat:
    """The Image Pixel module of a data set, as far as the codecs care."""

    rows: int
    columns: int
    samples: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    photometric: str
    frames: int
    planar: int

    @classmethod
    def of(cls, ds: Dataset) -> PixelFormat:
        """The format ``ds`` describes. Raises :class:`ValueError` naming what is
        missing or not a number."""
        try:
            frames = int(ds.get("NumberOfFrames") or 1)
            return cls(
                rows=int(ds.Rows),
                columns=int(ds.Columns),
                samples=int(ds.get("SamplesPerPixel") or 1),
                bits_allocated=int(ds.BitsAllocated),
                bits_stored=int(ds.get("BitsStored") or ds.BitsAllocated),
                signed=int(ds.get("PixelRepresentation") or 0) == 1,
                photometric=str(ds.get("PhotometricInterpretation") or "MONOCHROME2").strip(),
                frames=max(frames, 1),
                planar=int(ds.get("PlanarConfiguration") or 0),
            )
        except (AttributeError, TypeError, ValueError) as exc:
            raise ValueError(f"incomplete Image Pixel module ({exc})") from None

    @property
    def frame_bytes(self) -> int:
        """Bytes of one native frame."""
        return self.rows * self.columns * self.samples * self.bits_allocated // 8

    def decoded(self, source: str) -> PixelFormat:
        """The format of frames decoded from ``source``: colour-converted to RGB and
        interleaved when the source is encapsulated (pydicom's decoding)."""
        if source in NATIVE:
            return self
        photometric = "RGB" if self.photometric in _COLOUR_DECODED else self.photometric
        return PixelFormat(
            self.rows, self.columns, self.samples, self.bits_allocated, self.bits_stored,
            self.signed, photometric, self.frames, 0,
        )  # fmt: skip


def unsupported(target: str, fmt: PixelFormat) -> str:
    """Why frames of ``fmt`` cannot be written in ``target``; "" when they can.

    ``fmt`` is the format of the frames to write (see :meth:`PixelFormat.decoded`).
    Native targets take anything; encoders have their own limits (bit depths, samples,
    colour models), checked here before anything is sent.
    """
    if target in NATIVE:
        return ""
    if target not in LOSSLESS_ENCODERS | LOSSY_ENCODERS:
        return "no encoder"
    if fmt.bits_allocated == 1:
        return "1-bit pixel data cannot be encoded"
    if fmt.samples not in (1, 3):
        return f"{fmt.samples} samples per pixel cannot be encoded"
    colour = {"RGB"} if fmt.samples == 3 else {"MONOCHROME1", "MONOCHROME2"}
    if target in LOSSLESS_ENCODERS and fmt.samples == 1:
        colour.add("PALETTE COLOR")
    if target == RLE_LOSSLESS and fmt.samples == 3:
        colour.add("YBR_FULL")
    if fmt.photometric not in colour:
        return f"photometric interpretation {fmt.photometric} cannot be encoded"
    limits = {
        RLE_LOSSLESS: (8, 16, 32),
        JPEG_LS_LOSSLESS: (8, 16),
        JPEG_LS_NEAR_LOSSLESS: (8, 16),
        JPEG_2000_LOSSLESS: (8, 16),
        JPEG_2000: (8, 16),
        JPEG_LOSSLESS_SV1: (8, 16),
        JPEG_BASELINE: (8,),
    }[target]
    if fmt.bits_allocated not in limits or fmt.bits_stored > fmt.bits_allocated:
        return f"{fmt.bits_allocated}-bit pixel data cannot be encoded"
    if target in (JPEG_LOSSLESS_SV1, JPEG_BASELINE) and fmt.signed:
        return "signed pixel data cannot be encoded"
    jpeg_like = (JPEG_LS_LOSSLESS, JPEG_LS_NEAR_LOSSLESS, JPEG_LOSSLESS_SV1)
    if target in jpeg_like and fmt.bits_stored < 2:
        return f"{fmt.bits_stored}-bit samples cannot be encoded"
    return ""


def _plugin(table: dict[str, str], syntax: str, available: Any) -> str:
    """The preferred plugin when installed, else "" (pydicom tries every one)."""
    wanted = table.get(syntax, "")
    return wanted if wanted in available else ""


def decode_frames(
    handle: BinaryIO, source: str, fmt: PixelFormat
) -> Iterator[tuple[np.ndarray, str]]:
    """Yield each frame of the pixel data value at ``handle``'s position, decoded, with
    its photometric interpretation.

    Native sources are read as they are (no colour conversion: nothing changes);
    encapsulated ones are decoded as pydicom's ``pixel_array`` decodes them (YBR to
    RGB). Arrays come in native byte order, interleaved. Raises :class:`ValueError`
    (with pydicom's or the plugin's reason) when a frame cannot be decoded.
    """
    import numpy as np
    from pydicom.pixels.decoders.base import get_decoder
    from pydicom.uid import UID

    native = source in NATIVE
    if not native and source not in DECODABLE:
        raise ValueError(f"no decoder for {source}")
    if source in JPEG_DECODED:
        yield from _decode_jpeg(handle, fmt)
        return
    decoder = get_decoder(UID(source))
    options: dict[str, Any] = {
        "rows": fmt.rows,
        "columns": fmt.columns,
        "samples_per_pixel": fmt.samples,
        "bits_allocated": fmt.bits_allocated,
        "bits_stored": fmt.bits_stored,
        "pixel_representation": int(fmt.signed),
        "photometric_interpretation": fmt.photometric,
        "number_of_frames": fmt.frames,
        "planar_configuration": fmt.planar,
        "transfer_syntax_uid": UID(source),
        "pixel_keyword": "PixelData",
    }
    plugin = "" if native else _plugin(DECODE_PLUGINS, source, decoder.available_plugins)
    frames = decoder.iter_array(handle, raw=native, decoding_plugin=plugin, **options)
    try:
        for count, (array, properties) in enumerate(frames):
            if count >= fmt.frames:
                break  # spare fragments after the last frame (PS3.5 A.4 allows none)
            if not array.dtype.isnative:
                array = array.astype(array.dtype.newbyteorder("="))
            photometric = str(properties.get("photometric_interpretation", fmt.photometric))
            yield np.ascontiguousarray(array), photometric
    except (RuntimeError, ValueError, NotImplementedError, OSError, EOFError) as exc:
        raise ValueError(_first_line(exc)) from None


def _decode_jpeg(handle: BinaryIO, fmt: PixelFormat) -> Iterator[tuple[np.ndarray, str]]:
    """:func:`decode_frames` for :data:`JPEG_DECODED`, as DCMTK decodes: YCbCr to RGB
    unless the data set says RGB (then the samples are taken as they are, whatever the
    stream's markers suggest); signed samples sign-extended from Bits Stored."""
    import imagecodecs
    import numpy as np
    from pydicom.encaps import generate_frames

    colour: dict[str, Any] = {}
    if fmt.samples == 3 and fmt.photometric == "RGB":
        colour = {"colorspace": "RGB", "outcolorspace": "RGB"}
    photometric = "RGB" if fmt.photometric in _COLOUR_DECODED else fmt.photometric
    try:
        frames = generate_frames(handle, number_of_frames=fmt.frames)
        for count, frame in enumerate(frames):
            if count >= fmt.frames:
                break  # spare fragments after the last frame (PS3.5 A.4 allows none)
            array = imagecodecs.jpeg8_decode(frame, **colour)
            if fmt.signed:
                bits = fmt.bits_stored
                wide = array.astype(np.int32)
                array = np.where(wide >= 1 << (bits - 1), wide - (1 << bits), wide)
            yield np.ascontiguousarray(array), photometric
    except (imagecodecs.Jpeg8Error, RuntimeError, ValueError, OSError, EOFError) as exc:
        raise ValueError(_first_line(exc)) from None


def native_bytes(array: np.ndarray, fmt: PixelFormat, target: str) -> bytes:
    """One frame as native pixel data in ``target`` (sample width per Bits Allocated)."""
    width = fmt.bits_allocated // 8
    if width <= 1:
        return array.astype("u1" if not fmt.signed else "i1", copy=False).tobytes()
    order = ">" if target == EXPLICIT_BE else "<"
    kind = "i" if fmt.signed else "u"
    return array.astype(f"{order}{kind}{width}", copy=False).tobytes()


class FrameEncoder:
    """Encodes frames of one format into one encapsulated ``target`` syntax."""

    def __init__(self, target: str, fmt: PixelFormat) -> None:
        problem = unsupported(target, fmt)
        if problem:
            raise ValueError(problem)
        self.target = target
        self.fmt = fmt
        self.photometric = fmt.photometric
        """Photometric Interpretation of the encoded frames."""
        if target == JPEG_BASELINE and fmt.samples == 3:
            self.photometric = "YBR_FULL"  # encoded as YCbCr, no subsampling
        self._encoder: Any = None
        self._options: dict[str, Any] = {}
        if target in ENCODE_PLUGINS:
            from pydicom.pixels.encoders.base import get_encoder
            from pydicom.uid import UID

            self._encoder = get_encoder(UID(target))
            self._options = {
                "rows": fmt.rows,
                "columns": fmt.columns,
                "samples_per_pixel": fmt.samples,
                "bits_allocated": fmt.bits_allocated,
                "bits_stored": fmt.bits_stored,
                "pixel_representation": int(fmt.signed),
                "photometric_interpretation": fmt.photometric,
                "number_of_frames": 1,
                "planar_configuration": 0,
                "encoding_plugin": _plugin(ENCODE_PLUGINS, target, self._encoder.available_plugins),
            }
            if target == JPEG_LS_NEAR_LOSSLESS:
                self._options["jls_error"] = JLS_NEAR
            elif target == JPEG_2000:
                self._options["j2k_cr"] = [J2K_RATIO]

    def encode(self, array: np.ndarray) -> bytes:
        """One frame (rows, columns[, samples]) encoded. Raises :class:`ValueError`."""
        try:
            if self._encoder is not None:
                return bytes(self._encoder.encode(array, **self._options))
            return self._jpeg(array)
        except (RuntimeError, ValueError, NotImplementedError) as exc:
            raise ValueError(_first_line(exc)) from None

    def _jpeg(self, array: np.ndarray) -> bytes:
        import imagecodecs

        fmt = self.fmt
        colour: dict[str, Any] = {}
        if self.target == JPEG_LOSSLESS_SV1:
            if fmt.samples == 3:
                colour = {"colorspace": "RGB", "outcolorspace": "RGB"}
            # Precision is Bits Stored, unless stray high bits are set: keep them too.
            bits = fmt.bits_stored
            if bits < fmt.bits_allocated and int(array.max()) >> bits:
                bits = fmt.bits_allocated
            out = imagecodecs.jpeg8_encode(
                array, lossless=True, predictor=1, bitspersample=bits, **colour
            )
            return bytes(out)
        if fmt.samples == 3:
            colour = {"colorspace": "RGB", "outcolorspace": "YCbCr", "subsampling": "444"}
        return bytes(imagecodecs.jpeg8_encode(array, level=JPEG_QUALITY, **colour))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # pydicom lists each plugin's failure after a heading line ending in ":".
    if len(lines) > 1 and lines[0].endswith(":"):
        lines = lines[1:]
    return lines[0][:300]


__all__ = [
    "DECODE_PLUGINS",
    "ENCODE_PLUGINS",
    "J2K_RATIO",
    "JLS_NEAR",
    "JPEG_DECODED",
    "JPEG_QUALITY",
    "FrameEncoder",
    "PixelFormat",
    "decode_frames",
    "native_bytes",
    "unsupported",
]
