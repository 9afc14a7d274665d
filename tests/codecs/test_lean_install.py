"""An install without the ``codecs`` extra: it sends what needs no pixel codec, and says
which extra to install when a file would need one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dispatch.codecs import CODECS_EXTRA
from tests.conftest import StorescpFactory
from tests.support.checkout import copy_sources
from tests.support.dicom_files import make_file, pydicom_file


@pytest.fixture(scope="module")
def lean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin`` folder of a virtual environment with dicom-dispatch and no extras."""
    root = tmp_path_factory.mktemp("lean")
    tree = copy_sources(root / "src")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(tree)]
    subprocess.run(pip, check=True, capture_output=True, timeout=600)
    return venv / "bin"


def _send(lean: Path, *args: str | Path | int) -> subprocess.CompletedProcess[str]:
    command = [str(lean / "dispatch"), "send", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_a_lean_install_has_no_pixel_codecs(lean: Path) -> None:
    probe = "import importlib.util as u; print(u.find_spec('numpy') is None)"
    out = subprocess.run([str(lean / "python"), "-c", probe], capture_output=True, text=True)
    assert out.stdout.strip() == "True"


def test_a_lean_install_sends_uncompressed_files(
    lean: Path, storescp: StorescpFactory, tmp_path: Path
) -> None:
    peer = storescp()
    run = _send(lean, "127.0.0.1", peer.port, make_file(tmp_path / "ct.dcm", ts="implicit"))
    assert run.returncode == 0, run.stdout + run.stderr
    assert len([p for p in peer.output_dir.rglob("*") if p.is_file()]) == 1


def test_a_file_that_needs_a_codec_names_the_extra_in_one_line(
    lean: Path, storescp: StorescpFactory, tmp_path: Path
) -> None:
    peer = storescp()  # accepts uncompressed syntaxes only: the JPEG file needs decoding
    report = tmp_path / "report.jsonl"
    jpeg = pydicom_file("JPGExtended.dcm")
    run = _send(lean, "-nh", "--report", report, "127.0.0.1", peer.port, jpeg)
    assert "Traceback" not in run.stderr
    (line,) = [x for x in run.stderr.splitlines() if "JPGExtended.dcm" in x]
    assert CODECS_EXTRA in line and "numpy" in line
    assert '"not_sent"' in report.read_text()
