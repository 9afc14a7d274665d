"""The submit use case driven from Python, without the command line, against a real
Storage SCP (no broker: the job runs in this process)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
from pydicom.uid import CTImageStorage

import dispatch.jobs.embedded
from dispatch.errors import UsageError
from dispatch.jobs.config import JobsConfig
from dispatch.jobs.model import JobState
from dispatch.jobs.store import JobProgress
from dispatch.jobs.submit import Inputs, Submission, Submitted, Watchers, submit
from dispatch.outcome import FileOutcome, Outcome
from dispatch.proposals import build_contexts
from dispatch.settings import AssociationSettings, SendPolicy, Timeouts
from tests.support.dicom_files import make_file, make_study
from tests.support.faults import INTERNAL_ERROR, run_chunk_with_a_fault
from tests.support.scp import StorageScp
from tests.support.storescp import free_port

PRIVATE_CLASS = "1.2.826.0.1.3680043.8.498.99"


def _settings(host: str, port: int) -> AssociationSettings:
    return AssociationSettings(
        host=host,
        port=port,
        contexts=build_contexts("uncompressed"),
        timeouts=Timeouts(connect_s=5.0, socket_s=30.0, acse_s=10.0, dimse_s=30.0),
    )


def _outcomes(done: Submitted) -> dict[str, FileOutcome]:
    return {o.path: o for o in done.store.report(done.spec.job_id)}


class _Progress:
    """A progress view that keeps every snapshot it is shown."""

    def __init__(self) -> None:
        self.shown: list[JobProgress] = []

    def due(self) -> bool:
        return True

    def __call__(self, snapshot: JobProgress) -> None:
        self.shown.append(snapshot)


def test_a_submission_sends_every_file_once_and_records_each_outcome(
    scp: StorageScp, tmp_path: Path
) -> None:
    studies = [make_study(tmp_path / "corpus" / f"s{n}", images=2) for n in range(3)]
    bad = tmp_path / "corpus" / "bad.dcm"
    bad.write_bytes(b"not DICOM")
    problems: list[FileOutcome] = []
    progress = _Progress()
    request = Submission(
        inputs=Inputs((str(tmp_path / "corpus"),), scan_dirs=True, recurse=True),
        settings=_settings(scp.host, scp.port),
        policy=SendPolicy(halt=False),
        config=JobsConfig(chunk_files=2),
        name="nightly",
    )
    done = submit(request, Watchers(on_problem=problems.append, progress=progress))
    assert done.final is not None
    assert done.final.state is JobState.COMPLETED_WITH_FAILURES
    assert (done.final.total_files, done.final.stored, done.final.not_sent) == (7, 6, 1)
    assert done.spec.name == "nightly" and done.spec.max_associations == 2
    assert [p.path for p in problems] == [str(bad)]
    outcomes = _outcomes(done)
    assert outcomes[str(bad)].outcome is Outcome.NOT_SENT
    files = [str(f) for s in studies for f in s.files]
    assert {p: outcomes[p].outcome for p in files} == dict.fromkeys(files, Outcome.STORED)
    assert Counter(s.sop_instance_uid for s in scp.stores) == Counter(
        uid for s in studies for uid in s.sop_instance_uids
    )
    assert progress.shown and progress.shown[-1].done <= 7


def test_relative_inputs_are_recorded_as_absolute_paths(
    scp: StorageScp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = make_study(tmp_path / "corpus" / "study3", images=2)
    monkeypatch.chdir(tmp_path)
    request = Submission(
        inputs=Inputs(("corpus/study3",), scan_dirs=True), settings=_settings(scp.host, scp.port)
    )
    done = submit(request)
    assert done.final is not None and done.final.state is JobState.COMPLETED
    assert set(_outcomes(done)) == {str(f) for f in study.files}
    assert done.spec.name == "corpus/study3"


def test_no_retries_allowed_counts_no_retry(tmp_path: Path) -> None:
    study = make_study(tmp_path / "s", images=2)
    request = Submission(
        inputs=Inputs(tuple(str(f) for f in study.files)),
        settings=_settings("127.0.0.1", free_port()),
        config=JobsConfig(retries=0, retry_for_s=0),
    )
    done = submit(request)
    assert done.final is not None
    assert (done.final.state, done.final.not_sent, done.final.retries) == (JobState.HALTED, 2, 0)
    assert all(o.reason.startswith("association failed") and "(--retry-for 0s ran out)" in o.reason
               for o in _outcomes(done).values())  # fmt: skip


def test_an_unexpected_exception_ends_the_chunk_with_every_outcome_recorded(
    scp: StorageScp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dispatch.jobs.embedded, "run_chunk", run_chunk_with_a_fault)
    study = make_study(tmp_path / "s", images=3)
    request = Submission(
        inputs=Inputs(tuple(str(f) for f in study.files)),
        settings=_settings(scp.host, scp.port),
        policy=SendPolicy(halt=False),
    )
    done = submit(request)
    assert done.final is not None and done.final.is_finished
    outcomes = _outcomes(done)
    first, *rest = (str(f) for f in study.files)
    assert (outcomes[first].outcome, outcomes[first].reason) == (Outcome.FAILED, INTERNAL_ERROR)
    assert {(outcomes[p].outcome, outcomes[p].reason) for p in rest} == {
        (Outcome.NOT_SENT, INTERNAL_ERROR)
    }
    assert (done.final.chunks_done, done.final.done, done.final.retries) == (1, 3, 0)
    assert scp.stores == []


def test_repeat_is_refused_before_anything_is_scanned(tmp_path: Path) -> None:
    request = Submission(
        inputs=Inputs((str(tmp_path / "absent"),)),
        settings=_settings("127.0.0.1", free_port()),
        policy=SendPolicy(repeat=2),
    )
    with pytest.raises(UsageError, match="--repeat and --rename"):
        submit(request)


def test_required_classes_leave_out_a_file_whose_class_is_not_storage(
    scp: StorageScp, tmp_path: Path
) -> None:
    """-R (settings from the files' classes): as storescu, a private class is refused,
    the file NOT_SENT; the others are sent."""
    study = make_study(tmp_path / "corpus", images=2)
    private = make_file(tmp_path / "corpus" / "private.dcm", sop_class_uid=PRIVATE_CLASS)
    proposed: list[list[str]] = []

    def for_classes(classes: Sequence[str]) -> AssociationSettings:
        proposed.append(list(classes))
        settings = _settings(scp.host, scp.port)
        return dataclasses.replace(settings, contexts=build_contexts("uncompressed", classes))

    request = Submission(
        inputs=Inputs((str(tmp_path / "corpus"),), scan_dirs=True),
        settings=_settings(scp.host, scp.port),
        policy=SendPolicy(halt=False),
        config=JobsConfig(chunk_files=2),
        settings_for_classes=for_classes,
    )
    done = submit(request, Watchers())
    outcomes = _outcomes(done)
    assert outcomes[str(private)].outcome is Outcome.NOT_SENT
    assert outcomes[str(private)].reason.startswith("unknown storage SOP class in file")
    assert {outcomes[str(f)].outcome for f in study.files} == {Outcome.STORED}
    assert proposed == [[CTImageStorage]]
