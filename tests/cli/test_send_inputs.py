"""Bad and unusual inputs: never a traceback, one line naming the file, and the same
exit code and files sent as DCMTK's storescu, in halt and ``--no-halt`` mode."""

from __future__ import annotations

import json
import os
import socket
import struct
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from dispatch.cli.cmdline import OptionSpec
from dispatch.cli.options import SEND_SPEC
from tests.cli.conftest import (
    Observed,
    Runner,
    observe,
    observe_both,
    run_dispatch,
    run_dispatch_process,
    run_storescu,
)
from tests.net.rawpeer import RawPeer, accept_all, read_pdu
from tests.support.dicom_files import make_dataset, make_file, pydicom_file
from tests.support.scp import StorageScp

MODES = {"halt": [], "no-halt": ["-nh"]}


def write_bare(path: Path, *, implicit: bool = False, ds: Dataset | None = None) -> Path:
    """A CT data set without preamble or meta header, little endian."""
    data = ds if ds is not None else make_dataset()
    data.save_as(path, implicit_vr=implicit, little_endian=True)
    assert path.read_bytes()[128:132] != b"DICM"
    return path


@pytest.fixture
def good(tmp_path: Path) -> Path:
    """A valid file sent after the bad one: sent only with --no-halt."""
    return make_file(tmp_path / "good.dcm")


def bad_inputs(folder: Path) -> dict[str, Path]:
    """Files storescu reads as bad DICOM (or as lacking the UIDs a request needs)."""
    folder.mkdir(parents=True, exist_ok=True)
    garbage = folder / "garbage.dcm"
    garbage.write_bytes(bytes((i * 37 + 11) % 256 for i in range(300)))
    text = folder / "text.dcm"
    text.write_text("this is not a DICOM file\n")
    ds = make_dataset()
    del ds.SOPInstanceUID
    no_uid = write_bare(folder / "no-uid.dcm", ds=ds)
    return {
        "garbage": garbage,
        "text": text,
        "truncated": pydicom_file("MR_truncated.dcm"),
        "no_meta-pydicom": pydicom_file("no_meta.dcm"),
        "no-uid": no_uid,
    }


def assert_one_line_naming(run_stderr: str, path: Path) -> None:
    assert "Traceback" not in run_stderr
    assert any(str(path) in line for line in run_stderr.splitlines()), run_stderr


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("kind", ["garbage", "text", "truncated", "no_meta-pydicom", "no-uid"])
def test_bad_file(
    send: Runner, scp: StorageScp, tmp_path: Path, good: Path, kind: str, mode: str
) -> None:
    bad = bad_inputs(tmp_path / "bad")[kind]
    seen = observe(send, scp, *MODES[mode], bad, good)
    if mode == "halt":
        assert seen.run.code == 1, seen.run.output
        assert seen.stores == []
        assert seen.association.ended != "released"
    else:
        assert seen.run.code == 0, seen.run.output
        assert [s.sop_instance_uid for s in seen.stores] == [sop_instance(good)]
        assert seen.association.ended == "released"
    if seen.run.runner == "dispatch":
        assert_one_line_naming(seen.run.stderr, bad)


def sop_instance(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True, force=True).SOPInstanceUID)


def test_bad_file_with_required_is_fatal_before_associating(
    send: Runner, scp: StorageScp, tmp_path: Path, good: Path
) -> None:
    """-R reads every file first: a bad one ends the run before any association."""
    bad = bad_inputs(tmp_path / "bad")["garbage"]
    seen = observe(send, scp, "-R", bad, good, associations=0)
    assert seen.run.code == 1, seen.run.output
    assert seen.associations == []


