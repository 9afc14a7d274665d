"""The README's first commands: the two demos run from a checkout and say what they did."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.programs import require_program

REPO = Path(__file__).resolve().parents[1]


def _run(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REPO / "scripts" / script)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_the_demo_submits_a_job_and_sends_a_study() -> None:
    run = _run("demo")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "== dispatch submit" in run.stdout and "== dispatch send" in run.stdout
    assert "receiver stored 30 of 30 files" in run.stdout
    assert "receiver stored 40 files in all" in run.stdout


def test_the_cluster_demo_runs_a_job_through_redis_and_two_workers() -> None:
    require_program("redis-server")
    run = _run("demo-cluster")
    assert run.returncode == 0, run.stdout + run.stderr
    for step in ("dispatch status", "dispatch watch", "dispatch report"):
        assert f"== {step}" in run.stdout
    assert "receiver stored 48 of 48 files" in run.stdout
    assert "... 48 files in the report" in run.stdout
