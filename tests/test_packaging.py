"""The wheel: what an installed dicom-dispatch carries besides its modules."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from dispatch.jobs.backends.scripts import SCRIPTS
from dispatch.shipped import SHIPPED, shipped_file
from tests.support.checkout import copy_sources

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The wheel built from a copy of the tree (a build leaves files beside the sources)."""
    root = tmp_path_factory.mktemp("wheel")
    tree = copy_sources(root / "src")
    out = root / "dist"
    command = [sys.executable, "-m", "pip", "wheel", str(tree), "--no-deps", "-q", "-w", str(out)]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    (built,) = out.glob("*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_ships_every_lua_script(wheel: zipfile.ZipFile) -> None:
    needed = {f"{name}.lua" for script, libs in SCRIPTS.items() for name in (script, *libs)}
    shipped = {
        Path(name).name
        for name in wheel.namelist()
        if name.startswith("dispatch/jobs/backends/lua/")
    }
    assert shipped == needed


def test_the_wheel_ships_the_configuration_files_as_they_are_in_config(
    wheel: zipfile.ZipFile,
) -> None:
    for name in SHIPPED:
        assert wheel.read(f"dispatch/shipped/{name}") == (REPO / "config" / name).read_bytes()


def test_the_wheel_carries_the_license(wheel: zipfile.ZipFile) -> None:
    licenses = [n for n in wheel.namelist() if n.endswith("LICENSE")]
    assert licenses, wheel.namelist()
    assert b"MIT License" in wheel.read(licenses[0])


def test_shipped_files_are_found_by_name_and_nothing_else_is() -> None:
    for name in SHIPPED:
        path = shipped_file(name)
        assert path is not None and path.read_bytes() == (REPO / "config" / name).read_bytes()
    assert shipped_file("other.cfg") is None
