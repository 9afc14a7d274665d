"""DCMTK profile files (-xf): parsing, every validation rule, the samples and our own."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from dispatch.errors import UsageError
from dispatch.jobs.model import JobSpec
from dispatch.profiles import ProfileFile, load_profile
from dispatch.settings import (
    AssociationSettings,
    ExtendedNegotiation,
    PresentationContext,
    RoleSelection,
    SendPolicy,
)
from tests.support.programs import require_reference

SHIPPED = Path(__file__).resolve().parents[1] / "config" / "storescu.cfg"

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
EXPLICIT = "1.2.840.10008.1.2.1"
IMPLICIT = "1.2.840.10008.1.2"

SYNTAXES = """\
[[TransferSyntaxes]]
[Uncompressed]
TransferSyntax1 = LittleEndianExplicit
TransferSyntax2 = LittleEndianImplicit
"""
CONTEXTS = """\
[[PresentationContexts]]
[Contexts]
PresentationContext1 = CTImageStorage\\Uncompressed
"""
PROFILES = """\
[[Profiles]]
[Default]
PresentationContexts = Contexts
"""


def write(tmp_path: Path, text: str, name: str = "test.cfg") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def sample(name: str) -> Path:
    return require_reference(name)


@pytest.mark.parametrize("name", ["storescu-3.6.7.cfg", "storescu-3.7.0.cfg"])
def test_dcmtk_sample_profiles_load(name: str) -> None:
    profile = load_profile(sample(name), "Default")
    assert len(profile.contexts) == 128
    assert [c.context_id for c in profile.contexts] == list(range(1, 256, 2))
    first, last = profile.contexts[0], profile.contexts[-1]
    # ComputedRadiographyImageStorage\JPEGBaseline ... VideoPhotographicImageStorage\MPEG2
    assert first == PresentationContext(1, "1.2.840.10008.5.1.4.1.1.1", ("1.2.840.10008.1.2.4.50",))
    assert last == PresentationContext(
        255, "1.2.840.10008.5.1.4.1.1.77.1.4.1", ("1.2.840.10008.1.2.4.100",)
    )
    uncompressed = profile.contexts[2]
    assert uncompressed.transfer_syntaxes == (EXPLICIT, "1.2.840.10008.1.2.2", IMPLICIT)
    assert profile.roles == () and profile.extended == ()


def test_installed_dcmtk_profile_file_loads() -> None:
    installed = Path("/etc/dcmtk/storescu.cfg")
    if not installed.exists():
        pytest.skip("DCMTK's storescu.cfg is not installed")
    assert (
        load_profile(installed, "default").contexts
        == load_profile(sample("storescu-3.6.7.cfg"), "Default").contexts
    )


def test_dcmtk_3_7_names_resolve(tmp_path: Path) -> None:
    # The 3.7.0 sample's [UncompressedEncapsulated] list uses a name 3.6.7 lacks.
    text = sample("storescu-3.7.0.cfg").read_text()
    text = text.replace("CTImageStorage\\Uncompressed", "CTImageStorage\\UncompressedEncapsulated")
    profile = load_profile(write(tmp_path, text), "Default")
    ct = [c for c in profile.contexts if c.abstract_syntax == CT]
    assert ct[-1].transfer_syntaxes == ("1.2.840.10008.1.2.1.98", EXPLICIT, IMPLICIT)


def test_names_uids_case_comments_and_labels_as_dcmtk(tmp_path: Path) -> None:
    text = """\
# a comment in column 1
[[transfersyntaxes]]
[ un compressed ]
transfersyntax1 = =LittleEndianExplicit
TRANSFERSYNTAX2 = 1.2.840.10008.1.2
[JPEG]
TransferSyntax1 = JPEGLossless:Non-hierarchical-1stOrderPrediction
TransferSyntax2 = JPEG2000LosslessOnly
TransferSyntax3 = JPEGLSLossy

