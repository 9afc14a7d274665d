"""The A-ASSOCIATE codec against pynetdicom's: the same request bytes for the same
settings, the same refusals, the same reading of an accept; and malformed answers
become one kind of error."""

from __future__ import annotations

import random
import re
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ASSOCIATE_RQ
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    AsynchronousOperationsWindowNegotiation,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityNegotiation,
)
from pynetdicom.presentation import PresentationContext as PNContext

from dispatch.errors import ProtocolError, UsageError
from dispatch.net import acse
from dispatch.net import pdu as P
from dispatch.profiles import load_profile
from dispatch.proposals import build_contexts
from dispatch.settings import (
    AssociationSettings,
    ExtendedNegotiation,
    IdentityKind,
    PresentationContext,
    RoleSelection,
    UserIdentity,
)
from dispatch.uids import (
    APPLICATION_CONTEXT,
    DEFAULT_STORAGE_CLASSES,
    EXPLICIT_BE,
    EXPLICIT_LE,
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    IMPLICIT_LE,
    JPEG_2000_LOSSLESS,
    JPEG_BASELINE,
    JPEG_LS_LOSSLESS,
    RLE_LOSSLESS,
)
from tests.net.rawpeer import read_pdu
from tests.support.dicom_files import make_file
from tests.support.programs import require_program

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
US = "1.2.840.10008.5.1.4.1.1.6.1"


# -- pynetdicom as the reference -----------------------------------------------------


def pynetdicom_rq(settings: AssociationSettings) -> bytes:
    """The A-ASSOCIATE-RQ pynetdicom encodes for ``settings`` (raises its ValueError)."""
    primitive = A_ASSOCIATE()
    primitive.application_context_name = APPLICATION_CONTEXT
    primitive.calling_ae_title = settings.calling_ae
    primitive.called_ae_title = settings.called_ae
    max_length = MaximumLengthNotification()
    max_length.maximum_length_received = settings.max_pdu
    class_uid = ImplementationClassUIDNotification()
    class_uid.implementation_class_uid = IMPLEMENTATION_CLASS_UID
    version = ImplementationVersionNameNotification()
    version.implementation_version_name = IMPLEMENTATION_VERSION_NAME
    primitive.user_information = [max_length, class_uid, version]
    for role in settings.roles:
        role_item = SCP_SCU_RoleSelectionNegotiation()
        role_item.sop_class_uid = role.sop_class
        role_item.scu_role = role.scu
        role_item.scp_role = role.scp
        primitive.user_information.append(role_item)
    for ext in settings.extended:
        ext_item = SOPClassExtendedNegotiation()
        ext_item.sop_class_uid = ext.sop_class
        ext_item.service_class_application_information = ext.data
        primitive.user_information.append(ext_item)
    identity = settings.identity
    if identity is not None:
        id_item = UserIdentityNegotiation()
        id_item.user_identity_type = int(identity.kind)
        id_item.positive_response_requested = identity.positive_response
        if identity.kind in (IdentityKind.USERNAME, IdentityKind.USERNAME_PASSCODE):
            id_item.primary_field = identity.primary.encode("utf-8")
            if identity.kind is IdentityKind.USERNAME_PASSCODE:
                id_item.secondary_field = identity.passcode.encode("utf-8")
        else:
            id_item.primary_field = Path(identity.primary).read_bytes()[:65535]
        primitive.user_information.append(id_item)
    contexts = []
    for proposed in settings.contexts:
        context = PNContext()
        context.context_id = proposed.context_id
        context.abstract_syntax = proposed.abstract_syntax
        context.transfer_syntax = list(proposed.transfer_syntaxes)
        contexts.append(context)
    primitive.presentation_context_definition_list = contexts
    rq = A_ASSOCIATE_RQ()
    rq.from_primitive(primitive)
    return bytes(rq.encode())


