"""Input paths as workers see them: relative inputs are made absolute when submitted,
and a file a worker cannot see is reported as such."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from dispatch.jobs.model import FileRef
from dispatch.jobs.redis_store import RedisJobStore
from dispatch.jobs.runner import changed_since_submission
from dispatch.outcome import Outcome
from tests.support.cluster import WorkerFactory, run_cli
from tests.support.dicom_files import make_study
from tests.support.scp import StorageScp


def test_relative_inputs_reach_a_worker_started_in_another_directory(
    scp: StorageScp,
    worker_factory: WorkerFactory,
    redis_url: str,
    job_store: RedisJobStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    worker_factory("elsewhere", queue="elsewhere", cwd=elsewhere)
    study = make_study(tmp_path / "corpus" / "ct" / "study3", images=2)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DISPATCH_QUEUE", "elsewhere")
    run = run_cli("submit", "--broker", redis_url, "--wait", scp.host, scp.port,
                  "+sd", "corpus/ct/study3")  # fmt: skip
    assert run.code == 0, run.stdout + run.stderr
    outcomes = {o.path: o.outcome for o in job_store.report(run.stdout.splitlines()[0].strip())}
    assert outcomes == {str(f): Outcome.STORED for f in study.files}
    assert sorted(s.sop_instance_uid for s in scp.stores) == sorted(study.sop_instance_uids)


def _ref(path: str) -> FileRef:
    return FileRef(path=path, size=1, mtime_ns=1)


def test_a_file_in_a_directory_this_host_lacks_is_not_visible_here(tmp_path: Path) -> None:
    here = f"not visible on this host ({socket.gethostname()})"
    assert changed_since_submission(_ref(str(tmp_path / "mount" / "IMG1.dcm"))) == here
    assert changed_since_submission(_ref("corpus/IMG1.dcm")) == here
    assert changed_since_submission(_ref(str(tmp_path / "IMG1.dcm"))) == "missing since submission"