def test_report_has_one_line_per_input_whatever_went_wrong(
    scp: StorageScp, tmp_path: Path, good: Path
) -> None:
    bad = bad_inputs(tmp_path / "bad")
    folder = tmp_path / "folder"
    folder.mkdir()
    missing = tmp_path / "missing.dcm"
    report = tmp_path / "report.jsonl"
    inputs = [bad["garbage"], missing, folder, bad["no-uid"], good]
    seen = observe(run_dispatch, scp, "-nh", "--report", report, *inputs)
    assert seen.run.code == 0, seen.run.output
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    by_path = {line["path"]: line for line in lines}
    assert len(lines) == len(by_path) == len(inputs)
    assert {str(p) for p in inputs} == set(by_path)
    assert by_path[str(good)]["outcome"] == "stored"
    for path in inputs[:-1]:
        assert by_path[str(path)]["outcome"] == "not_sent"
        assert by_path[str(path)]["reason"]


def test_bad_file_in_a_real_process(scp: StorageScp, tmp_path: Path, good: Path) -> None:
    bad = bad_inputs(tmp_path / "bad")["garbage"]
    scp.reset()
    run = run_dispatch_process(scp.host, scp.port, bad, good)
    assert run.code == 1, run.output
    assert_one_line_naming(run.stderr, bad)
    assert scp.stores == []


# -- files without meta header ---------------------------------------------------------


@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
def test_bare_data_set_is_read_by_default(scp: StorageScp, tmp_path: Path, implicit: bool) -> None:
    bare = write_bare(tmp_path / "bare.dcm", implicit=implicit)
    dcmtk, ours = observe_both(scp, bare)
    assert (dcmtk.run.code, ours.run.code) == (0, 0), ours.run.output
    assert [s.sop_instance_uid for s in ours.stores] == [sop_instance(bare)]
    assert [s.transfer_syntax for s in ours.stores] == [s.transfer_syntax for s in dcmtk.stores]


def test_pydicom_bare_data_set_with_required(send: Runner, scp: StorageScp) -> None:
    """An RT Ion Plan without meta header: not in the default list, proposed by -R."""
    bare = pydicom_file("ExplVR_LitEndNoMeta.dcm")
    seen = observe(send, scp, "-R", bare)
    assert seen.run.code == 0, seen.run.output
    assert [s.transfer_syntax for s in seen.stores] == [ExplicitVRLittleEndian]


@pytest.mark.parametrize("mode", sorted(MODES))
def test_read_file_only_refuses_a_bare_data_set(
    send: Runner, scp: StorageScp, tmp_path: Path, good: Path, mode: str
) -> None:
    bare = write_bare(tmp_path / "bare.dcm")
    seen = observe(send, scp, "+fo", *MODES[mode], bare, good)
    if mode == "halt":
        assert seen.run.code == 1, seen.run.output
        assert seen.stores == []
    else:
        assert seen.run.code == 0, seen.run.output
        assert [s.sop_instance_uid for s in seen.stores] == [sop_instance(good)]
    if seen.run.runner == "dispatch":
        assert_one_line_naming(seen.run.stderr, bare)
        assert "meta" in seen.run.stderr


@pytest.mark.parametrize("mode", sorted(MODES))
def test_read_dataset_sends_a_bare_data_set_and_refuses_a_part10_file(
    send: Runner, scp: StorageScp, tmp_path: Path, good: Path, mode: str
) -> None:
    bare = write_bare(tmp_path / "bare.dcm")
    seen = observe(send, scp, "-f", *MODES[mode], bare, good)
    assert [s.sop_instance_uid for s in seen.stores] == [sop_instance(bare)]
    assert seen.run.code == (1 if mode == "halt" else 0), seen.run.output
    if seen.run.runner == "dispatch":
        assert_one_line_naming(seen.run.stderr, good)


# -- paths that cannot be read ---------------------------------------------------------


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("kind", ["missing", "dangling-link"])
def test_unreadable_path(
    send: Runner, scp: StorageScp, tmp_path: Path, good: Path, kind: str, mode: str
) -> None:
    path = tmp_path / "nowhere.dcm"
    if kind == "dangling-link":
        path = tmp_path / "link.dcm"
        os.symlink(tmp_path / "gone.dcm", path)
    halt = mode == "halt"
    # storescu checks every input before associating: in halt mode there is none.
    seen = observe(send, scp, *MODES[mode], path, good, associations=0 if halt else 1)
    if halt:
        assert seen.run.code == 1, seen.run.output
        assert seen.associations == []
    else:
        assert seen.run.code == 0, seen.run.output
        assert [s.sop_instance_uid for s in seen.stores] == [sop_instance(good)]
    if seen.run.runner == "dispatch":
        assert_one_line_naming(seen.run.stderr, path)