def pynetdicom_negotiated(ac_bytes: bytes) -> acse.Negotiated:
    """What an A-ASSOCIATE-AC says, read through pynetdicom's decoder."""
    ac = A_ASSOCIATE_AC()
    ac.decode(ac_bytes)
    primitive = ac.to_primitive()
    results = {}
    for item in primitive.presentation_context_definition_results_list:
        syntaxes = item.transfer_syntax
        assert item.context_id is not None and item.result is not None
        results[item.context_id] = (item.result, str(syntaxes[0]) if syntaxes else "")
    max_pdu, class_uid, version = 0, "", ""
    identity = None
    for info in primitive.user_information:
        if isinstance(info, MaximumLengthNotification):
            max_pdu = int(info.maximum_length_received or 0)
        elif isinstance(info, ImplementationClassUIDNotification):
            class_uid = str(info.implementation_class_uid or "")
        elif isinstance(info, ImplementationVersionNameNotification):
            version = str(info.implementation_version_name or "")
        elif isinstance(info, UserIdentityNegotiation):
            identity = bytes(info.server_response or b"")
    return acse.Negotiated(results, max_pdu, class_uid, version, identity)


def settings(**kwargs: object) -> AssociationSettings:
    values: dict[str, object] = {"contexts": (PresentationContext(1, CT, (EXPLICIT_LE,)),)}
    values.update(kwargs)
    return AssociationSettings("127.0.0.1", 104, **values)  # type: ignore[arg-type]


def encode_fresh(value: AssociationSettings) -> bytes:
    """Encode without the cache, so that every case exercises the encoder."""
    acse._RQ_CACHE.clear()
    return acse.encode_associate_rq(value)


def sub_items(data: bytes) -> list[tuple[int, bytes]]:
    """(type, value) of each item in ``data``."""
    found, pos = [], 0
    while pos < len(data):
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        found.append((data[pos], data[pos + 4 : pos + 4 + length]))
        pos += 4 + length
    return found


def user_items(rq: bytes) -> list[tuple[int, bytes]]:
    user = next(value for kind, value in sub_items(rq[74:]) if kind == 0x50)
    return sub_items(user)


# -- the request ---------------------------------------------------------------------

PROFILE = """\
[[TransferSyntaxes]]
[Uncompressed]
TransferSyntax1 = LittleEndianExplicit
TransferSyntax2 = LittleEndianImplicit
[JPEG]
TransferSyntax1 = JPEGBaseline
TransferSyntax2 = JPEGLSLossless
TransferSyntax3 = JPEG2000LosslessOnly
[[PresentationContexts]]
[Contexts]
PresentationContext1 = CTImageStorage\\Uncompressed
PresentationContext2 = CTImageStorage\\JPEG
PresentationContext3 = MRImageStorage\\Uncompressed
PresentationContext4 = UltrasoundMultiframeImageStorage\\JPEG
[[SCPSCURoleSelection]]
[Roles]
Role1 = CTImageStorage\\SCU
Role2 = MRImageStorage\\SCP
Role3 = UltrasoundMultiframeImageStorage\\BOTH
[[ExtendedNegotiation]]
[Ext]
ExtendedNegotiation1 = CTImageStorage\\0100FFab
ExtendedNegotiation2 = MRImageStorage\\01
[[Profiles]]
[Default]
PresentationContexts = Contexts
SCPSCURoleSelection = Roles
ExtendedNegotiation = Ext
"""


def profile_settings(tmp_path: Path, **kwargs: object) -> AssociationSettings:
    """Settings as ``dispatch send -xf`` builds them from a profile with roles and
    extended negotiation."""
    path = tmp_path / "profile.cfg"
    path.write_text(PROFILE)
    profile = load_profile(path, "Default")
    return settings(
        contexts=profile.contexts, roles=profile.roles, extended=profile.extended, **kwargs
    )


def identity_file(tmp_path: Path, size: int) -> str:
    path = tmp_path / f"ticket-{size}.bin"
    path.write_bytes(bytes(random.Random(size).randrange(256) for _ in range(size)))
    return str(path)


