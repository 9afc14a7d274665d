"""The Verification SOP Class (PS3.4 Annex A) as an SCU: one C-ECHO on an association.

The proposal is echoscu's: one context, the Verification SOP Class in implicit VR
little endian.
"""

from __future__ import annotations

from dispatch.errors import ProtocolError
from dispatch.net.association import Association
from dispatch.net.dimse import (
    C_ECHO_RSP,
    VERIFICATION_SOP_CLASS,
    encode_c_echo_rq,
    us_element,
)
from dispatch.settings import PresentationContext
from dispatch.uids import IMPLICIT_LE

VERIFICATION_CONTEXTS = (PresentationContext(1, VERIFICATION_SOP_CLASS, (IMPLICIT_LE,)),)
"""What echoscu proposes."""


def verification_context(assoc: Association) -> int | None:
    """The id of the accepted Verification context, None when the peer accepted none."""
    accepted = assoc.contexts_for(VERIFICATION_SOP_CLASS)
    return accepted[0].context_id if accepted else None


def echo(assoc: Association, context_id: int, message_id: int) -> int:
    """Send a C-ECHO-RQ with ``message_id`` on ``context_id`` and return the status of
    its C-ECHO-RSP. Raises the engine's errors (after aborting) and
    :class:`ProtocolError` for a reply that is not the response to this request."""
    assoc.send_dimse(context_id, encode_c_echo_rq(message_id))
    timeout_s = assoc.settings.timeouts.dimse_s
    reply = assoc.receive_dimse(timeout_s, "waiting for the C-ECHO response")
    try:
        if reply.command_field != C_ECHO_RSP:
            raise ProtocolError(f"unexpected command 0x{reply.command_field:04X}")
        responded = us_element(reply.command, 0x0120)
        if responded != message_id:
            raise ProtocolError(f"response to message {responded}, expected {message_id}")
        status = us_element(reply.command, 0x0900)
        if status is None:
            raise ProtocolError("C-ECHO response without a status")
    except ProtocolError:
        assoc.abort()
        raise
    return status
