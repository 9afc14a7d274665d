"""Write a small synthetic CT study (Part-10 files) into a directory.

Usage: python scripts/make_study.py DIR [--images N] [--series N] [--size BYTES]
       [--ts explicit|implicit|big]

The files are flat in DIR (IMG00001.dcm ...), one study, spread over the series.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# The writer is shared with the test suite, which lives beside this script's folder.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.dicom_files import TRANSFER_SYNTAXES, make_study


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--series", type=int, default=2)
    parser.add_argument("--size", type=int, default=512, help="pixel data bytes per image")
    parser.add_argument("--ts", choices=sorted(TRANSFER_SYNTAXES), default="explicit")
    args = parser.parse_args(argv)
    if args.images < 1 or args.series < 1 or args.size < 2:
        parser.error("--images and --series must be at least 1, --size at least 2")
    study = make_study(
        args.directory, images=args.images, series=args.series, ts=args.ts, size=args.size
    )
    print(
        f"wrote {len(study.files)} images of study {study.study_uid} "
        f"({len(study.series_uids)} series) to {study.directory}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