REQUESTS: dict[str, Callable[[Path], AssociationSettings]] = {
    "one context": lambda tmp: settings(),
    "storescu default (128 contexts)": lambda tmp: settings(
        contexts=build_contexts("uncompressed")
    ),
    "big endian first": lambda tmp: settings(contexts=build_contexts("big", [CT, MR])),
    "implicit only": lambda tmp: settings(contexts=build_contexts("implicit", [CT])),
    "JPEG proposed first": lambda tmp: settings(contexts=build_contexts(JPEG_BASELINE, [CT, MR])),
    "combined syntaxes": lambda tmp: settings(
        contexts=build_contexts(RLE_LOSSLESS, DEFAULT_STORAGE_CLASSES[:40], combine=True)
    ),
    "many syntaxes per context": lambda tmp: settings(
        contexts=(
            PresentationContext(
                5,
                US,
                (
                    JPEG_BASELINE,
                    JPEG_LS_LOSSLESS,
                    JPEG_2000_LOSSLESS,
                    RLE_LOSSLESS,
                    EXPLICIT_LE,
                    EXPLICIT_BE,
                    IMPLICIT_LE,
                ),
            ),
            PresentationContext(255, CT, (IMPLICIT_LE,)),
        )
    ),
    "repeated syntax": lambda tmp: settings(
        contexts=(PresentationContext(1, CT, (EXPLICIT_LE, IMPLICIT_LE, EXPLICIT_LE)),)
    ),
    "UIDs with surrounding spaces": lambda tmp: settings(
        contexts=(PresentationContext(1, f" {CT} ", (f"{EXPLICIT_LE} ",)),),
        roles=(RoleSelection(f"{CT} ", True, False),),
    ),
    "non-conformant UID": lambda tmp: settings(
        contexts=(PresentationContext(3, "1.2.03.abc", ("1.2.840.10008.1.2.1.x",)),)
    ),
    "64-character UID": lambda tmp: settings(
        contexts=(PresentationContext(1, "1." + "2" * 62, (EXPLICIT_LE,)),)
    ),
    "AE titles": lambda tmp: settings(calling_ae="MYSCU", called_ae="OTHERSCP"),
    "16-character AE titles with spaces": lambda tmp: settings(
        calling_ae="ABCDEFGHIJKLMNOP", called_ae=" SPACE IN AE~!@#"
    ),
    "max pdu 0 (unlimited)": lambda tmp: settings(max_pdu=0),
    "max pdu 4096": lambda tmp: settings(max_pdu=4096),
    "max pdu 131072": lambda tmp: settings(max_pdu=131072),
    "max pdu 2**32 - 1": lambda tmp: settings(max_pdu=0xFFFFFFFF),
    "profile with roles and extended negotiation": profile_settings,
    "extended negotiation, empty and 1024 bytes": lambda tmp: settings(
        extended=(ExtendedNegotiation(CT, b""), ExtendedNegotiation(MR, bytes(range(256)) * 4))
    ),
    "user name": lambda tmp: settings(identity=UserIdentity(IdentityKind.USERNAME, "alice")),
    "user name, positive response": lambda tmp: settings(
        identity=UserIdentity(IdentityKind.USERNAME, "alice", positive_response=True)
    ),
    "user name not in ASCII": lambda tmp: settings(
        identity=UserIdentity(IdentityKind.USERNAME, "Zoë Ñúñez")
    ),
    "user name and passcode": lambda tmp: settings(
        identity=UserIdentity(IdentityKind.USERNAME_PASSCODE, "alice", "s3cret", True)
    ),
    "Kerberos ticket": lambda tmp: settings(
        identity=UserIdentity(
            IdentityKind.KERBEROS, identity_file(tmp, 700), positive_response=True
        )
    ),
    "SAML assertion": lambda tmp: settings(
        identity=UserIdentity(IdentityKind.SAML, identity_file(tmp, 5000))
    ),
    "JWT": lambda tmp: settings(identity=UserIdentity(IdentityKind.JWT, identity_file(tmp, 1))),
    "JWT of 65000 bytes": lambda tmp: settings(
        identity=UserIdentity(IdentityKind.JWT, identity_file(tmp, 65000))
    ),
    "everything at once": lambda tmp: profile_settings(
        tmp,
        calling_ae="A",
        called_ae="PACS",
        max_pdu=0,
        identity=UserIdentity(IdentityKind.USERNAME_PASSCODE, "bob", "pw"),
    ),
}


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")  # pydicom, for the reference
@pytest.mark.parametrize("case", list(REQUESTS))
def test_request_is_byte_for_byte_pynetdicoms(case: str, tmp_path: Path) -> None:
    value = REQUESTS[case](tmp_path)
    ours = encode_fresh(value)
    assert ours == pynetdicom_rq(value)
    assert int.from_bytes(ours[2:6], "big") == len(ours) - 6


