"""A storescu run driven from Python, without the command line, against a real peer."""

from __future__ import annotations

from pathlib import Path

from dispatch.inputs import InputItem, expand_inputs
from dispatch.outcome import FileOutcome, Outcome
from dispatch.proposals import build_contexts
from dispatch.settings import AssociationSettings, SendPolicy
from dispatch.storescu import EXIT_OK, FileProposal, run
from tests.support.dicom_files import make_study
from tests.support.scp import StorageScp

CT = "1.2.840.10008.5.1.4.1.1.2"


def _settings(scp: StorageScp) -> AssociationSettings:
    return AssociationSettings(scp.host, scp.port, build_contexts("uncompressed", [CT]))


def test_a_run_stores_every_file_and_exits_0(scp: StorageScp, tmp_path: Path) -> None:
    study = make_study(tmp_path / "s", images=3)
    outcomes: list[FileOutcome] = []
    inputs = list(expand_inputs([str(p) for p in study.files]))
    result = run(inputs, _settings(scp), SendPolicy(), outcomes.append)
    assert result.exit_code == EXIT_OK
    assert [(o.path, o.outcome) for o in outcomes] == [
        (str(p), Outcome.STORED) for p in study.files
    ]
    assert [s.sop_instance_uid for s in scp.wait_for_stores(3)] == list(study.sop_instance_uids)


def test_a_failure_status_halts_with_its_high_byte(scp: StorageScp, tmp_path: Path) -> None:
    study = make_study(tmp_path / "s", images=3)
    scp.respond(0x0000, 0xC000)
    outcomes: list[FileOutcome] = []
    inputs = [InputItem(str(p)) for p in study.files]
    result = run(inputs, _settings(scp), SendPolicy(halt=True), outcomes.append)
    assert result.exit_code == 0xC0
    assert [o.outcome for o in outcomes] == [Outcome.STORED, Outcome.FAILED, Outcome.NOT_SENT]
    assert outcomes[1].status == 0xC000
    assert outcomes[2].reason.startswith(f"halted after {study.files[1]}")


def test_contexts_derived_from_the_files_replace_the_settings(
    scp: StorageScp, tmp_path: Path
) -> None:
    study = make_study(tmp_path / "s", images=2)
    outcomes: list[FileOutcome] = []
    settings = AssociationSettings(scp.host, scp.port, ())
    inputs = [InputItem(str(p)) for p in study.files]
    result = run(
        inputs, settings, SendPolicy(), outcomes.append, from_files=FileProposal("uncompressed")
    )
    assert result.exit_code == EXIT_OK
    assert {o.outcome for o in outcomes} == {Outcome.STORED}
    assert {c.abstract_syntax for c in scp.wait_for_associations(1)[0].proposed} == {CT}
