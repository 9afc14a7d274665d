"""Presentation contexts proposed, and the context chosen for each file."""

from __future__ import annotations

import pytest

from dispatch.errors import NoPresentationContext, UsageError
from dispatch.net import AcceptedContext
from dispatch.proposals import build_contexts, choose_context
from dispatch.uids import (
    DEFAULT_STORAGE_CLASSES,
    EXPLICIT_BE,
    EXPLICIT_LE,
    IMPLICIT_LE,
    JPEG_2000,
    RLE_LOSSLESS,
)

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"


def test_default_proposes_two_contexts_for_each_of_dcmtks_64_classes() -> None:
    contexts = build_contexts("uncompressed")
    assert len(DEFAULT_STORAGE_CLASSES) == 64
    assert len(contexts) == 128
    assert [c.context_id for c in contexts] == list(range(1, 256, 2))
    first, second = contexts[0], contexts[1]
    assert first.abstract_syntax == second.abstract_syntax == DEFAULT_STORAGE_CLASSES[0]
    assert first.transfer_syntaxes == (EXPLICIT_LE,)
    assert second.transfer_syntaxes == (EXPLICIT_BE, IMPLICIT_LE)


def test_big_endian_first() -> None:
    contexts = build_contexts("big", [CT])
    assert [c.transfer_syntaxes for c in contexts] == [(EXPLICIT_BE,), (EXPLICIT_LE, IMPLICIT_LE)]


def test_implicit_only_gives_one_context_per_class() -> None:
    contexts = build_contexts("implicit", [CT, MR])
    assert [(c.context_id, c.transfer_syntaxes) for c in contexts] == [
        (1, (IMPLICIT_LE,)),
        (3, (IMPLICIT_LE,)),
    ]


def test_compressed_choice_is_proposed_alone_then_uncompressed() -> None:
    contexts = build_contexts(RLE_LOSSLESS, [CT])
    assert [c.transfer_syntaxes for c in contexts] == [
        (RLE_LOSSLESS,),
        (EXPLICIT_LE, EXPLICIT_BE, IMPLICIT_LE),
    ]


def test_combine_puts_all_syntaxes_in_one_context() -> None:
    contexts = build_contexts(RLE_LOSSLESS, [CT, MR, CT], combine=True)
    assert [(c.abstract_syntax, c.transfer_syntaxes) for c in contexts] == [
        (CT, (RLE_LOSSLESS, EXPLICIT_LE, EXPLICIT_BE, IMPLICIT_LE)),
        (MR, (RLE_LOSSLESS, EXPLICIT_LE, EXPLICIT_BE, IMPLICIT_LE)),
    ]


def test_more_than_128_contexts_is_an_error() -> None:
    classes = [f"1.2.3.{n}" for n in range(65)]
    with pytest.raises(UsageError, match="too many presentation contexts"):
        build_contexts("uncompressed", classes)
    assert len(build_contexts("uncompressed", classes, combine=True)) == 65


def _accepted(*pairs: tuple[str, str]) -> list[AcceptedContext]:
    return [AcceptedContext(2 * i + 1, sop, ts) for i, (sop, ts) in enumerate(pairs)]


def test_file_syntax_wins_when_accepted() -> None:
    accepted = _accepted((CT, EXPLICIT_LE), (CT, IMPLICIT_LE))
    assert choose_context(accepted, CT, IMPLICIT_LE).transfer_syntax == IMPLICIT_LE


def test_explicit_preferred_over_implicit_for_conversion() -> None:
    accepted = _accepted((CT, IMPLICIT_LE), (CT, EXPLICIT_BE))
    assert choose_context(accepted, CT, EXPLICIT_LE).transfer_syntax == EXPLICIT_BE


def test_implicit_used_when_nothing_else() -> None:
    accepted = _accepted((CT, IMPLICIT_LE), (MR, EXPLICIT_LE))
    assert choose_context(accepted, CT, EXPLICIT_BE).transfer_syntax == IMPLICIT_LE


def test_compressed_file_without_its_syntax_cannot_be_converted() -> None:
    accepted = _accepted((CT, EXPLICIT_LE))
    with pytest.raises(NoPresentationContext, match="unable to convert"):
        choose_context(accepted, CT, JPEG_2000)


def test_compressed_file_with_its_syntax_accepted() -> None:
    accepted = _accepted((CT, EXPLICIT_LE), (CT, JPEG_2000))
    assert choose_context(accepted, CT, JPEG_2000).transfer_syntax == JPEG_2000


def test_sop_class_not_accepted() -> None:
    with pytest.raises(NoPresentationContext, match="no presentation context for SOP class"):
        choose_context(_accepted((MR, EXPLICIT_LE)), CT, EXPLICIT_LE)


def test_uncompressed_file_goes_deflated_when_only_that_was_accepted() -> None:
    from dispatch.uids import DEFLATED_LE

    accepted = _accepted((CT, JPEG_2000), (CT, DEFLATED_LE))
    assert choose_context(accepted, CT, IMPLICIT_LE).transfer_syntax == DEFLATED_LE