def test_request_layout_follows_ps3_8(tmp_path: Path) -> None:
    value = profile_settings(tmp_path, calling_ae="ME", called_ae="PEER", max_pdu=32768)
    rq = encode_fresh(value)
    assert rq[:2] == b"\x01\x00" and rq[6:8] == b"\x00\x01"
    assert rq[10:26] == b"PEER" + b" " * 12 and rq[26:42] == b"ME" + b" " * 14
    assert rq[42:74] == bytes(32)
    items = sub_items(rq[74:])
    assert [kind for kind, _ in items] == [0x10, 0x20, 0x20, 0x20, 0x20, 0x50]
    assert items[0][1] == APPLICATION_CONTEXT.encode()
    first = items[1][1]
    assert first[0] == 1 and sub_items(first[4:]) == [
        (0x30, CT.encode()),
        (0x40, EXPLICIT_LE.encode()),
        (0x40, IMPLICIT_LE.encode()),
    ]
    user = user_items(rq)
    assert [kind for kind, _ in user] == [0x51, 0x52, 0x55, 0x54, 0x54, 0x54, 0x54, 0x56, 0x56]
    assert user[0][1] == (32768).to_bytes(4, "big")
    assert user[1][1] == IMPLEMENTATION_CLASS_UID.encode()
    assert user[2][1] == IMPLEMENTATION_VERSION_NAME.encode()
    assert user[3][1] == len(CT).to_bytes(2, "big") + CT.encode() + b"\x01\x00"
    assert user[5][1] == len(MR).to_bytes(2, "big") + MR.encode() + b"\x00\x01"
    assert user[7][1] == len(CT).to_bytes(2, "big") + CT.encode() + bytes.fromhex("0100FFab")


def test_request_is_cached_per_settings_and_identity_token(tmp_path: Path) -> None:
    value = settings(identity=UserIdentity(IdentityKind.JWT, identity_file(tmp_path, 50)))
    first = encode_fresh(value)
    token = Path(value.identity.primary)  # type: ignore[union-attr]
    assert acse.encode_associate_rq(value) is first
    assert acse.encode_associate_rq(settings()) != first
    token.write_bytes(b"rotated")
    rotated = acse.encode_associate_rq(value)
    assert user_items(rotated)[-1] == (0x58, b"\x05\x00\x00\x07rotated\x00\x00")
    token.unlink()  # read for every request: a token gone is an error, not a stale one
    with pytest.raises(UsageError, match="Unable to open Kerberos, SAML or JWT file"):
        acse.encode_associate_rq(value)


def test_an_empty_passcode_is_sent_as_dcmtk_sends_it() -> None:
    """pynetdicom refuses a user name and passcode identity with an empty passcode;
    ``-epw`` means exactly that, and DCMTK sends an empty secondary field."""
    value = settings(identity=UserIdentity(IdentityKind.USERNAME_PASSCODE, "alice", ""))
    with pytest.raises(ValueError, match="Secondary Field must be set"):
        pynetdicom_rq(value)
    rq = encode_fresh(value)
    assert user_items(rq)[-1] == (0x58, b"\x02\x00\x00\x05alice\x00\x00")
    decoded = A_ASSOCIATE_RQ()
    decoded.decode(rq)
    identity = decoded.to_primitive().user_information[-1]
    assert isinstance(identity, UserIdentityNegotiation)
    assert (identity.user_identity_type, identity.primary_field) == (2, b"alice")
    assert identity.secondary_field == b""


