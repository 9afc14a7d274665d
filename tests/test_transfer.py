"""The per-file path, driven directly: items in, one outcome per item out, against a
real Storage SCP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dispatch.errors import PeerAborted
from dispatch.identities import inventor_for
from dispatch.net import Association
from dispatch.outcome import FileOutcome, Outcome
from dispatch.proposals import build_contexts
from dispatch.settings import AssociationSettings, SendPolicy
from dispatch.transfer import Broken, Identities, Item, Step, Waiting, send_files
from tests.support.dicom_files import Study, make_study
from tests.support.scp import StorageScp

CT = "1.2.840.10008.5.1.4.1.1.2"


@pytest.fixture
def assoc(scp: StorageScp) -> Iterator[Association]:
    """An association with the session SCP, ended after the test."""
    opened = Association.open(
        AssociationSettings(scp.host, scp.port, build_contexts("uncompressed", [CT]))
    )
    yield opened
    if opened.is_open:
        opened.release()


def _steps(
    assoc: Association, items: list[Item], policy: SendPolicy, grace_s: float | None = None
) -> list[Step]:
    return list(send_files(assoc, items, policy, Identities(None), grace_s=grace_s))


def test_every_item_gets_one_outcome_in_order(
    scp: StorageScp, assoc: Association, ct_study: Study
) -> None:
    items = [Item(str(p)) for p in ct_study.files]
    steps = _steps(assoc, items, SendPolicy())
    assert [(s.path, s.outcome) for s in steps if isinstance(s, FileOutcome)] == [
        (str(p), Outcome.STORED) for p in ct_study.files
    ]
    assert [s.sop_instance_uid for s in scp.wait_for_stores(5)] == list(ct_study.sop_instance_uids)


def test_halt_stops_after_the_first_file_not_stored_and_sends_no_more(
    scp: StorageScp, assoc: Association, ct_study: Study
) -> None:
    scp.respond(0x0000, 0xC000)
    steps = _steps(assoc, [Item(str(p)) for p in ct_study.files], SendPolicy(halt=True))
    assert [s.outcome for s in steps if isinstance(s, FileOutcome)] == [
        Outcome.STORED,
        Outcome.FAILED,
    ]
    assert assoc.is_open  # the caller ends it
    assert len(scp.stores) == 2


def test_an_item_with_a_problem_is_not_sent_and_the_rest_go(
    scp: StorageScp, assoc: Association, ct_study: Study
) -> None:
    items = [Item(str(p)) for p in ct_study.files[:3]]
    items[1] = Item(items[1].path, problem="changed since submission")
    steps = _steps(assoc, items, SendPolicy(halt=False))
    assert [(s.outcome, s.reason) for s in steps if isinstance(s, FileOutcome)] == [
        (Outcome.STORED, ""),
        (Outcome.NOT_SENT, "changed since submission"),
        (Outcome.STORED, ""),
    ]
    assert len(scp.wait_for_stores(2)) == 2


def test_a_broken_association_ends_the_run_with_the_file_in_flight(
    scp: StorageScp, assoc: Association, ct_study: Study
) -> None:
    scp.abort_on_store(2)
    steps = _steps(assoc, [Item(str(p)) for p in ct_study.files], SendPolicy(halt=False))
    assert isinstance(steps[0], FileOutcome) and steps[0].outcome is Outcome.STORED
    broken = steps[-1]
    assert isinstance(broken, Broken) and isinstance(broken.error, PeerAborted)
    assert broken.outcome.path == str(ct_study.files[1])
    assert broken.outcome.outcome is Outcome.FAILED
    assert len(steps) == 2 and not assoc.is_open


def test_with_a_grace_a_wait_comes_before_each_answer(assoc: Association, ct_study: Study) -> None:
    steps = _steps(assoc, [Item(str(p)) for p in ct_study.files[:2]], SendPolicy(), 0.5)
    assert [type(s) for s in steps] == [Waiting, FileOutcome, Waiting, FileOutcome]


def test_invented_identities_follow_the_item_number(
    scp: StorageScp, assoc: Association, tmp_path: Path
) -> None:
    study = make_study(tmp_path / "s", images=2)
    policy = SendPolicy(invent_identities=True)
    inventor = inventor_for(policy, "seed")
    assert inventor is not None
    items = [Item(str(study.files[0]), number=7), Item(str(study.files[1]))]
    steps = list(send_files(assoc, items, policy, Identities(inventor)))
    sent = [s.sop_instance_uid for s in steps if isinstance(s, FileOutcome)]
    # The second item has no number of its own: the run's first.
    assert sent == [inventor.identity(7).sop_instance_uid, inventor.identity(0).sop_instance_uid]
    assert [s.sop_instance_uid for s in scp.wait_for_stores(2)] == sent


def _large_file(path: Path, pixel_bytes: int) -> Path:
    import pydicom

    from tests.support.dicom_files import make_file

    made = make_file(path)
    dataset = pydicom.dcmread(made)
    dataset.Rows = dataset.Columns = int((pixel_bytes // 2) ** 0.5)
    dataset.PixelData = bytes(dataset.Rows * dataset.Columns * 2)
    dataset.save_as(made)
    return made


def test_a_large_file_in_flight_is_reported_as_it_goes_a_small_one_not(
    scp: StorageScp, assoc: Association, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dispatch.transfer
    from dispatch.dicomfile import read_info

    monkeypatch.setattr(dispatch.transfer, "PROGRESS_INTERVAL_S", 0.0)
    small = make_study(tmp_path / "small", images=1).files[0]
    large = _large_file(tmp_path / "large.dcm", 4 << 20)
    heard: list[int] = []
    items = [Item(str(small)), Item(str(large)), Item(str(small))]
    steps = list(send_files(assoc, items, SendPolicy(), Identities(None), on_bytes=heard.append))
    assert [s.outcome for s in steps if isinstance(s, FileOutcome)] == [Outcome.STORED] * 3
    # The peer takes 16 KB PDUs: the large data set goes in batches of about 1 MiB, each
    # heard; the small files (one PDU each) say nothing.
    length = read_info(str(large)).dataset_length
    assert len(heard) == len(set(heard)) >= 4
    assert heard == sorted(heard) and heard[-1] == length


def test_progress_of_a_file_in_flight_is_paced() -> None:
    from dispatch.transfer import PROGRESS_INTERVAL_S, _Paced

    heard: list[int] = []
    paced = _Paced(heard.append)
    for sent in range(1000):
        paced(sent)
    assert PROGRESS_INTERVAL_S == 0.5
    assert len(heard) <= 1  # a thousand calls well within half a second


def test_a_large_file_sent_zero_copy_is_reported_as_it_goes(
    scp: StorageScp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dispatch.transfer

    monkeypatch.setattr(dispatch.transfer, "PROGRESS_INTERVAL_S", 0.0)
    scp.max_pdu = 262144  # fragments of 256 KB go out with sendfile
    large = _large_file(tmp_path / "large.dcm", 2 << 20)
    settings = AssociationSettings(scp.host, scp.port, build_contexts("uncompressed", [CT]))
    assoc = Association.open(settings)
    heard: list[int] = []
    steps = list(send_files(assoc, [Item(str(large))], SendPolicy(), Identities(None),
                            on_bytes=heard.append))  # fmt: skip
    assoc.release()
    assert [s.outcome for s in steps if isinstance(s, FileOutcome)] == [Outcome.STORED]
    assert len(heard) >= 8 and heard == sorted(heard)
