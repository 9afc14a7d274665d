"""The Redis backend's Lua scripts: package data found at run time, and valid Lua
(the wheel carries them: tests/test_packaging.py)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from dispatch.jobs.backends.scripts import SCRIPTS, source

REPO = Path(__file__).resolve().parents[2]
LUA = resources.files("dispatch.jobs.backends") / "lua"


def _needed() -> set[str]:
    """Every file name the scripts are made of: themselves and their libraries."""
    return {f"{name}.lua" for script, libs in SCRIPTS.items() for name in (script, *libs)}


def test_every_script_and_library_is_found_as_package_data() -> None:
    present = {entry.name for entry in LUA.iterdir() if entry.name.endswith(".lua")}
    assert _needed() <= present
    assert present <= _needed(), "a .lua file no script uses"


def test_every_script_compiles_on_a_real_redis(redis_client: Any) -> None:
    # SCRIPT LOAD compiles without running: a syntax error in any file is caught here.
    for name in SCRIPTS:
        assert len(redis_client.script_load(source(name))) == 40, name


def test_unknown_script_name_raises() -> None:
    with pytest.raises(KeyError):
        source("no_such_script")
