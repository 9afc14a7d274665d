"""Running ``dispatch send`` and DCMTK's ``storescu`` the same way, and watching a peer.

- :func:`run_dispatch`: ``dispatch send`` in-process through :func:`dispatch.cli.main.main`,
  its standard output and error captured.
- :func:`run_dispatch_process`: the same as a real subprocess of the installed
  ``dispatch`` console script (exit codes and output as a user sees them).
- :func:`run_storescu`: DCMTK's ``/usr/bin/storescu`` with ``TCP_NODELAY=1``.
- the ``send`` fixture: parametrized over ``"storescu"`` and ``"dispatch"``, so a test
  written once asserts that both programs behave as it says.
- :func:`observe`: run one sender against the session ``scp`` (programmed by an optional
  ``setup`` callback) and collect what the peer saw.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from dispatch.cli.main import main
from tests.support.programs import require_program
from tests.support.scp import AssociationRecord, ReceivedStore, StorageScp

#: The longest any sender run may take before the test fails.
RUN_TIMEOUT_S = 60.0

Arg = str | Path | int


@dataclass(frozen=True)
class Run:
    """One finished sender run."""

    runner: str
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """Standard output and error together."""
        return self.stdout + self.stderr


def run_dispatch(*args: Arg) -> Run:
    """Run ``dispatch send *args`` in this process; capture its output."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["send", *map(str, args)])
    return Run("dispatch", code, out.getvalue(), err.getvalue())


def dispatch_program() -> list[str]:
    """The command that starts the installed ``dispatch`` console script."""
    script = Path(sys.executable).parent / "dispatch"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "dispatch.cli.main"]


def _run_process(runner: str, command: list[str], cwd: Path | None) -> Run:
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        env={**os.environ, "TCP_NODELAY": "1"},
        cwd=cwd,
        check=False,
    )
    return Run(runner, done.returncode, done.stdout, done.stderr)


def run_dispatch_process(*args: Arg, cwd: Path | None = None) -> Run:
    """Run ``dispatch send *args`` as a subprocess of the installed console script."""
    return _run_process("dispatch", [*dispatch_program(), "send", *map(str, args)], cwd)


def run_storescu(*args: Arg, cwd: Path | None = None) -> Run:
    """Run DCMTK's storescu with ``args`` and ``TCP_NODELAY=1``."""
    program = require_program("storescu")
    return _run_process("storescu", [str(program), *map(str, args)], cwd)


Runner = Callable[..., Run]
RUNNERS: dict[str, Runner] = {"storescu": run_storescu, "dispatch": run_dispatch}


@pytest.fixture(params=sorted(RUNNERS))
def send(request: pytest.FixtureRequest) -> Runner:
    """A sender: DCMTK's storescu or ``dispatch send`` (the test runs with each)."""
    name: str = request.param
    if name == "storescu":
        require_program("storescu")
    return RUNNERS[name]


def peer(scp: StorageScp) -> list[str]:
    """The ``peer port`` arguments that reach `scp`."""
    return [scp.host, str(scp.port)]


@dataclass(frozen=True)
class Observed:
    """A sender run and what the SCP saw of it."""

    run: Run
    stores: list[ReceivedStore]
    associations: list[AssociationRecord]

    @property
    def association(self) -> AssociationRecord:
        """The only association of the run."""
        assert len(self.associations) == 1, self.associations
        return self.associations[0]


def observe(
    runner: Runner,
    scp: StorageScp,
    *args: Arg,
    setup: Callable[[StorageScp], None] | None = None,
    associations: int = 1,
) -> Observed:
    """Reset `scp`, program it with `setup`, run `runner` against it with `args`.

    Waits until `associations` associations have ended at the SCP before reading its
    records (a sender may exit before the SCP has handled the release).
    """
    scp.reset()
    if setup is not None:
        setup(scp)
    run = runner(*peer(scp), *args)
    assert "Traceback" not in run.stderr, run.stderr
    if associations:
        scp.wait_for_associations(associations)
    return Observed(run, scp.stores, scp.associations)


def observe_both(
    scp: StorageScp,
    *args: Arg,
    setup: Callable[[StorageScp], None] | None = None,
    associations: int = 1,
) -> tuple[Observed, Observed]:
    """:func:`observe` with storescu, then with ``dispatch send``: (storescu, dispatch)."""
    first = observe(run_storescu, scp, *args, setup=setup, associations=associations)
    second = observe(run_dispatch, scp, *args, setup=setup, associations=associations)
    return first, second


@pytest.fixture(autouse=True)
def _no_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """No broker nor settings file from the environment: a command line test names
    its own (else a developer's DISPATCH_BROKER_URL would change what it tests)."""
    for name in list(os.environ):
        if name.startswith("DISPATCH_"):
            monkeypatch.delenv(name)
