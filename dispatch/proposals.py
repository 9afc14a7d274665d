"""Which presentation contexts to propose, and which accepted one carries each file.

Both follow DCMTK's storescu: two contexts per SOP class by default (the preferred
syntax alone, then the other syntaxes), one with ``-xi`` or ``+C``; and per file the
first accepted context in the order: the file's own syntax, explicit VR, implicit VR
little endian, anything for that SOP class.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from dispatch.errors import NoPresentationContext, UsageError
from dispatch.net import AcceptedContext
from dispatch.settings import PresentationContext
from dispatch.uids import (
    DEFAULT_STORAGE_CLASSES,
    DEFLATED_LE,
    EXPLICIT_BE,
    EXPLICIT_LE,
    IMPLICIT_LE,
    UNCOMPRESSED,
)

MAX_CONTEXTS = 128

#: Named choices of -x=, -xe, -xb, -xi; any other value is a transfer syntax UID
#: proposed first, followed by the uncompressed syntaxes.
PROPOSAL_UNCOMPRESSED = "uncompressed"
PROPOSAL_LITTLE = "little"
PROPOSAL_BIG = "big"
PROPOSAL_IMPLICIT = "implicit"

_LOCAL_FIRST = (EXPLICIT_LE, EXPLICIT_BE, IMPLICIT_LE)
"""Explicit VR in local byte order first: every platform this runs on is little endian."""


def transfer_syntaxes(proposal: str) -> tuple[str, ...]:
    """The syntaxes proposed for every SOP class, preferred first."""
    if proposal in (PROPOSAL_UNCOMPRESSED, PROPOSAL_LITTLE):
        return _LOCAL_FIRST
    if proposal == PROPOSAL_BIG:
        return (EXPLICIT_BE, EXPLICIT_LE, IMPLICIT_LE)
    if proposal == PROPOSAL_IMPLICIT:
        return (IMPLICIT_LE,)
    return (proposal, *_LOCAL_FIRST)


def build_contexts(
    proposal: str, sop_classes: Iterable[str] | None = None, combine: bool = False
) -> tuple[PresentationContext, ...]:
    """The presentation contexts of an A-ASSOCIATE-RQ.

    ``sop_classes`` None proposes DCMTK's default storage list; otherwise the given
    classes (``-R``), duplicates dropped, in first-seen order. Raises
    :class:`UsageError` when more than 128 contexts would be needed.
    """
    classes = DEFAULT_STORAGE_CLASSES if sop_classes is None else tuple(dict.fromkeys(sop_classes))
    syntaxes = transfer_syntaxes(proposal)
    groups: tuple[tuple[str, ...], ...]
    groups = (syntaxes,) if combine or len(syntaxes) == 1 else (syntaxes[:1], syntaxes[1:])
    needed = len(classes) * len(groups)
    if needed > MAX_CONTEXTS:
        raise UsageError(
            f"too many presentation contexts: {needed} needed, at most {MAX_CONTEXTS} allowed"
        )
    contexts: list[PresentationContext] = []
    for sop_class in classes:
        for group in groups:
            contexts.append(PresentationContext(2 * len(contexts) + 1, sop_class, group))
    return tuple(contexts)


def choose_context(
    accepted: Sequence[AcceptedContext],
    sop_class: str,
    file_syntax: str,
    prefer_deflated: bool = False,
) -> AcceptedContext:
    """The accepted context that will carry a file of ``sop_class`` in ``file_syntax``.

    Order of preference (as storescu): the file's own syntax; explicit VR little or
    big endian; implicit VR little endian; any context of the class. A context whose
    syntax differs from the file's is only usable when both are uncompressed (the data
    set is then converted on the way out). With ``prefer_deflated`` (``-xd``) an
    uncompressed file goes deflated when that was accepted, as storescu does.
    Raises :class:`NoPresentationContext`.
    """
    candidates = [c for c in accepted if c.abstract_syntax == sop_class]
    if not candidates:
        raise NoPresentationContext(f"no presentation context for SOP class {sop_class}")
    order: tuple[str, ...] = (file_syntax, EXPLICIT_LE, EXPLICIT_BE, IMPLICIT_LE)
    if prefer_deflated and file_syntax in _CONVERTIBLE_SOURCES:
        order = (DEFLATED_LE, *order)
    for wanted in order:
        for context in candidates:
            if context.transfer_syntax == wanted and _convertible(file_syntax, wanted):
                return context
    # storescu's last resort: any accepted context of the class it can convert to.
    for context in candidates:
        if _convertible(file_syntax, context.transfer_syntax):
            return context
    offered = ", ".join(sorted({c.transfer_syntax for c in candidates}))
    raise NoPresentationContext(
        f"no presentation context for transfer syntax {file_syntax} of SOP class"
        f" {sop_class} (accepted: {offered}); unable to convert"
    )


def _convertible(source: str, target: str) -> bool:
    return source == target or (source in _CONVERTIBLE_SOURCES and target in _CONVERTIBLE_SOURCES)


_CONVERTIBLE_SOURCES = UNCOMPRESSED | {DEFLATED_LE}
"""Deflated explicit VR little endian inflates to any uncompressed syntax, and any of
those deflates."""
