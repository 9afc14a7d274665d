"""DCMTK's texts for the dumps of ``-d`` and the response line of ``-v``: each status
as DCMTK 3.6.7's storescu prints it (recorded from storescu against a peer answering
that status), modality abbreviations and UID names as DCMTK's tables have them."""

from __future__ import annotations

import pytest

from dispatch.dcmtk_names import name_of_uid, transfer_syntax_title
from dispatch.modalities import MODALITIES, modality_of
from dispatch.net.dump import associate_rq, dimse_status, max_send_pdv, store_status
from dispatch.settings import (
    AssociationSettings,
    IdentityKind,
    PresentationContext,
    RoleSelection,
    UserIdentity,
)

#: status -> the DIMSE Status line of storescu -d (DCMTK 3.6.7).
DUMPED = {
    0x0000: "0x0000: Success",
    0x0001: "0x0001: Warning",
    0x0107: "0x0107: Warning",
    0x0116: "0x0116: Warning",
    0x0110: "0x0110: Failure",
    0x0111: "0x0111: Failure",
    0x0117: "0x0117: Invalid SOP Class",
    0x0118: "0x0118: Failure",
    0x0122: "0x0122: Refused: SOP Class not supported",
    0x0124: "0x0124: Refused: Not authorized",
    0x0210: "0x0210: Duplicate invocation",
    0x0211: "0x0211: Unrecognized operation",
    0x0212: "0x0212: Mistyped argument",
    0x0213: "0x0213: Failure",
    0xA700: "0xa700: Refused: Out of resources",
    0xA7FF: "0xa7ff: Refused: Out of resources",
    0xA800: "0xa800: Failure",
    0xA900: "0xa900: Error: Data Set does not match SOP Class",
    0xB000: "0xb000: Warning: Coercion of Data Elements",
    0xB001: "0xb001: Warning",
    0xB006: "0xb006: Warning: Elements discarded",
    0xB007: "0xb007: Warning: Data Set does not match SOP Class",
    0xC000: "0xc000: Error: Cannot understand",
    0xCFFF: "0xcfff: Error: Cannot understand",
    0xFE00: "0xfe00: Cancel",
    0xFF00: "0xff00: Pending",
    0x1234: "0x1234: Unknown Status Code (non-standard)",
}

#: status -> storescu -v's "Received Store Response (...)" text.
VERBOSE = {
    0x0000: "Success",
    0x0107: "Unknown Status: 0x107",
    0x0122: "Refused: SOPClassNotSupported",
    0xA700: "Refused: OutOfResources",
    0xA701: "Refused: OutOfResources",
    0xA900: "Error: DataSetDoesNotMatchSOPClass",
    0xB000: "Warning: CoercionOfDataElements",
    0xB006: "Warning: ElementsDiscarded",
    0xB007: "Warning: DataSetDoesNotMatchSOPClass",
    0xC123: "Error: CannotUnderstand",
}


@pytest.mark.parametrize(("status", "text"), DUMPED.items(), ids=lambda v: f"{v}")
def test_dumped_status_is_storescus(status: int, text: str) -> None:
    assert dimse_status(status) == text


@pytest.mark.parametrize(("status", "text"), VERBOSE.items(), ids=lambda v: f"{v}")
def test_verbose_status_is_storescus(status: int, text: str) -> None:
    assert store_status(status) == text


def test_modalities_are_dcmtks() -> None:
    assert len(MODALITIES) == 194
    assert modality_of("1.2.840.10008.5.1.4.1.1.2") == "CT"
    assert modality_of("1.2.840.10008.5.1.4.1.1.88.33") == "SRc"
    assert modality_of("1.2.3.4") == "OT"


def test_names_are_dcmtks() -> None:
    assert name_of_uid("1.2.840.10008.5.1.4.1.1.2") == "CTImageStorage"
    assert name_of_uid("1.2.840.10008.1.2.1") == "LittleEndianExplicit"
    assert name_of_uid("1.2.840.10008.1.2.2") == "BigEndianExplicit"
    assert name_of_uid("1.2.840.10008.5.1.4.1.1.7.4") == (
        "MultiframeTrueColorSecondaryCaptureImageStorage"
    )
    assert name_of_uid("1.2.3.4") is None
    assert transfer_syntax_title("1.2.840.10008.1.2.4.51") == "JPEG Extended, Process 2+4"


@pytest.mark.parametrize(
    ("peer", "pdv"), [(16384, 16372), (0, 131060), (1 << 20, 131060), (16385, 16372)]
)
def test_max_send_pdv_is_computed_as_dcmtk(peer: int, pdv: int) -> None:
    assert max_send_pdv(peer) == pdv


def test_request_dump_shows_roles_and_identity_but_never_the_passcode() -> None:
    ct = "1.2.840.10008.5.1.4.1.1.2"
    settings = AssociationSettings(
        host="localhost",
        port=104,
        contexts=(PresentationContext(1, ct, ("1.2.840.10008.1.2",)),),
        roles=(RoleSelection(ct, scu=True, scp=True),),
        identity=UserIdentity(
            IdentityKind.USERNAME_PASSCODE, "alice", passcode="s3cret", positive_response=True
        ),
    )
    text = associate_rq(settings)
    assert "    Proposed SCP/SCU Role: SCP/SCU" in text.splitlines()
    assert "  Username: [alice]" in text.splitlines()
    assert "  Password (not dumped) length: 6" in text.splitlines()
    assert "  Positive Response requested: Yes" in text.splitlines()
    assert "s3cret" not in text
