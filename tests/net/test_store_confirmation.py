"""``dispatch send`` end to end against a peer whose C-STORE responses name another
instance than the one sent: such a response confirms nothing, so no file is reported
stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dispatch.dicomfile import read_info
from tests.net.rawpeer import Message, RawPeer, storing_script
from tests.net.send_cli import run_send
from tests.support.dicom_files import make_file

OTHER = "1.2.3.4.5.6.7.8.9"


def test_files_answered_for_another_instance_are_failed_not_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [make_file(tmp_path / f"{n}.dcm", instance_number=n) for n in (1, 2, 3)]
    first_uid = read_info(str(files[0])).sop_instance_uid
    received: list[Message] = []
    peer = RawPeer(storing_script(16384, received, answer_instance=OTHER))
    report = tmp_path / "report.jsonl"

    run = run_send(monkeypatch, "--report", report, "127.0.0.1", peer.port, *files)
    peer.join()

    assert run.code == 1
    assert "Traceback" not in run.stderr
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert [line["outcome"] for line in lines] == ["failed", "not_sent", "not_sent"]
    reason = f"the peer's response names instance {OTHER}, not {first_uid}"
    assert reason in lines[0]["reason"]
    assert "files: 3 (stored 0, failed 1, not sent 2)" in run.stdout
    assert len(received) == 1  # the association ended with the first response
