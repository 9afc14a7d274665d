"""``dispatch worker`` / ``python -m workers``: the celery command it runs."""

from __future__ import annotations

import sys

import pytest

from workers.cli import command


def test_command_passes_the_options_and_the_broker_through_the_environment() -> None:
    cmd, env = command(
        [
            "--concurrency",
            "3",
            "--queues",
            "a,b",
            "--loglevel",
            "debug",
            "--broker",
            "redis://h:6379/2",
            "--metrics-port",
            "9100",
        ],
        environ={"PATH": "/bin"},
    )
    assert cmd[:7] == [sys.executable, "-m", "celery", "-A", "workers", "worker", "--pool"]
    joined = " ".join(cmd)
    assert "--concurrency 3" in joined and "--queues a,b" in joined
    assert "--loglevel debug" in joined
    assert env == {"PATH": "/bin", "DISPATCH_BROKER_URL": "redis://h:6379/2"}


def test_command_passes_the_pool_options_and_anything_after_a_double_dash() -> None:
    pool = ["--autoscale", "4,1", "--max-tasks-per-child", "50"]
    pool += ["--max-memory-per-child", "200000", "--prefetch-multiplier", "2"]
    cmd, _ = command([*pool, "-n", "w1@%h", "--", "--pidfile", "w1.pid"], environ={})
    joined = " ".join(cmd)
    assert "--autoscale 4,1" in joined and "--max-tasks-per-child 50" in joined
    assert "--max-memory-per-child 200000" in joined and "--prefetch-multiplier 2" in joined
    assert "--hostname w1@%h" in joined
    assert cmd[-2:] == ["--pidfile", "w1.pid"]


def test_heartbeats_stay_on_gossip_and_mingle_off() -> None:
    cmd, _ = command([], environ={})
    assert "--without-heartbeat" not in cmd
    assert "--without-gossip" in cmd and "--without-mingle" in cmd


def test_a_bad_autoscale_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        command(["--autoscale", "1,4"], environ={})
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert (
        err.splitlines()[-1]
        == "dispatch worker: error: argument --autoscale: MIN exceeds MAX: '1,4'"
    )
