"""Exit codes, halting, association endings and the per-file outcomes of a run.

Each exit-code test runs DCMTK's storescu and ``dispatch send`` (the ``send`` fixture)
on the same peer and asserts the same result of both.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from tests.cli.conftest import (
    Runner,
    observe,
    observe_both,
    peer,
    run_dispatch,
    run_dispatch_process,
)
from tests.conftest import StorescpFactory
from tests.support.dicom_files import Study, make_study
from tests.support.scp import StorageScp
from tests.support.storescp import Storescp, free_port


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Study:
    """Three small explicit little endian CT files of one study."""
    return make_study(tmp_path_factory.mktemp("three"), images=3)


def wait_for_log(receiver: Storescp, text: str, timeout_s: float = 5.0) -> None:
    """Wait until storescp has logged `text` (it signals nothing else; poll its log)."""
    deadline = time.monotonic() + timeout_s
    while text not in receiver.log():
        if time.monotonic() > deadline:
            raise AssertionError(f"storescp did not log {text!r}:\n{receiver.log()}")
        time.sleep(0.02)


def report_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- statuses and halting --------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"),
    [(0xA700, 167), (0xC000, 192), (0xA900, 169), (0x0122, 1)],
    ids=["A700", "C000", "A900", "0122"],
)
def test_failure_status_halts_with_status_high_byte(
    send: Runner, scp: StorageScp, three: Study, status: int, code: int
) -> None:
    seen = observe(send, scp, *three.files, setup=lambda p: p.respond(status))
    assert seen.run.code == code, seen.run.output
    assert len(seen.stores) == 1
    assert seen.association.ended == "released"


@pytest.mark.parametrize("status", [0xA700, 0xC000, 0x0122])
def test_no_halt_tries_every_file_and_exits_0(
    send: Runner, scp: StorageScp, three: Study, status: int
) -> None:
    seen = observe(send, scp, "-nh", *three.files, setup=lambda p: p.respond(status, status))
    assert seen.run.code == 0, seen.run.output
    assert [s.status for s in seen.stores] == [status, status, 0]
    assert seen.association.ended == "released"


@pytest.mark.parametrize(
    "status",
    [0x0107, 0x0116, 0xB007, 0xFE00, 0x0110, 0xA7FF, 0xCFFF],
    ids=lambda s: f"{s:04X}",
)
def test_other_statuses_give_storescus_exit_code(
    scp: StorageScp, three: Study, status: int
) -> None:
    dcmtk, ours = observe_both(scp, *three.files, setup=lambda p: p.respond(status))
    assert ours.run.code == dcmtk.run.code, (dcmtk.run.output, ours.run.output)
    assert len(ours.stores) == len(dcmtk.stores)


def test_warning_status_counts_as_stored(send: Runner, scp: StorageScp, three: Study) -> None:
    seen = observe(send, scp, *three.files, setup=lambda p: p.respond(0xB000, 0x0001))
    assert seen.run.code == 0, seen.run.output
    assert len(seen.stores) == 3


def test_peer_abort_exits_10(send: Runner, scp: StorageScp, three: Study) -> None:
    seen = observe(send, scp, *three.files, setup=lambda p: p.abort_on_store(2))
    assert seen.run.code == 10, seen.run.output
    assert len(seen.stores) == 2
    assert seen.association.ended == "aborted-by-scp"


def test_peer_abort_with_no_halt_exits_1(send: Runner, scp: StorageScp, three: Study) -> None:
    seen = observe(send, scp, "-nh", *three.files, setup=lambda p: p.abort_on_store(1))
    assert seen.run.code == 1, seen.run.output
    assert len(seen.stores) == 1


@pytest.mark.parametrize(("options", "code"), [([], 10), (["-nh"], 1)], ids=["halt", "no-halt"])
def test_storescp_abort_after(
    send: Runner, storescp: StorescpFactory, three: Study, options: list[str], code: int
) -> None:
    receiver = storescp("--abort-after")
    run = send(*options, "127.0.0.1", receiver.port, *three.files)
    assert run.code == code, run.output
    assert "Traceback" not in run.stderr


def test_rejected_association_exits_1(
    send: Runner, storescp: StorescpFactory, three: Study
) -> None:
    receiver = storescp("--refuse")
    run = send("127.0.0.1", receiver.port, *three.files)
    assert run.code == 1, run.output
    assert "Traceback" not in run.stderr
    assert receiver.files() == []


def test_rejection_by_scp_exits_1(send: Runner, scp: StorageScp, three: Study) -> None:
    seen = observe(send, scp, *three.files, setup=lambda p: p.reject_associations())
    assert seen.run.code == 1, seen.run.output
    assert seen.association.ended == "rejected"
    assert seen.stores == []


def test_connection_refused_exits_1(send: Runner, three: Study) -> None:
    run = send("127.0.0.1", free_port(), *three.files)
    assert run.code == 1, run.output
    assert "Traceback" not in run.stderr


def test_dimse_timeout_aborts_the_association(send: Runner, scp: StorageScp, three: Study) -> None:
    scp.reset()
    scp.stall_on_store(1)
    run = send("-td", "1", *peer(scp), *three.files)
    scp.release_stall()
    assert run.code == 1, run.output
    assert "Traceback" not in run.stderr
    records = scp.wait_for_associations(1)
    # The stalled SCP answers before it reads the A-ABORT waiting in its socket, and
    # then finds the connection closed; never is the association released.
    assert records[0].ended in ("aborted", "closed")
    assert len(scp.stores) == 1


def test_abort_option_ends_with_a_abort(
    send: Runner, storescp: StorescpFactory, three: Study
) -> None:
    receiver = storescp("-v", "--ignore")
    run = send("--abort", "127.0.0.1", receiver.port, *three.files)
    assert run.code == 0, run.output
    wait_for_log(receiver, "Association Aborted")
    log = receiver.log()
    assert log.count("Received Store Request") == 3
    assert "Association Release" not in log


def test_default_ends_with_a_release(send: Runner, scp: StorageScp, three: Study) -> None:
    seen = observe(send, scp, *three.files)
    assert seen.run.code == 0, seen.run.output
    assert len(seen.stores) == 3
    assert seen.association.ended == "released"


def test_repeat_sends_each_file_n_times_in_a_row(
    send: Runner, scp: StorageScp, three: Study
) -> None:
    first, second = three.files[:2]
    seen = observe(send, scp, "--repeat", "3", first, second)
    assert seen.run.code == 0, seen.run.output
    expected = [three.sop_instance_uids[0]] * 3 + [three.sop_instance_uids[1]] * 3
    assert [s.sop_instance_uid for s in seen.stores] == expected
    ids = [s.message_id for s in seen.stores]
    assert ids == list(range(ids[0], ids[0] + 6))


def test_stores_are_medium_priority_with_increasing_message_ids(
    send: Runner, scp: StorageScp, three: Study
) -> None:
    seen = observe(send, scp, *three.files)
    assert [s.priority for s in seen.stores] == [0, 0, 0]
    ids = [s.message_id for s in seen.stores]
    assert ids == list(range(ids[0], ids[0] + 3))


# -- outcomes, report, summary (dispatch only) -----------------------------------------


def test_report_has_one_line_per_file(scp: StorageScp, three: Study, tmp_path: Path) -> None:
    report = tmp_path / "report.jsonl"
    seen = observe(run_dispatch, scp, "--report", report, *three.files)
    assert seen.run.code == 0
    lines = report_lines(report)
    assert [line["path"] for line in lines] == [str(p) for p in three.files]
    assert {line["outcome"] for line in lines} == {"stored"}
    assert {line["status"] for line in lines} == {"0x0000"}
    assert [line["sop_instance_uid"] for line in lines] == list(three.sop_instance_uids)


def test_report_has_one_line_per_repetition(scp: StorageScp, three: Study, tmp_path: Path) -> None:
    report = tmp_path / "report.jsonl"
    seen = observe(run_dispatch, scp, "--repeat", "2", "--report", report, *three.files[:2])
    assert seen.run.code == 0
    paths = [line["path"] for line in report_lines(report)]
    assert paths == [str(three.files[0])] * 2 + [str(three.files[1])] * 2


def test_report_after_peer_abort_never_claims_an_unconfirmed_store(
    scp: StorageScp, three: Study, tmp_path: Path
) -> None:
    report = tmp_path / "report.jsonl"
    seen = observe(
        run_dispatch, scp, "--report", report, *three.files, setup=lambda p: p.abort_on_store(2)
    )
    assert seen.run.code == 10
    lines = report_lines(report)
    assert [line["outcome"] for line in lines] == ["stored", "failed", "not_sent"]
    assert lines[1]["reason"]
    assert lines[2]["reason"]
    summary = seen.run.stdout
    assert "files: 3 (stored 1, failed 1, not sent 1)" in summary


def test_report_of_halted_run_records_status_and_files_not_sent(
    scp: StorageScp, three: Study, tmp_path: Path
) -> None:
    report = tmp_path / "report.jsonl"
    seen = observe(
        run_dispatch, scp, "--report", report, *three.files, setup=lambda p: p.respond(0xA700)
    )
    assert seen.run.code == 167
    lines = report_lines(report)
    assert [line["outcome"] for line in lines] == ["failed", "not_sent", "not_sent"]
    assert lines[0]["status"] == "0xA700"
    assert lines[0]["reason"]
    assert all(line["reason"] for line in lines[1:])


def test_report_of_halted_repeat_records_every_repetition(
    scp: StorageScp, three: Study, tmp_path: Path
) -> None:
    report = tmp_path / "report.jsonl"
    seen = observe(
        run_dispatch,
        scp,
        "--repeat",
        "2",
        "--report",
        report,
        *three.files[:2],
        setup=lambda p: p.respond(0, 0xA900),
    )
    assert seen.run.code == 169
    lines = report_lines(report)
    assert [line["outcome"] for line in lines] == ["stored", "failed", "not_sent", "not_sent"]
    assert [line["path"] for line in lines] == [str(three.files[0])] * 2 + [str(three.files[1])] * 2


def test_report_of_warning_names_the_warning(scp: StorageScp, three: Study, tmp_path: Path) -> None:
    report = tmp_path / "report.jsonl"
    observe(
        run_dispatch, scp, "--report", report, three.files[0], setup=lambda p: p.respond(0xB000)
    )
    (line,) = report_lines(report)
    assert (line["outcome"], line["status"]) == ("stored", "0xB000")
    assert line["reason"]


def test_report_when_the_association_is_rejected(
    scp: StorageScp, three: Study, tmp_path: Path
) -> None:
    report = tmp_path / "report.jsonl"
    seen = observe(
        run_dispatch, scp, "--report", report, *three.files, setup=lambda p: p.reject_associations()
    )
    assert seen.run.code == 1
    assert [line["outcome"] for line in report_lines(report)] == ["not_sent"] * 3


def test_summary_lines(scp: StorageScp, three: Study) -> None:
    seen = observe(run_dispatch, scp, "-nh", *three.files, setup=lambda p: p.respond(0xA700))
    out = seen.run.stdout
    assert "files: 3 (stored 2, failed 1, not sent 0)" in out
    match = re.search(r"bytes: (\d+) \([\d.]+ k?B\) in [\d.]+ s: [\d.]+ files/s, [\d.]+ MB/s", out)
    assert match, out
    assert int(match.group(1)) > 0
    assert re.search(r"1 × .*A700", out), out


def test_summary_of_a_real_process(scp: StorageScp, three: Study) -> None:
    scp.reset()
    run = run_dispatch_process(*peer(scp), *three.files)
    assert run.code == 0, run.output
    assert "files: 3 (stored 3, failed 0, not sent 0)" in run.stdout
    assert len(scp.wait_for_stores(3)) == 3


def test_real_process_exit_code_is_status_high_byte(scp: StorageScp, three: Study) -> None:
    scp.reset()
    scp.respond(0xC000)
    run = run_dispatch_process(*peer(scp), *three.files)
    assert run.code == 192, run.output
    assert "Traceback" not in run.stderr


def test_quiet_prints_no_summary(scp: StorageScp, three: Study) -> None:
    seen = observe(run_dispatch, scp, "-q", *three.files)
    assert seen.run.code == 0
    assert seen.run.stdout == ""


# -- a file that changes while it is sent ----------------------------------------------


def _shrinking_middle(tmp_path: Path, scp: StorageScp) -> list[Path]:
    """Three files; the middle one (32 MB) is cut to 1 MB once the peer has received
    4 MB of it, long before the sender has read it all."""
    import pydicom

    from tests.support.dicom_files import make_file

    files = [make_file(tmp_path / name) for name in ("a.dcm", "b.dcm", "c.dcm")]
    large = pydicom.dcmread(files[1])
    large.Rows = large.Columns = 4096
    large.PixelData = bytes(32 << 20)
    large.save_as(files[1])
    cut: list[int] = []

    def shrink(received: int) -> None:
        if received > 4 << 20 and not cut:
            cut.append(received)
            os.truncate(files[1], 1 << 20)

    scp.reset()
    scp.on_data_received(shrink)
    return files


def test_a_file_that_shrinks_while_sent_fails_alone_with_no_halt(
    scp: StorageScp, tmp_path: Path
) -> None:
    files = _shrinking_middle(tmp_path, scp)
    report = tmp_path / "report.jsonl"
    run = run_dispatch("-nh", "--report", report, *peer(scp), *files)
    assert run.code == 0, run.output
    assert "Traceback" not in run.output
    outcomes = {Path(str(r["path"])).name: r for r in report_lines(report)}
    assert [outcomes[n]["outcome"] for n in ("a.dcm", "b.dcm", "c.dcm")] == [
        "stored",
        "failed",
        "stored",
    ]
    assert str(outcomes["b.dcm"]["reason"]).startswith("file changed while being sent: ")
    assert f"Store Failed, file: {files[1]}: file changed while being sent" in run.output
    records = scp.wait_for_associations(2)
    assert records[0].ended in ("aborted", "closed")
    assert records[1].ended == "released"
    assert [s.association for s in scp.stores] == [records[0], records[1]]


def test_a_file_that_shrinks_while_sent_halts_the_run(scp: StorageScp, tmp_path: Path) -> None:
    files = _shrinking_middle(tmp_path, scp)
    report = tmp_path / "report.jsonl"
    run = run_dispatch("--report", report, *peer(scp), *files)
    assert run.code == 1, run.output
    outcomes = [r["outcome"] for r in report_lines(report)]
    assert outcomes == ["stored", "failed", "not_sent"]
    assert len(scp.wait_for_associations(1)) == 1
    assert len(scp.stores) == 1
