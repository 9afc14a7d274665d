"""Finding the external programs (DCMTK, redis-server) that some tests need."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest


def find_program(name: str) -> Path | None:
    """Return the executable `name` found on PATH, or None.

    The virtual environment's own bin directory is skipped: pynetdicom installs console
    scripts named ``storescu`` and ``storescp`` there, and tests that ask for those
    programs mean DCMTK's.
    """
    venv_bin = (Path(sys.prefix) / "bin").resolve()
    for entry in os.environ.get("PATH", os.defpath).split(os.pathsep):
        if not entry:
            continue
        directory = Path(entry)
        if directory.resolve() == venv_bin:
            continue
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def require_program(name: str) -> Path:
    """Return the path of program `name`, or end the test without it.

    Without the program the test fails when the environment has ``CI=true`` (CI must
    run every test; its script installs the programs) and is skipped otherwise.
    """
    path = find_program(name)
    if path is not None:
        return path
    reason = f"program {name!r} is not installed"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true requires it)")
    pytest.skip(reason)


REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "dcmtk"
"""DCMTK's sample files, beside the checkout (they are not part of the project)."""


def require_reference(name: str) -> Path:
    """The DCMTK sample file ``name``; without it the test fails under ``CI=true`` (CI
    has them beside the checkout) and is skipped otherwise."""
    path = REFERENCE / name
    if path.exists():
        return path
    reason = f"DCMTK sample {name} is not available (looked in {REFERENCE})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true requires it)")
    pytest.skip(reason)
