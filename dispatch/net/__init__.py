"""The association engine: DICOM upper layer and DIMSE C-STORE over one blocking socket.

Public surface: :class:`~dispatch.net.association.Association` (open, send_request,
receive_response, release, abort) and the values it returns. Everything else here is
private to the engine.
"""

from dispatch.net.association import AcceptedContext, Association, DataSource, StoreResponse

__all__ = ["AcceptedContext", "Association", "DataSource", "StoreResponse"]