# -- directories -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", sorted(MODES))
def test_directory_without_scan_is_skipped_with_a_warning(
    send: Runner, scp: StorageScp, tmp_path: Path, good: Path, mode: str
) -> None:
    folder = tmp_path / "folder"
    make_file(folder / "inside.dcm")
    seen = observe(send, scp, *MODES[mode], folder, good)
    assert seen.run.code == 0, seen.run.output
    assert [s.sop_instance_uid for s in seen.stores] == [sop_instance(good)]
    assert "--scan-directories" in seen.run.stderr
    if seen.run.runner == "dispatch":
        assert_one_line_naming(seen.run.stderr, folder)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_only_a_directory_without_scan_means_no_input_files(
    send: Runner, scp: StorageScp, tmp_path: Path, mode: str
) -> None:
    folder = tmp_path / "folder"
    make_file(folder / "inside.dcm")
    seen = observe(send, scp, *MODES[mode], folder, associations=0)
    assert seen.run.code == 1, seen.run.output
    assert "no input files to be sent" in seen.run.stderr
    assert seen.associations == []


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """top/{a.dcm, b.img, sub/c.dcm, sub/deeper/d.dcm}."""
    top = tmp_path / "top"
    for name in ("a.dcm", "b.img", "sub/c.dcm", "sub/deeper/d.dcm"):
        make_file(top / name)
    return top


def names_sent(seen: Observed, top: Path) -> list[str]:
    by_uid = {sop_instance(p): p.relative_to(top).as_posix() for p in top.rglob("*") if p.is_file()}
    return [by_uid[s.sop_instance_uid] for s in seen.stores]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["+sd"], {"a.dcm", "b.img"}),
        (["+sd", "+sp", "*.dcm"], {"a.dcm"}),
        (["+sd", "+r"], {"a.dcm", "b.img", "sub/c.dcm", "sub/deeper/d.dcm"}),
        (["+sd", "+r", "+sp", "*.dcm"], {"a.dcm", "sub/c.dcm", "sub/deeper/d.dcm"}),
        (["+sd", "+r", "-r"], {"a.dcm", "b.img"}),
    ],
    ids=["sd", "sd-sp", "sd-r", "sd-r-sp", "sd-r-norecurse"],
)
def test_scan_directories(
    scp: StorageScp, tree: Path, options: list[str], expected: set[str]
) -> None:
    dcmtk, ours = observe_both(scp, *options, tree)
    assert (dcmtk.run.code, ours.run.code) == (0, 0), ours.run.output
    assert set(names_sent(ours, tree)) == expected
    # Both list directories in the order the file system returns them.
    assert names_sent(ours, tree) == names_sent(dcmtk, tree)


def test_pattern_does_not_filter_file_arguments(send: Runner, scp: StorageScp, tree: Path) -> None:
    seen = observe(send, scp, "+sd", "+sp", "*.dcm", tree / "b.img")
    assert seen.run.code == 0, seen.run.output
    assert names_sent(seen, tree) == ["b.img"]


# -- rename, UID padding ---------------------------------------------------------------


def test_rename_marks_done_and_bad(send: Runner, scp: StorageScp, tmp_path: Path) -> None:
    first = make_file(tmp_path / "first.dcm")
    second = make_file(tmp_path / "second.dcm")
    third = make_file(tmp_path / "third.dcm")
    seen = observe(
        send, scp, "+rn", "-nh", first, second, third, setup=lambda p: p.respond(0, 0xA700)
    )
    assert seen.run.code == 0, seen.run.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "first.dcm.done",
        "second.dcm.bad",
        "third.dcm.done",
    ]


