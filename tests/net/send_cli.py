"""``dispatch send`` run in this process, for end-to-end tests of the engine."""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from dispatch.cli.main import main


@dataclass(frozen=True)
class SendRun:
    code: int
    stdout: str
    stderr: str


def run_send(monkeypatch: pytest.MonkeyPatch, *args: str | int | Path) -> SendRun:
    """``dispatch send *args`` with no ``DISPATCH_*`` settings from the environment."""
    for name in [n for n in os.environ if n.startswith("DISPATCH_")]:
        monkeypatch.delenv(name)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["send", *map(str, args)])
    return SendRun(code, out.getvalue(), err.getvalue())