def test_the_empty_passcode_item_is_storescus(tmp_path: Path) -> None:
    """``storescu -usr alice -epw -rsp`` against a listener that records its request."""
    storescu = require_program("storescu")
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(20)
    port = server.getsockname()[1]
    path = make_file(tmp_path / "a.dcm")
    with subprocess.Popen(
        [str(storescu), "-usr", "alice", "-epw", "-rsp", "127.0.0.1", str(port), str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as process:
        conn, _ = server.accept()
        with conn:
            conn.settimeout(20)
            _, theirs = read_pdu(conn)
            conn.sendall(P.abort_bytes())
        process.wait(20)
    server.close()
    value = settings(identity=UserIdentity(IdentityKind.USERNAME_PASSCODE, "alice", "", True))
    expected = next(item for item in user_items(theirs) if item[0] == 0x58)
    assert user_items(encode_fresh(value))[-1] == expected


REFUSED = {
    "calling AE title too long": settings(calling_ae="ABCDEFGHIJKLMNOPQ"),
    "called AE title all spaces": settings(called_ae="    "),
    "AE title with a backslash": settings(called_ae="A\\B"),
    "AE title with a control character": settings(calling_ae="A\tB"),
    "AE title not in ASCII": settings(calling_ae="ÄRZTE"),
    "abstract syntax too long": settings(contexts=(PresentationContext(1, "1." + "2" * 63, ()),)),
    "empty transfer syntax": settings(contexts=(PresentationContext(1, CT, (EXPLICIT_LE, "")),)),
    "transfer syntax too long": settings(
        contexts=(PresentationContext(1, CT, ("1." + "2" * 63,)),)
    ),
    "even context id": settings(contexts=(PresentationContext(2, CT, (EXPLICIT_LE,)),)),
    "context id above 255": settings(contexts=(PresentationContext(257, CT, (EXPLICIT_LE,)),)),
    "role for a UID too long": settings(roles=(RoleSelection("1." + "2" * 63, True, False),)),
    "role neither SCU nor SCP": settings(roles=(RoleSelection(CT, False, False),)),
    "extended negotiation for a UID too long": settings(
        extended=(ExtendedNegotiation("1." + "2" * 63, b"\x01"),)
    ),
}


@pytest.mark.filterwarnings("ignore:The value length")  # pydicom, for the reference
@pytest.mark.parametrize("case", list(REFUSED))
def test_what_pynetdicom_refuses_is_a_usage_error_with_its_message(case: str) -> None:
    value = REFUSED[case]
    with pytest.raises(ValueError) as theirs:
        pynetdicom_rq(value)
    with pytest.raises(UsageError) as ours:
        encode_fresh(value)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            settings(contexts=(PresentationContext(1, "1.2.é", (EXPLICIT_LE,)),)),
            "Invalid 'abstract_syntax' value '1.2.é' - must only contain ASCII characters",
        ),
        # An empty AE title gets storescu's words, not pynetdicom's.
        (settings(called_ae=""), "Illegal service parameter: Called AP Title"),
        (settings(calling_ae=""), "Illegal service parameter: Calling AP Title"),
        (settings(max_pdu=-1), "Maximum Length Received must be 0 to 4294967295: -1"),
        (settings(max_pdu=2**32), "Maximum Length Received must be 0 to 4294967295"),
        (
            settings(extended=(ExtendedNegotiation(CT, bytes(65600)),)),
            "extended negotiation item too long for an A-ASSOCIATE-RQ: 65627 bytes, at most 65535",
        ),
    ],
)
def test_other_bad_values_are_usage_errors_in_plain_words(
    value: AssociationSettings, message: str
) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        encode_fresh(value)


def test_an_identity_file_too_big_for_the_request_is_a_usage_error(tmp_path: Path) -> None:
    """The file is cut to 65535 bytes, which with the item's other fields no longer fits
    the item's 2-byte length (pynetdicom failed with a struct.error)."""
    value = settings(identity=UserIdentity(IdentityKind.KERBEROS, identity_file(tmp_path, 70000)))
    with pytest.raises(UsageError, match="user identity item too long for an A-ASSOCIATE-RQ"):
        encode_fresh(value)


def test_identity_file_errors_keep_dcmtks_words(tmp_path: Path) -> None:
    missing = tmp_path / "missing.jwt"
    with pytest.raises(UsageError) as caught:
        encode_fresh(settings(identity=UserIdentity(IdentityKind.JWT, str(missing))))
    assert str(caught.value) == (
        f"Unable to open Kerberos, SAML or JWT file: {missing}: no such file or directory"
    )
    empty = tmp_path / "empty.saml"
    empty.write_bytes(b"")
    with pytest.raises(UsageError) as caught:
        encode_fresh(settings(identity=UserIdentity(IdentityKind.SAML, str(empty))))
    assert str(caught.value) == (
        f"Unable to read Kerberos, SAML or JWT info from file: {empty}: File empty?"
    )


# -- the answer ----------------------------------------------------------------------