def test_rename_of_a_halted_run(send: Runner, scp: StorageScp, tmp_path: Path) -> None:
    first = make_file(tmp_path / "first.dcm")
    second = make_file(tmp_path / "second.dcm")
    seen = observe(send, scp, "+rn", first, second, setup=lambda p: p.respond(0xC000))
    assert seen.run.code == 192, seen.run.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.dcm.bad", "second.dcm"]


def test_rename_with_repeat_finds_the_file_gone(
    send: Runner, scp: StorageScp, tmp_path: Path
) -> None:
    """The first repetition renames the file; the second cannot read it: a bad file."""
    first = make_file(tmp_path / "x.dcm")
    second = make_file(tmp_path / "y.dcm")
    seen = observe(send, scp, "--repeat", "2", "+rn", first, second)
    assert seen.run.code == 1, seen.run.output
    assert len(seen.stores) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.dcm.done", "y.dcm"]


def test_only_missing_files_with_no_halt_associate_and_send_nothing(
    send: Runner, scp: StorageScp, tmp_path: Path
) -> None:
    """ "No input files" judges the arguments, not what survives the access check."""
    seen = observe(send, scp, "-nh", tmp_path / "a.dcm", tmp_path / "b.dcm")
    assert seen.run.code == 0, seen.run.output
    assert seen.stores == []
    assert seen.association.ended == "released"


def test_required_with_no_readable_file_exits_1(
    send: Runner, scp: StorageScp, tmp_path: Path
) -> None:
    garbage = bad_inputs(tmp_path / "bad")["garbage"]
    seen = observe(send, scp, "-nh", "-R", tmp_path / "a.dcm", garbage, associations=0)
    assert seen.run.code == 1, seen.run.output
    assert seen.stores == []


PADDED_INSTANCE = "1.2.826.0.1.3680043.8.498.1 "


