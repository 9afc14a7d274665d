"""What ``dispatch send`` tells a user who runs it as storescu: ``-v``, ``-d`` and ``+v``
print the lines storescu prints (side by side with DCMTK's storescu against the same
peer and files), an error is said once, and a file that is not DICOM is called so."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydicom.uid import MRImageStorage

from tests.cli.conftest import Run, observe, run_dispatch, run_storescu
from tests.support.dicom_files import make_file
from tests.support.scp import StorageScp


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A CT and an MR image (explicit VR little endian)."""
    folder = tmp_path_factory.mktemp("diagnostics")
    return [
        make_file(folder / "ct.dcm", ts="explicit"),
        make_file(folder / "mr.dcm", ts="explicit", sop_class_uid=MRImageStorage),
    ]


#: The info lines a user greps for, as storescu -v prints them.
GREPPED = (
    "Requesting Association",
    "Association Accepted",
    "Sending file:",
    "Converting transfer syntax:",
    "Sending Store Request",
    "Received Store Response",
    "Releasing Association",
)


def grepped(run: Run) -> list[str]:
    return [line for line in run.stderr.splitlines() if line.startswith(("I: ", "D: "))
            and line[3:].startswith(GREPPED)]  # fmt: skip


def both(scp: StorageScp, *args: str | Path, statuses: tuple[int, ...] = ()) -> tuple[Run, Run]:
    """storescu, then ``dispatch send``, with ``args`` against the session peer, which
    answers ``statuses`` (then success) to each."""

    def setup(peer: StorageScp) -> None:
        peer.respond(*statuses)

    dcmtk = observe(run_storescu, scp, *args, setup=setup).run
    ours = observe(run_dispatch, scp, *args, setup=setup).run
    return dcmtk, ours


@pytest.mark.parametrize(
    ("statuses", "options"),
    [
        ((), []),
        ((0xB000,), []),
        ((0x0107,), []),
        ((0xA700,), []),
        ((0xA700,), ["-nh"]),
        ((0xC123,), ["-nh"]),
        ((0x0122,), ["-nh"]),
    ],
    ids=["success", "warning", "warning-0107", "refused-halt", "refused", "error", "no-class"],
)
def test_verbose_lines_are_storescus(
    scp: StorageScp, files: list[Path], statuses: tuple[int, ...], options: list[str]
) -> None:
    dcmtk, ours = both(scp, "-v", *options, *files, statuses=statuses)
    assert ours.code == dcmtk.code, ours.stderr
    assert grepped(ours) == grepped(dcmtk), ours.stderr
    assert "I: Sending Store Request (MsgID 1, CT)" in ours.stderr
    if not (statuses and options == [] and statuses[0] >= 0xA000):
        assert "I: Sending Store Request (MsgID 2, MR)" in ours.stderr


#: Lines of a dump that name the sender itself, which differ by design.
OURS_ONLY = re.compile(r"^[DI]: Our Implementation (Class UID|Version Name):")


def sections(run: Run) -> list[list[str]]:
    """Each dumped section (association or DIMSE message): its lines from the BEGIN
    (or OUTGOING / INCOMING) marker to the END marker, but the sender's own identity."""
    found: list[list[str]] = []
    current: list[str] | None = None
    for line in run.stderr.splitlines():
        if re.match(r"^[DI]: =+ (BEGIN A-ASSOCIATE-|OUTGOING DIMSE|INCOMING DIMSE)", line):
            current = []
        if current is not None and not OURS_ONLY.match(line):
            current.append(line)
        if current is not None and re.match(r"^[DI]: =+ END ", line):
            found.append(current)
            current = None
    return found


def test_debug_dumps_are_storescus(scp: StorageScp, files: list[Path]) -> None:
    dcmtk, ours = both(scp, "-d", "-R", *files, statuses=(0xA700,))
    assert ours.code == dcmtk.code == 0xA7, ours.stderr
    expected = sections(dcmtk)
    # The A-ASSOCIATE-RQ and -AC, the C-STORE-RQ and its RSP (halted after it).
    assert [s[0][3:13] for s in expected] == ["=" * 10] * 4
    assert sections(ours) == expected
    assert "D: DIMSE Status                  : 0xa700: Refused: Out of resources" in ours.stderr
    assert "I: Received Store Response" in ours.stderr.splitlines()
    assert "D: Transport connection: TCP/IP, unencrypted." in dcmtk.stderr.splitlines()
    assert "D: Transport connection: TCP/IP, unencrypted." in ours.stderr.splitlines()
    assert grepped(ours) == grepped(dcmtk)


