"""Which presentation contexts to propose, and which accepted one carries each file.

Both follow DCMTK's storescu: two contexts per SOP class by default (the preferred
syntax alone, then the other syntaxes), one with ``-xi`` or ``+C``; and per file the
first accepted context in the order: the file's own syntax, explicit VR, implicit VR
little endian, anything for that SOP class (converted, see :mod:`dispatch.codecs`).

Proposals derived from the files (``-R``, ``--propose-own``) may need more than the 128
contexts an association can carry: :func:`file_proposals` then splits them over several
associations, as dcmsend does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from dispatch.codecs import Fidelity, fidelity
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


@dataclass(frozen=True)
class ProposalGroup:
    """The contexts of one association and the SOP classes they serve."""

    contexts: tuple[PresentationContext, ...]
    sop_classes: frozenset[str]


def file_proposals(
    proposal: str,
    files: Iterable[tuple[str, str]],
    combine: bool = False,
    own_first: bool = False,
) -> list[ProposalGroup]:
    """The contexts for the given files' (SOP class, transfer syntax) pairs, split into
    groups of at most 128, one association each (as dcmsend does); a class's contexts
    are never split.

    Per SOP class, in first-seen order: with ``own_first`` (``--propose-own``) one
    context for each of its files' own syntaxes (first-seen order; with ``combine`` one
    context holding them before the proposed ones), then the contexts of ``proposal``
    as :func:`build_contexts` makes them. Without ``own_first`` and within 128 contexts
    the result is :func:`build_contexts`' (storescu's ``-R``).
    """
    syntaxes = transfer_syntaxes(proposal)
    standard: tuple[tuple[str, ...], ...]
    standard = (syntaxes,) if combine or len(syntaxes) == 1 else (syntaxes[:1], syntaxes[1:])
    own: dict[str, list[str]] = {}
    for sop_class, syntax in files:
        seen = own.setdefault(sop_class, [])
        if own_first and syntax not in seen:
            seen.append(syntax)
    batches: list[list[tuple[str, tuple[str, ...]]]] = [[]]
    for sop_class, own_syntaxes in own.items():
        groups: list[tuple[str, ...]]
        if combine and own_syntaxes:
            rest = tuple(ts for ts in syntaxes if ts not in own_syntaxes)
            groups = [(*own_syntaxes, *rest)]
        else:
            extra = [(ts,) for ts in own_syntaxes if (ts,) != standard[0]]
            groups = [*extra, *standard]
        if len(batches[-1]) + len(groups) > MAX_CONTEXTS:
            batches.append([])
        batches[-1].extend((sop_class, group) for group in groups)
    return [
        ProposalGroup(
            tuple(
                PresentationContext(2 * index + 1, sop_class, group)
                for index, (sop_class, group) in enumerate(batch)
            ),
            frozenset(sop_class for sop_class, _ in batch),
        )
        for batch in batches
        if batch
    ]


def choose_context(
    accepted: Sequence[AcceptedContext],
    sop_class: str,
    file_syntax: str,
    prefer_deflated: bool = False,
    allow_lossy: bool = False,
    problem: Callable[[str], str] | None = None,
) -> AcceptedContext:
    """The accepted context that will carry a file of ``sop_class`` in ``file_syntax``.

    Order of preference (as storescu): the file's own syntax; explicit VR little or
    big endian; implicit VR little endian; then any context of the class the file can
    be converted to without loss (context id order), then, with ``allow_lossy``, one it
    can be converted to with loss. An encapsulated file is decompressed into the
    uncompressed syntaxes, and re-encoded into others (see :mod:`dispatch.codecs`); an
    uncompressed one compressed where an encoder exists. With ``prefer_deflated``
    (``-xd``) an uncompressed file goes deflated when that was accepted, as storescu
    does. ``problem(target)`` tells why the file's pixels cannot be converted to
    ``target`` ("" when they can; by default every conversion of the table is taken
    as possible). Raises :class:`NoPresentationContext` naming the reason.
    """
    candidates = [c for c in accepted if c.abstract_syntax == sop_class]
    if not candidates:
        raise NoPresentationContext(f"no presentation context for SOP class {sop_class}")
    deflate_first = prefer_deflated and file_syntax in _CONVERTIBLE_SOURCES
    if not deflate_first:
        # The first choice, and by far the most common one, found without the search
        # below: the file as it is needs no check (this runs once per file sent).
        for context in candidates:
            if context.transfer_syntax == file_syntax:
                return context
    reasons: dict[str, str] = {}

    def usable(target: str, lossy_ok: bool) -> bool:
        kind = fidelity(file_syntax, target)
        if kind is None:
            return False
        if kind is Fidelity.LOSSY and not lossy_ok:
            reasons.setdefault(target, "lossy conversion not allowed (--allow-lossy)")
            return False
        if kind is Fidelity.SAME or problem is None:
            return True
        why = problem(target)
        if why:
            reasons.setdefault(target, why)
        return not why

    order: tuple[str, ...] = (file_syntax, EXPLICIT_LE, EXPLICIT_BE, IMPLICIT_LE)
    if deflate_first:
        order = (DEFLATED_LE, *order)
    for wanted in order:
        for context in candidates:
            if context.transfer_syntax == wanted and usable(wanted, False):
                return context
    # storescu's last resort, any accepted context of the class it can convert to,
    # extended by the codecs: lossless conversions first, then lossy ones if allowed.
    for lossy_ok in (False, True) if allow_lossy else (False,):
        for context in candidates:
            if usable(context.transfer_syntax, lossy_ok):
                return context
    offered = ", ".join(sorted({c.transfer_syntax for c in candidates}))
    why = "; ".join(f"{ts}: {text}" for ts, text in sorted(reasons.items()))
    raise NoPresentationContext(
        f"no presentation context for transfer syntax {file_syntax} of SOP class"
        f" {sop_class} (accepted: {offered}); unable to convert" + (f" ({why})" if why else "")
    )


def _convertible(source: str, target: str) -> bool:
    """Whether a data set in ``source`` can go as ``target`` without loss (lossy
    conversions need the user's permission: see :func:`choose_context`)."""
    kind = fidelity(source, target)
    return kind is Fidelity.SAME or kind is Fidelity.LOSSLESS


_CONVERTIBLE_SOURCES = UNCOMPRESSED | {DEFLATED_LE}
"""Syntaxes that go deflated with ``-xd``: the uncompressed ones, and deflated itself."""
