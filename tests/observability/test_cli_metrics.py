"""``dispatch send`` and in-process ``dispatch submit`` serve metrics with
``--metrics-port``, and import nothing of Prometheus without it."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.dicom_files import Study
from tests.support.scp import StorageScp
from tests.support.storescp import free_port

REPO = Path(__file__).resolve().parents[2]
SERVE_TIMEOUT_S = 15.0


def _scrape(port: int, process: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + SERVE_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                return str(r.read().decode())
        except OSError:
            # The server comes up when the command has parsed its options: poll, bounded.
            if process.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.mark.parametrize("command", [["send"], ["submit", "--jobs", "1", "--wait"]])
def test_the_command_serves_its_numbers_while_it_sends(
    command: list[str], scp: StorageScp, ct_study: Study
) -> None:
    port = free_port()
    files = [str(f) for f in ct_study.files]
    scp.stall_on_store(2)  # hold the second file while the metrics are read
    argv = [sys.executable, "-m", "dispatch.cli.main", *command, "-q"]
    argv += ["--metrics-port", f"127.0.0.1:{port}", scp.host, str(scp.port), *files]
    env = {"PATH": "/usr/bin:/bin", "DISPATCH_BROKER_URL": ""}
    process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    destination = f"ANY-SCP@{scp.host}:{scp.port}"
    stored = f'dispatch_files_total{{destination="{destination}",outcome="stored",'
    first = f'{stored}status_class="0x0000"}} 1.0'
    try:
        scp.wait_until_stalled(1, timeout_s=SERVE_TIMEOUT_S)
        # The first file's outcome is counted once the sender sees the peer is slow
        # to answer the second (the counter itself exists from the start, at 0): read
        # until the count shows, bounded.
        deadline = time.monotonic() + SERVE_TIMEOUT_S
        text = _scrape(port, process)
        while first not in text and time.monotonic() < deadline:
            time.sleep(0.02)
            text = _scrape(port, process)
    finally:
        scp.release_stall()
        assert process.wait(30) == 0
    assert first in text
    assert f'dispatch_associations_open{{destination="{destination}"}} 1.0' in text
    assert f'dispatch_association_setup_seconds_count{{destination="{destination}"}} 1.0' in text
    if command[0] == "submit":
        assert "dispatch_jobs_running 1.0" in text


def test_a_bad_metrics_address_is_one_line_not_a_traceback(ct_study: Study) -> None:
    argv = [sys.executable, "-m", "dispatch.cli.main", "send", "--metrics-port", "nine"]
    argv += ["127.0.0.1", "104", str(ct_study.files[0])]
    out = subprocess.run(argv, cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 1
    assert "bad metrics address 'nine'" in out.stderr and "Traceback" not in out.stderr


def test_sending_imports_no_prometheus_without_metrics() -> None:
    check = (
        "import sys, dispatch.cli.send, dispatch.cli.submit, dispatch.storescu, "
        "dispatch.jobs.runner, dispatch.jobs.embedded;"
        "print([m for m in sys.modules if m.startswith('prometheus_client')])"
    )
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
