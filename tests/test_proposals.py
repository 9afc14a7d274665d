"""Presentation contexts proposed, and the context chosen for each file."""

from __future__ import annotations

import pytest

from dispatch.errors import NoPresentationContext, UsageError
from dispatch.net import AcceptedContext
from dispatch.proposals import build_contexts, choose_context, file_proposals
from dispatch.uids import (
    DEFAULT_STORAGE_CLASSES,
    DEFLATED_LE,
    EXPLICIT_BE,
    EXPLICIT_LE,
    IMPLICIT_LE,
    JPEG_2000,
    JPEG_BASELINE,
    JPEG_LS_LOSSLESS,
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


def test_compressed_file_without_its_syntax_is_decompressed() -> None:
    accepted = _accepted((CT, RLE_LOSSLESS), (CT, IMPLICIT_LE))
    assert choose_context(accepted, CT, JPEG_2000).transfer_syntax == IMPLICIT_LE


def test_compressed_file_prefers_a_lossless_compressed_target_to_a_lossy_one() -> None:
    accepted = _accepted((CT, JPEG_BASELINE), (CT, RLE_LOSSLESS))
    chosen = choose_context(accepted, CT, JPEG_2000, allow_lossy=True)
    assert chosen.transfer_syntax == RLE_LOSSLESS


def test_uncompressed_file_keeps_storescus_order_before_compressing() -> None:
    accepted = _accepted((CT, RLE_LOSSLESS), (CT, IMPLICIT_LE), (CT, EXPLICIT_BE))
    assert choose_context(accepted, CT, EXPLICIT_LE).transfer_syntax == EXPLICIT_BE


def test_uncompressed_file_is_compressed_when_only_that_was_accepted() -> None:
    accepted = _accepted((CT, JPEG_LS_LOSSLESS))
    assert choose_context(accepted, CT, IMPLICIT_LE).transfer_syntax == JPEG_LS_LOSSLESS


def test_lossy_conversion_needs_permission() -> None:
    accepted = _accepted((CT, JPEG_BASELINE))
    with pytest.raises(NoPresentationContext, match="lossy conversion not allowed"):
        choose_context(accepted, CT, EXPLICIT_LE)
    assert choose_context(accepted, CT, EXPLICIT_LE, allow_lossy=True).context_id == 1


def test_target_the_pixels_do_not_suit_is_skipped_with_its_reason() -> None:
    accepted = _accepted((CT, JPEG_LS_LOSSLESS), (CT, RLE_LOSSLESS))

    def problem(target: str) -> str:
        return "32-bit pixel data cannot be encoded" if target == JPEG_LS_LOSSLESS else ""

    assert choose_context(accepted, CT, EXPLICIT_LE, problem=problem).context_id == 3
    with pytest.raises(NoPresentationContext, match="32-bit pixel data"):
        choose_context(accepted[:1], CT, EXPLICIT_LE, problem=problem)


def test_deflated_file_cannot_be_compressed() -> None:
    with pytest.raises(NoPresentationContext, match="unable to convert"):
        choose_context(_accepted((CT, RLE_LOSSLESS)), CT, DEFLATED_LE)


# -- proposals derived from the files ---------------------------------------------------


def test_file_proposals_without_own_syntaxes_equal_build_contexts() -> None:
    files = [(CT, JPEG_2000), (MR, EXPLICIT_LE), (CT, EXPLICIT_LE)]
    (group,) = file_proposals("uncompressed", files)
    assert group.contexts == build_contexts("uncompressed", [CT, MR])
    assert group.sop_classes == {CT, MR}


def test_file_proposals_put_the_own_syntaxes_first() -> None:
    files = [(CT, JPEG_2000), (CT, EXPLICIT_LE), (CT, RLE_LOSSLESS)]
    (group,) = file_proposals("uncompressed", files, own_first=True)
    assert [c.transfer_syntaxes for c in group.contexts] == [
        (JPEG_2000,),
        (RLE_LOSSLESS,),
        (EXPLICIT_LE,),
        (EXPLICIT_BE, IMPLICIT_LE),
    ]
    (combined,) = file_proposals("uncompressed", files, combine=True, own_first=True)
    assert [c.transfer_syntaxes for c in combined.contexts] == [
        (JPEG_2000, EXPLICIT_LE, RLE_LOSSLESS, EXPLICIT_BE, IMPLICIT_LE)
    ]


def test_file_proposals_over_128_contexts_are_split_keeping_each_class_whole() -> None:
    classes = [f"1.2.3.{n}" for n in range(50)]
    files = [(c, ts) for c in classes for ts in (JPEG_2000, EXPLICIT_LE)]
    groups = file_proposals("uncompressed", files, own_first=True)
    assert [len(g.contexts) for g in groups] == [126, 24]
    for group in groups:
        assert [c.context_id for c in group.contexts] == list(range(1, 2 * len(group.contexts), 2))
        assert {c.abstract_syntax for c in group.contexts} == group.sop_classes
    assert groups[0].sop_classes.isdisjoint(groups[1].sop_classes)


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
