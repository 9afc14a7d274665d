"""``dispatch worker`` / ``python -m workers``: the celery command it runs."""

from __future__ import annotations

import sys

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
