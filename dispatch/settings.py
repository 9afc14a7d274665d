"""Frozen settings objects, built once (from the command line, a config file or the
environment) and passed down. Nothing below this layer reads ``os.environ``.

Times are seconds; ``None`` means "no limit".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

DEFAULT_CALLING_AE = "STORESCU"
DEFAULT_CALLED_AE = "ANY-SCP"
DEFAULT_MAX_PDU = 16384
MIN_PDU = 4096
MAX_PDU = 131072


@dataclass(frozen=True)
class Timeouts:
    """The four timeouts of an association, as storescu names them.

    ``connect_s`` (-to) bounds the TCP connect; ``socket_s`` (-ts) every blocking send
    and receive; ``acse_s`` (-ta) the wait for A-ASSOCIATE-AC/RJ and A-RELEASE-RP;
    ``dimse_s`` (-td) the wait for a C-STORE response.
    """

    connect_s: float | None = None
    socket_s: float | None = 60.0
    acse_s: float | None = 30.0
    dimse_s: float | None = None


@dataclass(frozen=True)
class PresentationContext:
    """One proposed presentation context: an odd id, an abstract syntax, its syntaxes."""

    context_id: int
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]


@dataclass(frozen=True)
class AssociationSettings:
    """Everything needed to open one association to one peer."""

    host: str
    port: int
    contexts: tuple[PresentationContext, ...]
    calling_ae: str = DEFAULT_CALLING_AE
    called_ae: str = DEFAULT_CALLED_AE
    max_pdu: int = DEFAULT_MAX_PDU
    """Largest PDU we accept (-pdu); announced to the peer and enforced on what it sends."""
    max_send_pdu: int | None = None
    """Cap on the PDUs we send (--max-send-pdu); the peer's own limit applies too."""
    timeouts: Timeouts = field(default_factory=Timeouts)


class ReadMode(StrEnum):
    """How input files are read (+f, +fo, -f)."""

    FILE = "file"
    """A Part-10 file, or a bare data set when there is no meta header (the default)."""
    FILE_ONLY = "file-only"
    """A Part-10 file; a file without meta header is an error."""
    DATASET = "dataset"
    """A bare data set starting at byte 0."""


@dataclass(frozen=True)
class SendPolicy:
    """How a run of files is sent over one association."""

    halt: bool = True
    """Stop after the first unsuccessful store (storescu's default); False is -nh."""
    repeat: int = 1
    """Send each file this many times in a row (--repeat)."""
    abort_at_end: bool = False
    """End with A-ABORT instead of A-RELEASE (--abort)."""
    uid_padding: bool = False
    """Strip one trailing space from the SOP class and instance UIDs (-up)."""
    read_mode: ReadMode = ReadMode.FILE
    rename: bool = False
    """Rename each processed file to NAME.done or NAME.bad (+rn)."""
    prefer_deflated: bool = False
    """Send uncompressed files deflated when that context was accepted (-xd)."""
    deflate_level: int = 6
    """zlib level for data sets deflated on the way out."""
