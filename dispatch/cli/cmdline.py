"""A DCMTK-style command-line engine: option tables, ``@file`` expansion, help text.

DCMTK's conventions, which :func:`parse_command_line` reproduces:

- an argument is an option when it starts with ``-`` or ``+``, is longer than one
  character and its second character is not a digit (``-1`` and ``+5`` are parameters);
- options may stand anywhere among the parameters and take the next ``nargs``
  arguments as their values, whatever those look like (``-aet -x`` gives ``-x``);
- exclusive options share a destination, so the rightmost one wins;
- ``@name`` anywhere on the command line is replaced by the words of file ``name``
  (see :func:`split_command_file`); words read from a command file are never expanded
  again.

Parsing happens in two steps, as in DCMTK: :func:`parse_command_line` checks the syntax
(unknown options, missing option values) and answers ``-h`` / ``--version``; values are
converted and range-checked only when the caller asks for them with
:meth:`ParsedCommandLine.value`, so the caller decides the order in which errors are
reported. The engine knows no particular program: the option tables live with the
commands (:mod:`dispatch.cli.options` for ``dispatch send``) and can be extended.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, TextIO

from dispatch.errors import UsageError

__all__ = [
    "CliExit",
    "CommandLineError",
    "CommandSpec",
    "Occurrence",
    "OptionSpec",
    "ParamSpec",
    "ParsedCommandLine",
    "ValueSpec",
    "check_params",
    "convert_param",
    "expand_command_files",
    "format_arguments",
    "parse_command_line",
    "render_help",
    "split_command_file",
]

ValueKind = Literal["str", "int", "uint", "seconds", "choice"]

_INTEGER = re.compile(r"\s*[+-]?\d+\s*\Z")
_NUMBER = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)\s*\Z")


class CliExit(Exception):
    """Parsing ended the program: print ``text`` on ``stream`` and exit with ``code``.

    Raised for help and version output (code 0, standard output) and, through
    :class:`CommandLineError`, for command-line errors (code 1, standard error).
    """

    quiet = False
    """True when nothing should be printed (an error found under ``-q``)."""

    def __init__(self, code: int, text: str, stream: Literal["stdout", "stderr"]) -> None:
        super().__init__(text)
        self.code = code
        self.text = text
        self.stream = stream

    def emit(self, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
        """Print :attr:`text` where it belongs (unless :attr:`quiet`); return the exit code."""
        if not self.quiet:
            out = (stdout or sys.stdout) if self.stream == "stdout" else (stderr or sys.stderr)
            out.write(self.text if self.text.endswith("\n") else self.text + "\n")
        return self.code


class CommandLineError(CliExit, UsageError):
    """The command line is wrong. ``message`` is DCMTK's wording, ``text`` the line to print.

    ``quiet`` is true when ``-q`` was in force when the error was found: DCMTK then
    prints nothing, and so should the caller.
    """

    def __init__(self, message: str, *, quiet: bool = False) -> None:
        super().__init__(1, f"error: {message}", "stderr")
        self.message = message
        self.quiet = quiet


@dataclass(frozen=True)
class ValueSpec:
    """How one option value is converted and checked.

    ``kind``: ``str`` (as is), ``int`` (signed integer), ``uint`` (unsigned integer: a
    minus sign is invalid, not an underflow, as in DCMTK), ``seconds`` (a decimal
    number of seconds; fractions allowed; whole numbers come back as ``int``),
    ``choice`` (one of ``choices``, compared case-insensitively, returned lower-case).
    ``minimum`` / ``maximum`` are inclusive bounds. ``invalid`` replaces DCMTK's
    generic message for a bad value.
    """

    kind: ValueKind = "str"
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    invalid: str | None = None


@dataclass(frozen=True)
class OptionSpec:
    """One option: its names, what it stores, its help.

    ``names`` lists the spellings (``("-pdu", "--max-pdu")``); the first one starting
    with ``--`` names the option in messages and in ``--arguments`` output. With
    ``nargs == 0`` the option stores ``const`` into ``dest``; with ``nargs == 1`` its
    converted value; with more, a tuple of values. Options sharing a ``dest`` are
    mutually exclusive and the rightmost wins. ``refused`` (a reason) makes the option
    recognised, its values consumed, and then rejected. ``section`` / ``subsection``
    place it in the help text, ``metavar`` and ``help`` are the help lines; an option
    with ``hidden`` or ``refused`` set is left out of the help.
    """

    names: tuple[str, ...]
    dest: str
    nargs: int = 0
    const: object = True
    value: ValueSpec = field(default_factory=ValueSpec)
    section: str = "general options"
    subsection: str = ""
    metavar: str = ""
    help: str = ""
    refused: str | None = None
    hidden: bool = False

    @property
    def long_name(self) -> str:
        """The canonical (long) spelling, used in messages."""
        for name in self.names:
            if name.startswith("--"):
                return name
        return self.names[0]

    @property
    def short_name(self) -> str:
        """The short spelling, or "" if the option has only a long one."""
        for name in self.names:
            if not name.startswith("--"):
                return name
        return ""


@dataclass(frozen=True)
class ParamSpec:
    """A positional parameter; ``many`` takes every remaining parameter (one at least)."""

    name: str
    help: str
    many: bool = False


@dataclass(frozen=True)
class CommandSpec:
    """A whole command: name, one-line description, parameters, options, help layout.

    ``sections`` orders the help sections; sections named by options but not listed
    come after them in order of first appearance. ``version`` produces the
    ``--version`` text. Use :meth:`extended` to add options for a derived command.
    """

    prog: str
    description: str
    params: tuple[ParamSpec, ...]
    options: tuple[OptionSpec, ...]
    sections: tuple[str, ...] = ()
    version: Callable[[CommandSpec], str] | None = None

    def extended(
        self,
        *,
        prog: str | None = None,
        description: str | None = None,
        options: Iterable[OptionSpec] = (),
        sections: Iterable[str] = (),
    ) -> CommandSpec:
        """A copy with more options (and help sections), for commands built on this one."""
        added = tuple(options)
        known = {name for opt in self.options for name in opt.names}
        clash = sorted(name for opt in added for name in opt.names if name in known)
        if clash:
            raise ValueError(f"options already defined: {', '.join(clash)}")
        return replace(
            self,
            prog=self.prog if prog is None else prog,
            description=self.description if description is None else description,
            options=self.options + added,
            sections=self.sections + tuple(s for s in sections if s not in self.sections),
        )

    def lookup(self) -> dict[str, OptionSpec]:
        """Every spelling mapped to its option."""
        table: dict[str, OptionSpec] = {}
        for opt in self.options:
            for name in opt.names:
                if name in table:
                    raise ValueError(f"option {name} defined twice")
                table[name] = opt
        return table


@dataclass(frozen=True)
class Occurrence:
    """One option as it appeared on the (expanded) command line, with its raw values."""

    option: OptionSpec
    values: tuple[str, ...]
    name: str = ""
    """The spelling used on the command line."""


@dataclass(frozen=True)
class ParsedCommandLine:
    """The outcome of the syntax step: parameters and option occurrences, in order.

    ``arguments`` is the expanded command line with every option spelled long, as
    ``--arguments`` shows it.
    """

    spec: CommandSpec
    params: tuple[str, ...]
    occurrences: tuple[Occurrence, ...]
    arguments: tuple[str, ...]

    def last(self, dest: str) -> Occurrence | None:
        """The rightmost occurrence of any option storing into ``dest``."""
        for occ in reversed(self.occurrences):
            if occ.option.dest == dest:
                return occ
        return None

    def value(self, dest: str, default: object = None, *, quiet: bool = False) -> object:
        """The converted value of the rightmost option storing into ``dest``, or ``default``.

        Raises :class:`CommandLineError` with DCMTK's wording when the value is invalid
        (``quiet`` is passed on to the error).
        """
        occ = self.last(dest)
        if occ is None:
            return default
        opt = occ.option
        if opt.nargs == 0:
            return opt.const
        converted = tuple(_convert(opt, raw, quiet) for raw in occ.values)
        return converted[0] if opt.nargs == 1 else converted

    def int_value(
        self, dest: str, default: int | None = None, *, quiet: bool = False
    ) -> int | None:
        """:meth:`value` for an integer option."""
        value = self.value(dest, default, quiet=quiet)
        return None if value is None else int(value)  # type: ignore[call-overload]

    def float_value(
        self, dest: str, default: float | None = None, *, quiet: bool = False
    ) -> float | None:
        """:meth:`value` for a number (``seconds``) option."""
        value = self.value(dest, default, quiet=quiet)
        return None if value is None else float(value)  # type: ignore[arg-type]

    def str_value(
        self, dest: str, default: str | None = None, *, quiet: bool = False
    ) -> str | None:
        """:meth:`value` for a string or choice option."""
        value = self.value(dest, default, quiet=quiet)
        return None if value is None else str(value)

    def values(self, dest: str, *, quiet: bool = False) -> list[object]:
        """Every value given for ``dest``, left to right (for repeatable options)."""
        out: list[object] = []
        for occ in self.occurrences:
            if occ.option.dest == dest:
                if occ.option.nargs == 0:
                    out.append(occ.option.const)
                else:
                    out.extend(_convert(occ.option, raw, quiet) for raw in occ.values)
        return out


def split_command_file(text: str) -> list[str]:
    """Split the contents of a command file into arguments the way DCMTK does.

    Words are separated by white space (line ends included; ``#`` is not special).
    A single- or double-quoted run groups white space into a word and the quotes are
    removed; the closing quote ends the word (``a"b c"d`` gives ``ab c`` and ``d``), so
    ``""`` is an empty argument. An unterminated quote runs to the end of the file.
    """
    words: list[str] = []
    current: list[str] = []
    quote = ""
    for ch in text:
        if quote:
            if ch == quote:
                words.append("".join(current))
                current = []
                quote = ""
            else:
                current.append(ch)
        elif ch in "\"'":
            quote = ch
        elif ch.isspace():
            if current:
                words.append("".join(current))
                current = []
        else:
            current.append(ch)
    if current or quote:
        words.append("".join(current))
    return words


def expand_command_files(argv: Sequence[str]) -> list[str]:
    """Replace every ``@name`` argument by the words of file ``name``; no nesting.

    A lone ``@`` is an ordinary argument. Raises :class:`CommandLineError`
    ("Cannot open command file 'name'") when the file cannot be read.
    """
    out: list[str] = []
    for arg in argv:
        if len(arg) > 1 and arg.startswith("@"):
            name = arg[1:]
            try:
                with open(name, "rb") as handle:
                    data = handle.read()
            except OSError:
                raise CommandLineError(f"Cannot open command file '{name}'") from None
            out.extend(split_command_file(data.decode("utf-8", "surrogateescape")))
        else:
            out.append(arg)
    return out


def _is_option(arg: str) -> bool:
    return len(arg) > 1 and arg[0] in "-+" and not arg[1].isdigit()


def parse_command_line(argv: Sequence[str], spec: CommandSpec) -> ParsedCommandLine:
    """Check the syntax of ``argv`` (without the program name) against ``spec``.

    Raises :class:`CliExit` with the help text when ``argv`` is empty or ``-h`` /
    ``--help`` was given (help wins over ``--version``), with the version text for
    ``--version``; raises :class:`CommandLineError` for a missing command file, an
    unknown option or a missing option value. The options with ``dest`` ``"help"`` /
    ``"version"`` are the help and version switches.
    """
    if not argv:
        raise CliExit(0, render_help(spec), "stdout")
    args = expand_command_files(argv)
    table = spec.lookup()
    params: list[str] = []
    occurrences: list[Occurrence] = []
    shown: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not _is_option(arg):
            params.append(arg)
            shown.append(arg)
            continue
        opt = table.get(arg)
        if opt is None:
            raise CommandLineError(f"Unknown option {arg}")
        if i + opt.nargs > len(args):
            raise CommandLineError(f"Missing value for option {opt.long_name}")
        values = tuple(args[i : i + opt.nargs])
        i += opt.nargs
        occurrences.append(Occurrence(opt, values, arg))
        shown.append(opt.long_name)
        shown.extend(values)
    parsed = ParsedCommandLine(spec, tuple(params), tuple(occurrences), tuple(shown))
    if parsed.last("help") is not None:
        raise CliExit(0, render_help(spec), "stdout")
    if parsed.last("version") is not None:
        text = spec.version(spec) if spec.version else spec.prog
        raise CliExit(0, text, "stdout")
    return parsed


def check_params(parsed: ParsedCommandLine) -> None:
    """Raise "Missing parameter NAME" / "Too many parameters" as DCMTK does."""
    params = parsed.spec.params
    for index, param in enumerate(params):
        if index >= len(parsed.params):
            raise CommandLineError(f"Missing parameter {param.name}")
    if not (params and params[-1].many) and len(parsed.params) > len(params):
        raise CommandLineError("Too many parameters")


def format_arguments(prog: str, arguments: Sequence[str]) -> str:
    """The two lines DCMTK's ``--arguments`` prints (on standard error).

    Empty arguments are counted but not shown, as DCMTK does.
    """
    quoted = "".join(f"'{arg}' " for arg in arguments if arg)
    return f"I: calling '{prog}' with {len(arguments)} arguments: {quoted}\nI: "


def _bounds_message(opt: OptionSpec, raw: str, number: float) -> str | None:
    spec = opt.value
    shown = raw.strip()
    if spec.minimum is not None and number < spec.minimum:
        return f"Invalid value for option {opt.long_name} (underflow: {shown})"
    if spec.maximum is not None and number > spec.maximum:
        return f"Invalid value for option {opt.long_name} (overflow: {shown})"
    return None


def _convert(opt: OptionSpec, raw: str, quiet: bool) -> object:
    spec = opt.value
    invalid = spec.invalid or f"Invalid value for option {opt.long_name} ({raw})"
    if spec.kind == "str":
        return raw
    if spec.kind == "choice":
        lowered = raw.lower()
        if lowered not in spec.choices:
            raise CommandLineError(invalid, quiet=quiet)
        return lowered
    if spec.kind in ("int", "uint"):
        if not _INTEGER.match(raw) or (spec.kind == "uint" and raw.strip().startswith("-")):
            raise CommandLineError(invalid, quiet=quiet)
        number: float = int(raw)
    else:
        if not _NUMBER.match(raw):
            raise CommandLineError(invalid, quiet=quiet)
        number = float(raw)
        if number.is_integer():
            number = int(number)
    problem = _bounds_message(opt, raw, number)
    if problem:
        raise CommandLineError(problem, quiet=quiet)
    return number


def convert_param(raw: str, minimum: int, maximum: int) -> int:
    """An unsigned integer parameter checked like DCMTK's ``getParamAndCheckMinMax``.

    Messages: "Invalid parameter value X", with " (underflow)" / " (overflow)" when out
    of range; a negative number wraps around in DCMTK and so counts as an overflow.
    """
    if not _INTEGER.match(raw):
        raise CommandLineError(f"Invalid parameter value {raw}")
    number = int(raw)
    if number < 0 or number > maximum:
        raise CommandLineError(f"Invalid parameter value {raw} (overflow)")
    if number < minimum:
        raise CommandLineError(f"Invalid parameter value {raw} (underflow)")
    return number


_LONG_COLUMN = 10
_NAME_COLUMN = 31


def _help_head(opt: OptionSpec) -> str:
    indent = "    " if opt.subsection else "  "
    short = opt.short_name
    long = opt.long_name if opt.long_name != short else ""
    if not long:
        return f"{indent}{short}"
    if len(indent) + len(short) >= _LONG_COLUMN:
        return f"{indent}{short} {long}"
    return f"{indent}{short}".ljust(_LONG_COLUMN) + long


def _help_lines(opt: OptionSpec, column: int) -> list[str]:
    text = [line for line in (opt.metavar, *opt.help.splitlines()) if line] or [""]
    lines = [f"{_help_head(opt):<{column}}{text[0]}".rstrip()]
    lines.extend(" " * column + line for line in text[1:])
    return lines


def render_help(spec: CommandSpec) -> str:
    """The help text: usage, parameters, then every shown option by section."""
    usage = " ".join(p.name + ("..." if p.many else "") for p in spec.params)
    lines = [
        f"{spec.prog}: {spec.description}",
        f"usage: {spec.prog} [options] {usage}",
        "",
        "parameters:",
    ]
    for param in spec.params:
        lines.append(f"  {param.name:<{_NAME_COLUMN - 2}}{param.help}")
    lines.append("")
    order = list(spec.sections)
    for opt in spec.options:
        if opt.section not in order:
            order.append(opt.section)
    for section in order:
        shown = [o for o in spec.options if o.section == section and not (o.hidden or o.refused)]
        if not shown:
            continue
        lines.append(f"{section}:")
        # As in DCMTK's help, a section's texts start in one column, moved right as far
        # as its longest option names need.
        column = max(_NAME_COLUMN, *(len(_help_head(opt)) + 2 for opt in shown))
        subsection: str | None = None
        for opt in shown:
            if opt.subsection and opt.subsection != subsection:
                lines.append(f"  {opt.subsection}:")
            subsection = opt.subsection
            lines.extend(_help_lines(opt, column))
    return "\n".join(lines)
