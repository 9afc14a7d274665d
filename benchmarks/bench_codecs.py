"""Conversion throughput per codec: MB/s of uncompressed pixel data, decode and encode.

A small synthetic corpus (made in memory, nothing downloaded): a 512 x 512 12-bit CT-like
image (noise over smooth structures) and a 512 x 512 8-bit RGB image. Each codec encodes
and decodes one frame repeatedly, through the same plugins and calls as the sender
(:mod:`dispatch.codecs.pixels`); the figure is uncompressed bytes per second of work.

    python benchmarks/bench_codecs.py [--seconds S] [--json FILE]
"""

from __future__ import annotations

import argparse
import io
import json
import time
from collections.abc import Callable

import numpy as np
from pydicom.encaps import encapsulate

from dispatch import uids
from dispatch.codecs.pixels import FrameEncoder, PixelFormat, decode_frames

CODECS = [
    ("RLE", uids.RLE_LOSSLESS),
    ("JPEG-LS lossless", uids.JPEG_LS_LOSSLESS),
    ("JPEG-LS near-lossless", uids.JPEG_LS_NEAR_LOSSLESS),
    ("JPEG 2000 lossless", uids.JPEG_2000_LOSSLESS),
    ("JPEG 2000 lossy", uids.JPEG_2000),
    ("JPEG lossless SV1", uids.JPEG_LOSSLESS_SV1),
    ("JPEG baseline", uids.JPEG_BASELINE),
]


def corpus() -> dict[str, tuple[np.ndarray, PixelFormat]]:
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:512, 0:512]
    ct = (np.sin(x / 30) + np.cos(y / 40) + 2) * 900 + rng.integers(0, 40, (512, 512))
    rgb = np.stack([x % 256, y % 256, (x + y) // 2 % 256], -1) + rng.integers(0, 8, (512, 512, 3))
    return {
        "CT 12-bit": (
            ct.astype(np.uint16),
            PixelFormat(512, 512, 1, 16, 12, False, "MONOCHROME2", 1, 0),
        ),
        "RGB 8-bit": (
            np.clip(rgb, 0, 255).astype(np.uint8),
            PixelFormat(512, 512, 3, 8, 8, False, "RGB", 1, 0),
        ),
    }


def rate(work: Callable[[], object], nbytes: int, seconds: float) -> float:
    work()  # warm up (imports, plugin discovery)
    started, runs = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        work()
        runs += 1
    return nbytes * runs / (time.perf_counter() - started) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    rows = []
    for image, (array, fmt) in corpus().items():
        for name, syntax in CODECS:
            try:
                encoder = FrameEncoder(syntax, fmt)
            except ValueError as exc:
                print(f"{name:24} {image:10} -- {exc}")
                continue
            encoded = encoder.encode(array)
            value = encapsulate([encoded])
            decoded_fmt = PixelFormat(
                fmt.rows, fmt.columns, fmt.samples, fmt.bits_allocated, fmt.bits_stored,
                fmt.signed, encoder.photometric, 1, 0,
            )  # fmt: skip

            def decode(value: bytes = value, syntax: str = syntax, f: PixelFormat = decoded_fmt):
                return list(decode_frames(io.BytesIO(value), syntax, f))

            def encode(encoder: FrameEncoder = encoder, array: np.ndarray = array) -> bytes:
                return encoder.encode(array)

            row = {
                "codec": name,
                "image": image,
                "ratio": round(array.nbytes / len(encoded), 2),
                "encode_mb_s": round(rate(encode, array.nbytes, args.seconds), 1),
                "decode_mb_s": round(rate(decode, array.nbytes, args.seconds), 1),
            }
            rows.append(row)
            print(
                f"{name:24} {image:10} ratio {row['ratio']:6.2f}  encode {row['encode_mb_s']:7.1f}"
                f" MB/s  decode {row['decode_mb_s']:7.1f} MB/s"
            )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(rows, out, indent=2)


if __name__ == "__main__":
    main()