def pynetdicom_ac(
    results: list[tuple[int, int, str]],
    *,
    max_pdu: int | None = 16384,
    class_uid: str | None = "1.2.276.0.7230010.3.0.3.6.7",
    version: str | None = "OFFIS_DCMTK_367",
    identity_response: bytes | None = None,
    extras: bool = False,
) -> bytes:
    """An A-ASSOCIATE-AC as pynetdicom encodes it: ``results`` are (context id, result,
    transfer syntax)."""
    primitive = A_ASSOCIATE()
    primitive.application_context_name = APPLICATION_CONTEXT
    primitive.calling_ae_title = "STORESCU"
    primitive.called_ae_title = "ANY-SCP"
    primitive.result = 0
    contexts = []
    for context_id, result, syntax in results:
        context = PNContext()
        context.context_id = context_id
        context.result = result
        context.transfer_syntax = [syntax]
        contexts.append(context)
    primitive.presentation_context_definition_results_list = contexts
    user: list[Any] = []
    if max_pdu is not None:
        item = MaximumLengthNotification()
        item.maximum_length_received = max_pdu
        user.append(item)
    if class_uid is not None:
        class_item = ImplementationClassUIDNotification()
        class_item.implementation_class_uid = class_uid
        user.append(class_item)
    if version is not None:
        version_item = ImplementationVersionNameNotification()
        version_item.implementation_version_name = version
        user.append(version_item)
    if extras:
        window = AsynchronousOperationsWindowNegotiation()
        window.maximum_number_operations_invoked = 1
        window.maximum_number_operations_performed = 1
        role = SCP_SCU_RoleSelectionNegotiation()
        role.sop_class_uid = CT
        role.scu_role = True
        role.scp_role = False
        ext = SOPClassExtendedNegotiation()
        ext.sop_class_uid = CT
        ext.service_class_application_information = b"\x01\x00"
        user += [window, role, ext]
    if identity_response is not None:
        identity = UserIdentityNegotiation()
        identity.server_response = identity_response
        user.append(identity)
    primitive.user_information = user
    ac = A_ASSOCIATE_AC()
    ac.from_primitive(primitive)
    return bytes(ac.encode())


ACCEPTS = {
    "one accepted": pynetdicom_ac([(1, 0, EXPLICIT_LE)]),
    "mixed results": pynetdicom_ac(
        [
            (1, 0, EXPLICIT_LE),
            (3, 3, IMPLICIT_LE),
            (5, 4, IMPLICIT_LE),
            (7, 1, EXPLICIT_BE),
            (9, 2, EXPLICIT_LE),
            (255, 0, JPEG_BASELINE),
        ]
    ),
    "128 results": pynetdicom_ac(
        [(2 * n + 1, n % 5, EXPLICIT_LE if n % 2 else IMPLICIT_LE) for n in range(128)]
    ),
    "unlimited max pdu": pynetdicom_ac([(1, 0, IMPLICIT_LE)], max_pdu=0),
    "no user information sub-items": pynetdicom_ac(
        [(1, 0, IMPLICIT_LE)], max_pdu=None, class_uid=None, version=None
    ),
    "identity response": pynetdicom_ac([(1, 0, EXPLICIT_LE)], identity_response=b"token\x00x"),
    "empty identity response": pynetdicom_ac([(1, 0, EXPLICIT_LE)], identity_response=b""),
    "role, extended negotiation and window items": pynetdicom_ac(
        [(1, 0, EXPLICIT_LE)], extras=True, identity_response=b"ok"
    ),
}


@pytest.mark.parametrize("case", list(ACCEPTS))
def test_accept_decodes_as_pynetdicom_reads_it(case: str) -> None:
    ac = ACCEPTS[case]
    assert acse.decode_associate_ac(ac) == pynetdicom_negotiated(ac)


def test_accept_values_are_read() -> None:
    negotiated = acse.decode_associate_ac(ACCEPTS["role, extended negotiation and window items"])
    assert negotiated == acse.Negotiated(
        {1: (0, EXPLICIT_LE)}, 16384, "1.2.276.0.7230010.3.0.3.6.7", "OFFIS_DCMTK_367", b"ok"
    )
    assert acse.decode_associate_ac(ACCEPTS["one accepted"]).identity_response is None


def hand_built_ac(*items: bytes) -> bytes:
    """An A-ASSOCIATE-AC holding ``items`` after its application context item."""
    body = b"\x10\x00" + len(APPLICATION_CONTEXT).to_bytes(2, "big") + APPLICATION_CONTEXT.encode()
    body += b"".join(items)
    fixed = b"\x00\x01\x00\x00" + b"STORESCU".ljust(16) + b"ANY-SCP".ljust(16) + bytes(32)
    return b"\x02\x00" + (len(fixed) + len(body)).to_bytes(4, "big") + fixed + body


def item(item_type: int, value: bytes) -> bytes:
    return bytes((item_type, 0)) + len(value).to_bytes(2, "big") + value


