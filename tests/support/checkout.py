"""The project's sources copied out of the checkout, for tests that build or install it
(a build leaves its own files beside the sources it reads)."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def copy_sources(destination: Path) -> Path:
    """Copy what a build of the project reads into ``destination`` (created); return it."""
    destination.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, destination / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("dispatch", "workers", "config"):
        shutil.copytree(REPO / folder, destination / folder, ignore=ignore)
    return destination
