"""``-xf FILE PROFILE`` and ``+cl`` on the command line, against real peers: what
reaches the wire equals storescu's, errors stop the run before connecting, and every
shipped profile is accepted by DCMTK's storescp."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
from pydicom.uid import (
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
)

from dispatch.profiles import ProfileFile
from tests.cli.conftest import (
    observe,
    observe_both,
    run_dispatch,
    run_dispatch_process,
    run_storescu,
)
from tests.conftest import StorescpFactory
from tests.support.dicom_files import make_file
from tests.support.programs import require_reference
from tests.support.scp import StorageScp

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "config" / "storescu.cfg"

#: CT proposed three ways, with role selection and extended negotiation for it and MR.
PROFILE = """\
[[TransferSyntaxes]]
[JPEG]
TransferSyntax1 = JPEGLossless:Non-hierarchical-1stOrderPrediction
[Implicit]
TransferSyntax1 = LittleEndianImplicit
[Explicit]
TransferSyntax1 = LittleEndianExplicit
TransferSyntax2 = BigEndianExplicit
[[PresentationContexts]]
[Contexts]
PresentationContext1 = CTImageStorage\\JPEG
PresentationContext2 = CTImageStorage\\Implicit
PresentationContext3 = CTImageStorage\\Explicit
PresentationContext4 = MRImageStorage\\Explicit
[[SCPSCURoleSelection]]
[Roles]
Role1 = CTImageStorage\\SCU
Role2 = MRImageStorage\\BOTH
[[ExtendedNegotiation]]
[Ext]
ExtendedNegotiation1 = MRImageStorage\\0100ab
[[Profiles]]
[Mine]
PresentationContexts = Contexts
SCPSCURoleSelection = Roles
ExtendedNegotiation = Ext
"""


@pytest.fixture
def profile_file(tmp_path: Path) -> Path:
    path = tmp_path / "profiles.cfg"
    path.write_text(PROFILE)
    return path


@pytest.fixture
def ct(tmp_path: Path) -> Path:
    return make_file(tmp_path / "ct.dcm", ts="explicit")


def test_proposed_contexts_roles_and_extended_items_equal_storescus(
    scp: StorageScp, profile_file: Path, ct: Path
) -> None:
    theirs, ours = observe_both(scp, "-xf", profile_file, "mine", ct)
    assert theirs.run.code == ours.run.code == 0, ours.run.output
    assert ours.association.proposed == theirs.association.proposed
    assert [c.context_id for c in ours.association.proposed] == [1, 3, 5, 7]
    assert ours.association.roles == theirs.association.roles
    # As DCMTK: one role item per presentation context of the class.
    assert ours.association.roles == (
        *[(CTImageStorage, True, False)] * 3,
        (MRImageStorage, True, True),
    )
    assert ours.association.extended == theirs.association.extended
    assert ours.association.extended == ((MRImageStorage, bytes([1, 0, 0xAB])),)


@pytest.mark.parametrize("name", ["storescu-3.6.7.cfg", "shipped"])
def test_sample_and_shipped_default_profiles_propose_what_storescu_does(
    scp: StorageScp, ct: Path, name: str
) -> None:
    path = SHIPPED if name == "shipped" else require_reference(name)
    theirs, ours = observe_both(scp, "-xf", path, "Default", ct)
    assert theirs.run.code == ours.run.code == 0, ours.run.output
    assert ours.association.proposed == theirs.association.proposed
    assert len(ours.association.proposed) == 128


@pytest.mark.parametrize(
    "accepted",
    [
        None,
        (ImplicitVRLittleEndian,),
        (ExplicitVRLittleEndian, ImplicitVRLittleEndian),
    ],
)
def test_context_chosen_per_file_equals_storescus(
    scp: StorageScp, profile_file: Path, ct: Path, accepted: tuple[str, ...] | None
) -> None:
    def setup(peer: StorageScp) -> None:
        if accepted is not None:
            peer.accept_only(transfer_syntaxes=accepted)

    theirs, ours = observe_both(scp, "-xf", profile_file, "Mine", ct, setup=setup)
    assert theirs.run.code == ours.run.code == 0, ours.run.output
    assert len(ours.stores) == len(theirs.stores) == 1
    assert ours.stores[0].context_id == theirs.stores[0].context_id
    assert ours.stores[0].transfer_syntax == theirs.stores[0].transfer_syntax
    assert ours.stores[0].dataset() == theirs.stores[0].dataset()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["-xs"], "--config-file not allowed with --propose-lossless"),
        (["-xd"], "--config-file not allowed with --propose-deflated"),
        (["-xi", "-xe"], "--config-file not allowed with --propose-little"),
        (["-R"], "--config-file not allowed with --required"),
        (["+C"], "--config-file not allowed with --combine"),
    ],
)
def test_config_file_conflicts_are_storescus(
    scp: StorageScp, profile_file: Path, ct: Path, options: list[str], message: str
) -> None:
    for runner in (run_storescu, run_dispatch):
        run = runner(scp.host, scp.port, "-xf", profile_file, "Mine", *options, ct)
        assert run.code == 1
        assert f"error: {message}" in run.stderr, (run.runner, run.stderr)
    assert scp.associations == []


def test_config_file_with_the_default_proposal_is_allowed(
    scp: StorageScp, profile_file: Path, ct: Path
) -> None:
    done = observe(run_dispatch, scp, "-x=", "-xf", profile_file, "Mine", ct)
    assert done.run.code == 0, done.run.output


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["+cl", "5"], "--compression-level only allowed with --propose-deflated or --config-file"),
        (["-xs", "+cl", "5"], "--compression-level only allowed with --propose-deflated"),
        (["-xd", "+cl", "10"], "Invalid value for option --compression-level (overflow: 10)"),
    ],
)
def test_compression_level_errors_are_storescus(
    scp: StorageScp, ct: Path, options: list[str], message: str
) -> None:
    for runner in (run_storescu, run_dispatch):
        run = runner(scp.host, scp.port, *options, ct)
        assert run.code == 1
        assert f"error: {message}" in run.stderr, (run.runner, run.stderr)


def test_bad_profile_file_is_one_line_and_exit_1_before_connecting(
    scp: StorageScp, tmp_path: Path, ct: Path
) -> None:
    bad = tmp_path / "bad.cfg"
    bad.write_text(PROFILE.replace("\\BOTH", "\\BOTHER"))
    cases: tuple[list[str | Path], ...] = (
        ["-xf", bad, "Mine"],
        ["-xf", bad.with_name("none.cfg"), "Mine"],
        ["-xf", SHIPPED, "NoSuchProfile"],
    )
    for args in cases:
        run = run_dispatch(scp.host, scp.port, *args, ct)
        assert run.code == 1
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1, run.stderr
        assert "Traceback" not in run.stderr
    assert (
        "[[SCPSCURoleSelection]] [Roles] Role2"
        in run_dispatch(scp.host, scp.port, "-xf", bad, "Mine", ct).stderr
    )
    assert scp.associations == []


def test_submit_takes_the_profile_too(scp: StorageScp, profile_file: Path, ct: Path) -> None:
    from dispatch.cli.main import main

    scp.reset()
    code = main(["submit", "--jobs", "1", "--no-wait", "-q", scp.host, str(scp.port),
                 "-xf", str(profile_file), "Mine", str(ct)])  # fmt: skip
    assert code == 0
    record = scp.wait_for_associations(1)[0]
    assert [c.context_id for c in record.proposed] == [1, 3, 5, 7]
    assert record.roles == (*[(CTImageStorage, True, False)] * 3, (MRImageStorage, True, True))
    assert record.extended == ((MRImageStorage, bytes([1, 0, 0xAB])),)


SHIPPED_PROFILES = ProfileFile.read(SHIPPED).profile_names if SHIPPED.exists() else ()


@pytest.mark.parametrize("name", SHIPPED_PROFILES)
def test_each_shipped_profile_is_accepted_by_storescp(
    storescp: StorescpFactory, tmp_path: Path, name: str
) -> None:
    profile = ProfileFile.read(SHIPPED).profile(name)
    # A file of the profile's first class, sent uncompressed.
    sop_class = profile.contexts[0].abstract_syntax
    path = make_file(tmp_path / "in.dcm", sop_class_uid=sop_class)
    peer = storescp("+xa")
    run = run_dispatch("-ll", "trace", "127.0.0.1", peer.port, "-xf", SHIPPED, name, path)
    assert run.code == 0, run.output
    assert len(peer.files()) == 1
    # Every proposed context was accepted (storescp +xa knows every class and syntax).
    verdicts = [line for line in run.stderr.splitlines() if line.startswith("T: Context ")]
    assert len(verdicts) == len(profile.contexts), run.stderr
    assert all(" accepted " in line for line in verdicts), run.stderr


def test_compression_level_changes_the_deflated_size(scp: StorageScp, tmp_path: Path) -> None:
    path = make_file(tmp_path / "big.dcm", size=65536)
    sizes = {}
    for level in ("0", "9"):
        done = observe(run_dispatch, scp, "-xd", "+cl", level, path)
        assert done.run.code == 0, done.run.output
        (store,) = done.stores
        assert store.transfer_syntax == DeflatedExplicitVRLittleEndian
        sizes[level] = len(store.data)
        inflated = zlib.decompress(store.data, -zlib.MAX_WBITS)
        plain = observe(run_dispatch, scp, "-xe", path).stores[0]
        assert inflated == plain.data
    assert sizes["9"] < sizes["0"]


def test_the_shipped_profile_file_is_found_by_its_name_from_any_directory(
    scp: StorageScp, tmp_path: Path, ct: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    scp.reset()
    run = run_dispatch_process("-xf", "storescu.cfg", "CT", scp.host, scp.port, ct, cwd=elsewhere)
    assert run.code == 0, run.output
    assert len(scp.stores) == 1


def test_a_missing_profile_file_says_where_the_shipped_ones_are(
    scp: StorageScp, tmp_path: Path, ct: Path
) -> None:
    run = run_dispatch("-xf", tmp_path / "nowhere.cfg", "CT", scp.host, scp.port, ct)
    assert run.code == 1
    (line,) = [x for x in run.stderr.splitlines() if "nowhere.cfg" in x]
    assert "-xf storescu.cfg PROFILE" in line
    assert str(Path("dispatch") / "shipped" / "storescu.cfg") in line