def test_rejected_contexts_may_name_no_transfer_syntax() -> None:
    ac = hand_built_ac(
        item(0x21, b"\x01\x00\x03\x00"),  # no sub-item
        item(0x21, b"\x03\x00\x04\x00" + item(0x40, b"")),  # an empty one
        item(0x21, b"\x05\x00\x00\x00" + item(0x40, EXPLICIT_LE.encode())),
        item(0x50, item(0x51, (4096).to_bytes(4, "big"))),
    )
    negotiated = acse.decode_associate_ac(ac)
    assert negotiated == pynetdicom_negotiated(ac)
    assert negotiated.results == {1: (3, ""), 3: (4, ""), 5: (0, EXPLICIT_LE)}
    assert negotiated.max_pdu == 4096


def test_a_null_padded_transfer_syntax_is_read_without_its_padding() -> None:
    ac = pynetdicom_ac([(1, 0, IMPLICIT_LE)])  # 17 characters: some peers pad it to 18
    unpadded = item(0x40, IMPLICIT_LE.encode())
    padded = ac.replace(unpadded, item(0x40, IMPLICIT_LE.encode() + b"\x00"))
    padded = grow(padded, 1, containers=[context_offset(padded)])
    assert acse.decode_associate_ac(padded) == pynetdicom_negotiated(padded)
    assert acse.decode_associate_ac(padded).results == {1: (0, IMPLICIT_LE)}


def context_offset(ac: bytes) -> int:
    return 74 + 4 + len(APPLICATION_CONTEXT)


def grow(pdu: bytes, extra: int, containers: list[int]) -> bytes:
    """``pdu`` with its length, and the 2-byte lengths of the items at ``containers``,
    increased by ``extra``."""
    out = bytearray(pdu)
    out[2:6] = (int.from_bytes(out[2:6], "big") + extra).to_bytes(4, "big")
    for offset in containers:
        length = int.from_bytes(out[offset + 2 : offset + 4], "big")
        out[offset + 2 : offset + 4] = (length + extra).to_bytes(2, "big")
    return bytes(out)


def insert(pdu: bytes, at: int, new: bytes, containers: list[int]) -> bytes:
    """``pdu`` with ``new`` inserted at ``at``, and the lengths adjusted (see ``grow``)."""
    return grow(pdu[:at] + new + pdu[at:], len(new), containers)


UNKNOWN_ITEM = b"\x7e\x00\x00\x03abc"


def test_unknown_items_and_sub_items_are_skipped() -> None:
    ac = pynetdicom_ac([(1, 0, EXPLICIT_LE), (3, 0, IMPLICIT_LE)], identity_response=b"ok")
    expected = acse.decode_associate_ac(ac)
    context = context_offset(ac)
    # An unknown sub-item first in the first context item, before its transfer syntax.
    changed = insert(ac, context + 8, UNKNOWN_ITEM, [context])
    # An unknown item between the context items and the user information.
    user = changed.index(b"\x50\x00", context)
    changed = insert(changed, user, UNKNOWN_ITEM, [])
    user += len(UNKNOWN_ITEM)
    # Unknown sub-items first and last in the user information.
    changed = insert(changed, user + 4, b"\x5f\x00\x00\x00", [user])
    changed = insert(changed, len(changed), b"\x57\x00\x00\x02\x00\x00", [user])
    assert changed != ac
    assert acse.decode_associate_ac(changed) == expected


def assert_malformed(pdu: bytes, kind: str = "A-ASSOCIATE-AC") -> str:
    decode = acse.decode_associate_ac if kind == "A-ASSOCIATE-AC" else acse.decode_associate_rj
    with pytest.raises(ProtocolError) as caught:
        decode(pdu)
    message = str(caught.value)
    assert message.startswith(f"malformed {kind}: ")
    assert "\n" not in message
    return message


def test_every_truncation_of_an_accept_is_a_protocol_error() -> None:
    ac = ACCEPTS["role, extended negotiation and window items"]
    boundaries, pos = {74}, 74
    for _, value in sub_items(ac[74:]):
        pos += 4 + len(value)
        boundaries.add(pos)
    for end in range(len(ac)):
        cut = ac[:end]
        assert_malformed(cut)
        # The same bytes with a PDU length that agrees: unless the cut falls between
        # two items, an item then runs past the end.
        if end >= 74 and end not in boundaries:
            assert_malformed(cut[:2] + (end - 6).to_bytes(4, "big") + cut[6:])