[[PRESENTATIONCONTEXTS]]
[My List]
PresentationContext1 = CTImageStorage\\UNCOMPRESSED
PresentationContext2 = =MRImageStorage\\jpeg
PresentationContext3 = MultiframeTrueColorSecondaryCaptureImageStorage\\Uncompressed
PresentationContext4 = 1.2.3.4.5\\Uncompressed
[[Profiles]]
[My Profile]
presentationcontexts = mylist
"""
    profile = load_profile(write(tmp_path, text), "MYPROFILE")
    assert profile.contexts == (
        PresentationContext(1, CT, (EXPLICIT, IMPLICIT)),
        PresentationContext(
            3, MR, ("1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.81")
        ),
        PresentationContext(5, "1.2.840.10008.5.1.4.1.1.7.4", (EXPLICIT, IMPLICIT)),
        PresentationContext(7, "1.2.3.4.5", (EXPLICIT, IMPLICIT)),
    )


def test_roles_and_extended_negotiation_are_read(tmp_path: Path) -> None:
    text = (
        SYNTAXES
        + CONTEXTS
        + "PresentationContext2 = MRImageStorage\\Uncompressed\n"
        + "[[SCPSCURoleSelection]]\n[Roles]\nRole1 = MRImageStorage\\scp\n"
        + "Role2 = CTImageStorage\\Both\n"
        + "[[ExtendedNegotiation]]\n[Ext]\nExtendedNegotiation1 = CTImageStorage\\0100FFab\n"
        + "[[Profiles]]\n[Default]\nPresentationContexts = Contexts\n"
        + "SCPSCURoleSelection = Roles\nExtendedNegotiation = Ext\n"
    )
    profile = load_profile(write(tmp_path, text), "Default")
    # One role item per context of the class, in context order, as DCMTK sends them.
    assert profile.roles == (RoleSelection(CT, True, True), RoleSelection(MR, False, True))
    assert profile.extended == (ExtendedNegotiation(CT, bytes([1, 0, 0xFF, 0xAB])),)


def test_a_gap_in_numbered_keys_stops_reading_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = SYNTAXES + CONTEXTS + "PresentationContext3 = MRImageStorage\\Uncompressed\n" + PROFILES
    with caplog.at_level(logging.WARNING, logger="dispatch.profiles"):
        profile = load_profile(write(tmp_path, text), "Default")
    assert [c.abstract_syntax for c in profile.contexts] == [CT]
    assert "no PresentationContext2; PresentationContext3 ignored" in caplog.text
    assert "[[PresentationContexts]] [Contexts]" in caplog.text


def many_contexts(n: int) -> str:
    lines = "".join(f"PresentationContext{i} = 1.2.3.{i}\\Uncompressed\n" for i in range(1, n + 1))
    return SYNTAXES + "[[PresentationContexts]]\n[Contexts]\n" + lines + PROFILES


def test_128_contexts_are_allowed(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, many_contexts(128)), "Default")
    assert profile.contexts[-1].context_id == 255


ROLE_CT = "[[SCPSCURoleSelection]]\n[Roles]\nRole1 = CTImageStorage\\SCU\n"
EXT = "[[ExtendedNegotiation]]\n[Ext]\nExtendedNegotiation1 = CTImageStorage\\{}\n"
WITH_ROLES = PROFILES + "SCPSCURoleSelection = Roles\n"
WITH_EXT = PROFILES + "ExtendedNegotiation = Ext\n"

# (case, file text, profile, words the message must contain: section and key)
ERRORS = [
    ("no transfer syntaxes", CONTEXTS + PROFILES, "Default", ["[[TransferSyntaxes]]", "missing"]),
    ("no contexts", SYNTAXES + PROFILES, "Default", ["[[PresentationContexts]]", "missing"]),
    ("no profiles", SYNTAXES + CONTEXTS, "Default", ["[[Profiles]]", "missing"]),
    (
        "unknown syntax name",
        SYNTAXES.replace("LittleEndianImplicit", "LittleEndianFoo") + CONTEXTS + PROFILES,
        "Default",
        ["[[TransferSyntaxes]] [Uncompressed] TransferSyntax2", "'LittleEndianFoo'"],
    ),
    (
        "trailing comment is part of the value",
        SYNTAXES.replace("Implicit\n", "Implicit  # no\n") + CONTEXTS + PROFILES,
        "Default",
        ["[[TransferSyntaxes]] [Uncompressed] TransferSyntax2"],
    ),
    (
        "indented comment continues the value",
        SYNTAXES + "  # indented\n" + CONTEXTS + PROFILES,
        "Default",
        ["[[TransferSyntaxes]] [Uncompressed] TransferSyntax2", "# indented"],
    ),
    (
        "undefined syntax label",
        SYNTAXES + CONTEXTS.replace("\\Uncompressed", "\\Nope") + PROFILES,
        "Default",
        ["[[PresentationContexts]] [Contexts] PresentationContext1", "[Nope]"],
    ),
    (
        "invalid abstract syntax",
        SYNTAXES + CONTEXTS.replace("CTImageStorage", "CTImageStorageX") + PROFILES,
        "Default",
        ["[[PresentationContexts]] [Contexts] PresentationContext1", "CTImageStorageX"],
    ),
    (
        "missing backslash",
        SYNTAXES + CONTEXTS.replace("\\Uncompressed", "") + PROFILES,
        "Default",
        ["[[PresentationContexts]] [Contexts] PresentationContext1", "missing '\\'"],
    ),
    (
        "more than 128 contexts",
        many_contexts(129),
        "Default",
        ["[[PresentationContexts]] [Contexts] PresentationContext129", "129 entries"],
    ),
    (
        "bad role",
        SYNTAXES + CONTEXTS + ROLE_CT.replace("\\SCU", "\\FOO") + WITH_ROLES,
        "Default",
        ["[[SCPSCURoleSelection]] [Roles] Role1", "SCU, SCP or BOTH"],
    ),
    (
        "role twice",
        SYNTAXES + CONTEXTS + ROLE_CT + "Role2 = CTImageStorage\\SCP\n" + WITH_ROLES,
        "Default",
        ["[[SCPSCURoleSelection]] [Roles] Role2", "second role"],
    ),
    (
        "role for a class not proposed",
        SYNTAXES + CONTEXTS + ROLE_CT.replace("CTImage", "MRImage") + WITH_ROLES,
        "Default",
        ["[[SCPSCURoleSelection]] [Roles] Role1", MR, "[Contexts]"],
    ),
    (
        "undefined role list",
        SYNTAXES + CONTEXTS + ROLE_CT + WITH_ROLES.replace("= Roles", "= Nope"),
        "Default",
        ["[[Profiles]] [Default] SCPSCURoleSelection", "[Nope]"],
    ),
    (
        "odd extended negotiation",
        SYNTAXES + CONTEXTS + EXT.format("010") + WITH_EXT,
        "Default",
        ["[[ExtendedNegotiation]] [Ext] ExtendedNegotiation1", "even number"],
    ),
    (
        "non-hex extended negotiation",
        SYNTAXES + CONTEXTS + EXT.format("01GG") + WITH_EXT,
        "Default",
        ["[[ExtendedNegotiation]] [Ext] ExtendedNegotiation1", "hexadecimal"],
    ),
    (
        "empty extended negotiation",
        SYNTAXES + CONTEXTS + EXT.format("") + WITH_EXT,
        "Default",
        ["[[ExtendedNegotiation]] [Ext] ExtendedNegotiation1"],
    ),
    (
        "extended negotiation over 1024 bytes",
        SYNTAXES + CONTEXTS + EXT.format("00" * 1025) + WITH_EXT,
        "Default",
        ["[[ExtendedNegotiation]] [Ext] ExtendedNegotiation1", "1025 bytes"],
    ),
    (
        "extended negotiation for a class not proposed",
        SYNTAXES + CONTEXTS + EXT.format("01").replace("CTImage", "MRImage") + WITH_EXT,
        "Default",
        ["[[ExtendedNegotiation]] [Ext] ExtendedNegotiation1", MR],
    ),
    (
        "profile without contexts",
        SYNTAXES + CONTEXTS + "[[Profiles]]\n[Default]\nSCPSCURoleSelection = Roles\n",
        "Default",
        ["[[Profiles]] [Default] PresentationContexts", "missing"],
    ),
    (
        "profile naming an undefined context list",
        SYNTAXES + CONTEXTS + PROFILES.replace("= Contexts", "= Nope"),
        "Default",
        ["[[Profiles]] [Default] PresentationContexts", "[Nope]"],
    ),
    ("unknown profile", SYNTAXES + CONTEXTS + PROFILES, "Nope", ["unknown profile 'Nope'"]),
]


@pytest.mark.parametrize(
    ("text", "profile", "words"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_each_invalid_profile_file_is_a_usage_error_naming_section_and_key(
    tmp_path: Path, text: str, profile: str, words: list[str]
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(UsageError) as caught:
        load_profile(path, profile)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message.split(": ", 1)[0]
    for word in words:
        assert word in message


def test_an_unreadable_profile_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"cannot read profile file .*missing\.cfg"):
        load_profile(tmp_path / "missing.cfg", "Default")


def test_every_shipped_profile_loads_within_the_context_limit() -> None:
    shipped = ProfileFile.read(SHIPPED)
    names = shipped.profile_names
    assert {"Default", "AllImageCompressedAndUncompressed", "CT", "MR", "CRDX", "US", "MG",
            "NMPT", "SC", "RT", "SR"} <= set(names)  # fmt: skip
    for name in names:
        contexts = shipped.profile(name).contexts
        assert 0 < len(contexts) <= 128
        assert all(context.transfer_syntaxes for context in contexts)
    default = shipped.profile("Default").contexts
    assert all(c.transfer_syntaxes in ((EXPLICIT,), (IMPLICIT,)) for c in default)


def test_job_spec_round_trips_roles_and_extended_negotiation() -> None:
    settings = AssociationSettings(
        host="pacs.example",
        port=104,
        contexts=(PresentationContext(1, CT, (EXPLICIT,)),),
        roles=(RoleSelection(CT, True, False), RoleSelection(MR, True, True)),
        extended=(ExtendedNegotiation(CT, b"\x01\x00\xff"),),
    )
    spec = JobSpec("j1", "name", settings, SendPolicy(deflate_level=9), 1, 1, "x", "q")
    back = JobSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert back == spec
    assert back.settings.extended[0].data == b"\x01\x00\xff"