def test_debug_dumps_name_rejected_contexts_as_storescu(scp: StorageScp, files: list[Path]) -> None:
    # The peer takes MR images only, in implicit VR: the CT contexts are rejected
    # (abstract syntax), and the MR context of explicit VR little endian only
    # (transfer syntaxes).
    def setup(peer: StorageScp) -> None:
        peer.accept_only(
            transfer_syntaxes=["1.2.840.10008.1.2"], abstract_syntaxes=[MRImageStorage]
        )

    dcmtk = observe(run_storescu, scp, "-d", "-R", "-nh", *files, setup=setup).run
    ours = observe(run_dispatch, scp, "-d", "-R", "-nh", *files, setup=setup).run
    assert sections(ours)[:2] == sections(dcmtk)[:2]
    negotiated = "\n".join(sections(ours)[1])
    assert "(Accepted)" in negotiated
    assert "(Abstract Syntax Not Supported)" in negotiated
    assert "(Transfer Syntaxes Not Supported)" in negotiated


def test_verbose_pc_shows_the_association_at_info_level(scp: StorageScp, files: list[Path]) -> None:
    dcmtk, ours = both(scp, "-v", "+v", "-R", *files)
    assert ours.code == dcmtk.code == 0
    assert sections(ours) == sections(dcmtk)
    assert "I: Request Parameters:" in ours.stderr.splitlines()
    assert "I: Association Parameters Negotiated:" in ours.stderr.splitlines()
    assert "I: ====================== BEGIN A-ASSOCIATE-RQ =====================" in ours.stderr
    assert not [line for line in ours.stderr.splitlines() if line.startswith("D: ")]


def test_verbose_alone_shows_no_dump(scp: StorageScp, files: list[Path]) -> None:
    run = observe(run_dispatch, scp, "-v", *files).run
    assert run.code == 0
    assert "A-ASSOCIATE" not in run.stderr
    assert "DIMSE MESSAGE" not in run.stderr


# -- errors said once ----------------------------------------------------------------------


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    return path


def test_a_bad_file_in_halt_mode_is_reported_once(
    scp: StorageScp, files: list[Path], text_file: Path
) -> None:
    run = observe(run_dispatch, scp, text_file, *files).run
    assert run.code == 1
    errors = [line for line in run.stderr.splitlines() if line.startswith(("E: ", "F: "))]
    assert len(errors) == 1, run.stderr
    assert str(text_file) in errors[0]


def test_a_failure_status_in_halt_mode_is_reported_once(scp: StorageScp, files: list[Path]) -> None:
    def setup(peer: StorageScp) -> None:
        peer.respond(0xA700)

    run = observe(run_dispatch, scp, *files, setup=setup).run
    assert run.code == 0xA7
    errors = [line for line in run.stderr.splitlines() if line.startswith(("E: ", "F: "))]
    assert errors == [f"E: Store Failed, file: {files[0]}: 0xA700 (Refused: out of resources)"]


def test_a_text_file_is_not_a_dicom_file(
    scp: StorageScp, files: list[Path], text_file: Path
) -> None:
    run = observe(run_dispatch, scp, "-nh", text_file, files[0]).run
    assert run.code == 0
    assert f"{text_file}: not a DICOM file" in run.stderr
    assert "stray bytes" not in run.output
    assert "not sent: not a DICOM file" in run.stdout


def test_a_text_file_read_first_is_not_a_dicom_file(
    scp: StorageScp, files: list[Path], text_file: Path
) -> None:
    run = observe(run_dispatch, scp, "-R", text_file, files[0], associations=0).run
    assert run.code == 1
    assert f"F: Bad DICOM file: {text_file}: not a DICOM file" in run.stderr.splitlines()[-1]
    assert "bad DICOM file" not in run.stderr


def test_verbose_names_a_bad_file_before_its_error_as_storescu(
    scp: StorageScp, files: list[Path], text_file: Path
) -> None:
    dcmtk, ours = both(scp, "-v", "-nh", text_file, files[0])
    for run in (dcmtk, ours):
        lines = run.stderr.splitlines()
        sending = lines.index(f"I: Sending file: {text_file}")
        assert lines[sending + 1].startswith("E: "), run.stderr
        assert str(text_file) in lines[sending + 1]


def test_debug_dump_of_roles_extended_negotiation_and_identity_is_storescus(
    scp: StorageScp, files: list[Path], tmp_path: Path
) -> None:
    from tests.cli.test_profiles_cli import PROFILE

    profile = tmp_path / "profiles.cfg"
    profile.write_text(PROFILE)
    args = ("-d", "-xf", profile, "Mine", "-usr", "alice", files[0])
    dcmtk, ours = both(scp, *args)
    assert ours.code == dcmtk.code == 0, ours.stderr
    theirs, mine = sections(dcmtk), sections(ours)
    assert mine == theirs
    request = "\n".join(mine[0])
    assert "D:     Proposed SCP/SCU Role: SCP/SCU" in request
    assert "D:   =MRImageStorage (1.2.840.10008.5.1.4.1.1.4)" in request
    assert "D:   Username: [alice]" in request