@pytest.fixture
def padded(tmp_path: Path) -> Path:
    """A CT file whose SOP Class and Instance UIDs end in a space (even length)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pydicom: "Invalid value for VR UI"
        return make_file(
            tmp_path / "padded.dcm",
            sop_class_uid=CTImageStorage + " ",
            sop_instance_uid=PADDED_INSTANCE,
        )


def affected_uids(command: bytes) -> tuple[bytes, bytes]:
    """Affected SOP Class and Instance UIDs of a command set (implicit VR LE), raw."""
    found: dict[int, bytes] = {}
    pos = 0
    while pos + 8 <= len(command):
        group, element, length = struct.unpack_from("<HHI", command, pos)
        found[(group << 16) | element] = command[pos + 8 : pos + 8 + length]
        pos += 8 + length
    return found[0x00000002], found[0x00001000]


def capture_command(conn: socket.socket, commands: list[bytes]) -> None:
    """Accept the association, keep the first C-STORE command set, abort once the
    data set has arrived."""
    _, rq = read_pdu(conn)
    conn.sendall(accept_all(rq))
    command = b""
    while True:
        pdu_type, pdu = read_pdu(conn)
        assert pdu_type == 0x04, pdu_type
        pos = 6
        while pos < len(pdu):
            length = struct.unpack_from(">I", pdu, pos)[0]
            control = pdu[pos + 5]
            if control & 0x01:
                command += pdu[pos + 6 : pos + 4 + length]
                if control & 0x02:
                    commands.append(command)
            elif control & 0x02:
                # The whole data set is in: the sender now waits for a response, and
                # an A-ABORT cannot meet a sender still writing (a broken pipe).
                conn.sendall(bytes([0x07, 0, 0, 0, 0, 4, 0, 0, 0, 0]))
                return
            pos += 4 + length


def wire_uids(runner: Runner, *args: str | Path) -> tuple[bytes, bytes]:
    """The raw Affected SOP Class and Instance UIDs `runner` puts in its first request."""
    commands: list[bytes] = []
    raw = RawPeer(lambda conn: capture_command(conn, commands))
    run = runner(*args[:-1], "127.0.0.1", raw.port, args[-1])
    raw.join()
    assert run.code == 10, run.output  # the raw peer aborts once it has the command
    return affected_uids(commands[0])


@pytest.mark.parametrize("options", [["-up"], []], ids=["up", "default"])
def test_uid_padding_on_the_wire_equals_storescus(padded: Path, options: list[str]) -> None:
    """-up strips the trailing space from the UIDs of the C-STORE request. (DCMTK 3.6.7
    drops it from a UI value read from a file even without -up: the bytes on the wire
    are the same either way, and so are ours.)"""
    theirs = wire_uids(run_storescu, *options, padded)
    ours = wire_uids(run_dispatch, *options, padded)
    assert ours == theirs
    assert ours[0].rstrip(b"\0") == CTImageStorage.encode()
    assert ours[1].rstrip(b"\0") == PADDED_INSTANCE[:-1].encode()


# -- options refused -----------------------------------------------------------------


#: Options recognised but not (yet) supported. Read from the option table, since
#: other issues turn refused options into supported ones one after another.
REFUSED = [option for option in SEND_SPEC.options if option.refused]


@pytest.mark.parametrize("option", REFUSED, ids=lambda option: option.names[0])
def test_refused_options_exit_1_naming_the_option(
    scp: StorageScp, tmp_path: Path, option: OptionSpec
) -> None:
    file = make_file(tmp_path / "a.dcm")
    given = [option.names[0], *["1"] * option.nargs]
    seen = observe(run_dispatch, scp, *given, file, associations=0)
    assert seen.run.code == 1
    lines = seen.run.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert any(name in lines[0] for name in option.names), lines[0]
    assert seen.associations == []
    assert seen.run.stdout == ""


# -- files that are not regular files ----------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_fifo_is_a_bad_file_and_never_waited_on(
    scp: StorageScp, tmp_path: Path, good: Path, mode: str
) -> None:
    # storescu 3.6.7 waits for a writer forever on a FIFO, in either mode; dispatch
    # refuses it when its turn comes, as a bad file: halt stops there, -nh sends the rest.
    first = make_file(tmp_path / "first.dcm")
    fifo = tmp_path / "pipe.dcm"
    os.mkfifo(fifo)
    report = tmp_path / "report.jsonl"
    args: list[str | Path | int] = [*MODES[mode], "--report", report, first, fifo, good]
    seen = observe(run_dispatch_process, scp, *args)
    lines = {line["path"]: line for line in map(json.loads, report.read_text().splitlines())}
    assert lines[str(first)]["outcome"] == "stored"
    assert lines[str(fifo)]["outcome"] == "not_sent"
    assert lines[str(fifo)]["reason"] == "not a regular file: a FIFO"
    named = [ln for ln in seen.run.stderr.splitlines() if str(fifo) in ln and "FIFO" in ln]
    assert named, seen.run.stderr
    if mode == "halt":
        assert seen.run.code == 1
        assert lines[str(good)]["outcome"] == "not_sent"
        assert len(seen.stores) == 1
    else:
        assert seen.run.code == 0
        assert lines[str(good)]["outcome"] == "stored"
        assert len(seen.stores) == 2


# -- file names in log lines ---------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_newline_in_a_file_name_cannot_forge_a_log_line(
    scp: StorageScp, tmp_path: Path, mode: str
) -> None:
    forged = "F: forged line"
    good = make_file(tmp_path / f"good\n{forged}.dcm")
    bad = tmp_path / f"bad\n{forged}.dcm"
    bad.write_text("not DICOM")
    seen = observe(run_dispatch, scp, "-v", *MODES[mode], good, bad)
    lines = seen.run.stderr.splitlines()
    assert not [line for line in lines if line.startswith(forged)], seen.run.stderr
    assert f"I: Sending file: {tmp_path}/good\\n{forged}.dcm" in lines
    assert any(f"{tmp_path}/bad\\n{forged}.dcm" in line for line in lines), seen.run.stderr
