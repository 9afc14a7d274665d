"""Settings of the distributed sender: the shipped file, the environment, checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatch.errors import UsageError
from dispatch.jobs.config import JobsConfig, load_config

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "dispatch.toml"


def test_shipped_file_documents_the_defaults() -> None:
    assert load_config(str(SHIPPED), environ={}) == JobsConfig()


def test_environment_overrides_file_and_command_line_overrides_both() -> None:
    env = {
        "DISPATCH_CONFIG": str(SHIPPED),
        "DISPATCH_BROKER_URL": "redis://h:1/0",
        "DISPATCH_LEASE_S": "4.5",
        "DISPATCH_RETRIES": "7",
    }
    cfg = load_config(environ=env, overrides={"retries": 2, "queue": None})
    assert (cfg.broker_url, cfg.lease_s, cfg.retries, cfg.queue) == (
        "redis://h:1/0",
        4.5,
        2,
        "dispatch",
    )
    assert cfg.redis_url == "redis://h:1/0"


def test_bad_values_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="lease_s"):
        load_config(environ={"DISPATCH_LEASE_S": "soon"})
    bad = tmp_path / "bad.toml"
    bad.write_text("[dispatch]\nbogus = 1\n")
    with pytest.raises(UsageError, match="unknown setting"):
        load_config(str(bad), environ={})
    with pytest.raises(UsageError, match="visibility"):
        load_config(environ={"DISPATCH_VISIBILITY_TIMEOUT_S": "60"})
    with pytest.raises(UsageError, match="cannot read"):
        load_config(str(tmp_path / "none.toml"), environ={})
