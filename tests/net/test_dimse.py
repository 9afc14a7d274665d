"""The hand-written C-STORE command codec against pynetdicom's own encoder."""

from __future__ import annotations

import io

import pytest
from pynetdicom.dimse_messages import C_STORE_RQ, C_STORE_RSP
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import encode

from dispatch.errors import ProtocolError
from dispatch.net.dimse import C_STORE_RSP as RSP_FIELD
from dispatch.net.dimse import decode_command, encode_c_store_rq

CASES = [
    (1, "1.2.840.10008.5.1.4.1.1.2", "1.2.3.4"),
    (2, "1.2.840.10008.5.1.4.1.1.7", "1.2.3.45"),  # odd-length instance UID
    (65535, "1.2.840.10008.5.1.4.1.1.4", "1.2.826.0.1.3680043.8.498." + "9" * 37),
    (300, "1.2.840.10008.5.1.4.1.1.88.11", "2.25.1"),
]


def _pynetdicom_rq(message_id: int, sop_class: str, sop_instance: str, priority: int) -> bytes:
    primitive = C_STORE()
    primitive.MessageID = message_id
    primitive.AffectedSOPClassUID = sop_class
    primitive.AffectedSOPInstanceUID = sop_instance
    primitive.Priority = priority
    primitive.DataSet = io.BytesIO(b"\x08\x00\x05\x00")
    message = C_STORE_RQ()
    message.primitive_to_message(primitive)
    return _encoded(message.command_set)


def _encoded(command_set: object) -> bytes:
    data = encode(command_set, True, True)  # type: ignore[arg-type]
    assert data is not None
    return bytes(data)


@pytest.mark.parametrize(("message_id", "sop_class", "sop_instance"), CASES)
@pytest.mark.parametrize("priority", [0, 1, 2])
def test_c_store_rq_bytes_equal_pynetdicom(
    message_id: int, sop_class: str, sop_instance: str, priority: int
) -> None:
    ours = encode_c_store_rq(message_id, sop_class, sop_instance, priority)
    assert ours == _pynetdicom_rq(message_id, sop_class, sop_instance, priority)


@pytest.mark.parametrize("status", [0x0000, 0x0001, 0xB000, 0xA700, 0xA900, 0xC000, 0x0122])
@pytest.mark.parametrize("comment", [None, "out of disk", "odd"])
def test_c_store_rsp_decoded_from_pynetdicom_bytes(status: int, comment: str | None) -> None:
    primitive = C_STORE()
    primitive.MessageIDBeingRespondedTo = 7
    primitive.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    primitive.AffectedSOPInstanceUID = "1.2.3.4.5"
    primitive.Status = status
    if comment is not None:
        primitive.ErrorComment = comment  # type: ignore[assignment]  # typed None in pynetdicom
    message = C_STORE_RSP()
    message.primitive_to_message(primitive)
    data = _encoded(message.command_set)

    decoded = decode_command(data)

    assert decoded.command_field == RSP_FIELD
    assert decoded.message_id_responded == 7
    assert decoded.status == status
    assert decoded.sop_class_uid == "1.2.840.10008.5.1.4.1.1.2"
    assert decoded.sop_instance_uid == "1.2.3.4.5"
    assert decoded.error_comment == (comment or "")


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x00\x00\x01\x02\x00",  # shorter than an element header
        b"\x00\x00\x00\x09\x02\x00\x00\x00\x01\x80",  # Status with no Command Field
        b"\x08\x00\x00\x01\x02\x00\x00\x00\x01\x80",  # not group 0000
        b"\x00\x00\x00\x01\xff\x00\x00\x00\x01\x80",  # length past the end
    ],
)
def test_malformed_command_sets_raise_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_command(data)
