"""Fixtures shared by all tests: real DICOM peers and small synthetic files.

- ``scp``: a programmable pynetdicom Storage SCP on 127.0.0.1, one per session, reset
  before and after each test (see :mod:`tests.support.scp`).
- ``storescp``: a factory starting DCMTK's storescp with given options.
- ``ct_study`` (alias ``study``): a directory of five synthetic CT images of one study.

Helpers to import: ``tests.support.dicom_files`` (``make_file``, ``make_study``,
``pydicom_file``) and ``tests.support.programs.require_program``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.cluster import (  # noqa: F401 - fixtures registered for the whole suite
    _redis,
    job_store,
    redis_url,
    worker_factory,
    workers,
)
from tests.support.commitment_scp import CommitmentScp
from tests.support.dicom_files import Study, make_study
from tests.support.programs import require_program
from tests.support.scp import StorageScp
from tests.support.storescp import Storescp


@pytest.fixture(scope="session")
def _scp_server() -> Iterator[StorageScp]:
    server = StorageScp()
    yield server
    server.shutdown()


@pytest.fixture
def scp(_scp_server: StorageScp) -> Iterator[StorageScp]:
    """The session's Storage SCP, reset to accept everything and answer 0x0000."""
    _scp_server.reset()
    yield _scp_server
    # Free anything a test left stalled before other fixtures tear down.
    _scp_server.reset()


StorescpFactory = Callable[..., Storescp]


@pytest.fixture
def storescp(tmp_path: Path) -> Iterator[StorescpFactory]:
    """A factory: ``storescp(*options)`` starts DCMTK's storescp and returns it running.

    Each call gets its own port, output directory and log; all are stopped at teardown.
    The environment has ``TCP_NODELAY=1``.
    """
    program = require_program("storescp")
    started: list[Storescp] = []

    def start(*options: str) -> Storescp:
        peer = Storescp(program, options, tmp_path / f"storescp-{len(started) + 1}")
        started.append(peer)
        peer.start()
        return peer

    yield start
    for peer in started:
        peer.stop()


@pytest.fixture
def ct_study(tmp_path: Path) -> Study:
    """Five synthetic CT images (explicit VR little endian) of one study, one series."""
    return make_study(tmp_path / "study", images=5)


@pytest.fixture
def study(ct_study: Study) -> Study:
    """Alias of ``ct_study``."""
    return ct_study


@pytest.fixture
def commitment_scp() -> Iterator[CommitmentScp]:
    """A storage and storage commitment SCP (reporting on the same association unless
    the test sets its mode); a report it could not send fails the test."""
    scp = CommitmentScp()
    yield scp
    scp.release.set()
    scp.shutdown()
    assert scp.errors == []
