"""Text from outside made safe for a log line: one line, whatever the file name holds."""

from __future__ import annotations

from dispatch.logtext import printable


def test_printable_text_is_left_as_it_is() -> None:
    assert printable("/data/CT 1/é\\x.dcm") == "/data/CT 1/é\\x.dcm"


def test_control_characters_are_escaped_and_so_are_backslashes_then() -> None:
    assert printable("a\nI: Sending file: b\\c\t\x1b[2J") == (
        "a\\nI: Sending file: b\\\\c\\t\\u001b[2J"
    )


def test_undecodable_bytes_of_a_name_are_escaped() -> None:
    name = b"bad\xff.dcm".decode("utf-8", "surrogateescape")
    assert printable(name) == "bad\\udcff.dcm"
    assert "\n" not in printable(ValueError("x\ny"))


def test_counted_takes_the_plural_unless_one() -> None:
    from dispatch.logtext import counted

    assert [counted(n, "task") for n in (0, 1, 2)] == ["0 tasks", "1 task", "2 tasks"]
    assert counted(2, "retry", "retries") == "2 retries"
