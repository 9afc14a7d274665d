"""C-STORE response statuses: their category and meaning (PS3.4 B.2.3, PS3.7 C)."""

from __future__ import annotations

from enum import StrEnum


class StatusCategory(StrEnum):
    """What a C-STORE status tells the sender."""

    SUCCESS = "success"
    WARNING = "warning"
    FAILURE = "failure"


_MEANINGS: dict[int, str] = {
    0x0000: "Success",
    0x0001: "Warning: requested optional attributes are not supported",
    0x0107: "Warning: attribute list error",
    0x0110: "Processing failure",
    0x0111: "Duplicate SOP instance",
    0x0112: "No such SOP instance",
    0x0116: "Warning: attribute value out of range",
    0x0117: "Invalid object instance",
    0x0118: "No such SOP class",
    0x0119: "Class-instance conflict",
    0x0122: "SOP class not supported",
    0x0124: "Not authorized",
    0x0210: "Duplicate invocation",
    0x0211: "Unrecognised operation",
    0x0212: "Mistyped argument",
    0x0213: "Resource limitation",
    0xB000: "Warning: coercion of data elements",
    0xB006: "Warning: elements discarded",
    0xB007: "Warning: data set does not match SOP class",
    0xC000: "Error: cannot understand",
}


def category(status: int) -> StatusCategory:
    """Return how a sender must count ``status``: 0x0000 success; 0x0001, 0x0107,
    0x0116 and 0xBxxx warnings (stored, as DCMTK counts them); everything else a
    failure."""
    if status == 0x0000:
        return StatusCategory.SUCCESS
    if status in (0x0001, 0x0107, 0x0116) or status & 0xF000 == 0xB000:
        return StatusCategory.WARNING
    return StatusCategory.FAILURE


def is_transient(status: int) -> bool:
    """True for the out-of-resources statuses 0xA7xx, which may clear up later."""
    return status & 0xFF00 == 0xA700


def meaning(status: int) -> str:
    """A short human description of ``status``."""
    if status in _MEANINGS:
        return _MEANINGS[status]
    high = status & 0xFF00
    if high == 0xA700:
        return "Refused: out of resources"
    if high == 0xA900:
        return "Error: data set does not match SOP class"
    if status & 0xF000 == 0xC000:
        return "Error: cannot understand"
    if status & 0xF000 == 0xB000:
        return "Warning"
    return "Unknown status"


def describe(status: int) -> str:
    """``0xA700 (Refused: out of resources)``."""
    return f"0x{status:04X} ({meaning(status)})"


def status_class(status: int) -> str:
    """A bounded label for grouping statuses: ``0xA7xx``, ``0xCxxx``, or the code itself
    for the named ones in groups 0x00xx and 0x01xx."""
    if status & 0xF000 in (0xB000, 0xC000):
        return f"0x{status >> 12:X}xxx"
    if status & 0xFF00 in (0xA700, 0xA900):
        return f"0x{status >> 8:02X}xx"
    return f"0x{status:04X}"