def short_maximum_length(ac: bytes) -> bytes:
    at = ac.index(b"\x51\x00\x00\x04")
    changed = ac[:at] + b"\x51\x00\x00\x02" + ac[at + 6 :]
    return grow(changed, -2, [ac.index(b"\x50\x00")])


def short_identity_response(ac: bytes) -> bytes:
    """A user identity sub-item announcing 9 response bytes, holding none."""
    return grow(ac + b"\x59\x00\x00\x02\x00\x09", 6, [ac.index(b"\x50\x00")])


def short_context_item(ac: bytes) -> bytes:
    return grow(ac[:74] + b"\x21\x00\x00\x02\x01\x00", 6 - (len(ac) - 74), [])


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda ac: ac + b"\x00", "PDU length"),
        (lambda ac: ac[:20], "20 bytes, at least 74"),
        (lambda ac: b"\x03" + ac[1:], "PDU type 0x03"),
        (lambda ac: grow(ac, 2, []) + b"\x50\x00", "stray bytes"),
        (lambda ac: grow(ac, 6, []) + b"\x50\x00\x00\x09ab", "runs past the end"),
        (short_maximum_length, "maximum length sub-item of 2 bytes"),
        (short_identity_response, "user identity sub-item of 2 bytes"),
        (short_context_item, "presentation context item of 2 bytes"),
    ],
)
def test_malformed_accepts_are_protocol_errors_in_one_line(
    change: Callable[[bytes], bytes], words: str
) -> None:
    assert words in assert_malformed(change(ACCEPTS["one accepted"]))


def test_garbage_never_escapes_as_another_exception() -> None:
    rng = random.Random(20240611)
    base = ACCEPTS["role, extended negotiation and window items"]
    for _ in range(3000):
        data = bytearray(base)
        for _ in range(rng.randrange(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            acse.decode_associate_ac(bytes(data))
        except ProtocolError as exc:
            assert str(exc).startswith("malformed A-ASSOCIATE-AC: ")
    for size in (0, 1, 6, 73, 74, 75, 200):
        noise = bytes(rng.randrange(256) for _ in range(size))
        with pytest.raises(ProtocolError):
            acse.decode_associate_ac(noise)


@pytest.mark.parametrize(("result", "source", "reason"), [(1, 1, 1), (2, 3, 2), (1, 2, 2)])
def test_reject_decodes_as_pynetdicom_encodes_it(result: int, source: int, reason: int) -> None:
    primitive = A_ASSOCIATE()
    primitive.result = result
    primitive.result_source = source
    primitive.diagnostic = reason
    rj = A_ASSOCIATE_RJ()
    rj.from_primitive(primitive)
    assert acse.decode_associate_rj(bytes(rj.encode())) == (result, source, reason)


@pytest.mark.parametrize(
    ("pdu", "words"),
    [
        (b"\x03\x00\x00\x00\x00\x04\x00\x01\x01", "9 bytes"),
        (b"", "0 bytes"),
        (b"\x03\x00\x00\x00\x00\x05\x00\x01\x01\x01", "PDU length 5"),
        (b"\x02\x00\x00\x00\x00\x04\x00\x01\x01\x01", "PDU type 0x02"),
    ],
)
def test_malformed_rejects_are_protocol_errors(pdu: bytes, words: str) -> None:
    assert words in assert_malformed(pdu, "A-ASSOCIATE-RJ")


def test_the_association_engine_imports_neither_pynetdicom_nor_pydicom() -> None:
    code = (
        "import sys, dispatch.net.association; "
        "print(sorted({'pynetdicom', 'pydicom', 'numpy'} & set(sys.modules)))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"


def test_an_identical_accept_is_decoded_once_per_proposal() -> None:
    from dispatch.net.association import _negotiated

    proposal = settings()
    first_id = proposal.contexts[0].context_id
    syntax = proposal.contexts[0].transfer_syntaxes[0]
    accept = pynetdicom_ac([(first_id, 0, syntax)])
    refuse = pynetdicom_ac([(first_id, 4, syntax)])

    negotiated, accepted = _negotiated(proposal, accept)
    assert [(c.context_id, c.transfer_syntax) for c in accepted] == [(first_id, syntax)]
    assert _negotiated(proposal, bytes(accept)) == (negotiated, accepted)
    assert _negotiated(proposal, bytes(accept))[0] is negotiated  # decoded once
    # Another answer to the same proposal is decoded afresh.
    assert _negotiated(proposal, refuse)[1] == ()
