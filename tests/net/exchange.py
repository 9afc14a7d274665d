"""One whole C-STORE exchange over an open association, as the tests drive it."""

from __future__ import annotations

from dispatch.net import AcceptedContext, Association, DataSource, StoreResponse


def store(
    assoc: Association,
    context: AcceptedContext,
    sop_class_uid: str,
    sop_instance_uid: str,
    data: DataSource,
) -> StoreResponse:
    """Send one C-STORE-RQ with its data set and wait for the response.

    Raises what :meth:`Association.send_request` and :meth:`Association.receive_response`
    raise; the association has then been aborted.
    """
    message_id = assoc.send_request(context, sop_class_uid, sop_instance_uid, data)
    return assoc.receive_response(message_id)
