"""``-lc FILE``: a log configuration file in the log4cplus properties format that
storescu reads, the subset a DCMTK user writes.

Understood (every other key is ignored, as log4cplus ignores what it does not know)::

    log4cplus.rootLogger = LEVEL [, APPENDER ...]
    log4cplus.appender.A = log4cplus::ConsoleAppender | log4cplus::FileAppender
                           | log4cplus::RollingFileAppender | log4cplus::NullAppender
    log4cplus.appender.A.logToStdErr = true|false    (console; default false: stdout)
    log4cplus.appender.A.File = PATH                 (file appenders)
    log4cplus.appender.A.Append = true|false         (default true)
    log4cplus.appender.A.MaxFileSize = N[KB|MB]      (rolling; default 10MB)
    log4cplus.appender.A.MaxBackupIndex = N          (rolling; default 1)
    log4cplus.appender.A.Threshold = LEVEL
    log4cplus.appender.A.layout = log4cplus::SimpleLayout | log4cplus::PatternLayout
                                  | log4cplus::TTCCLayout
    log4cplus.appender.A.layout.ConversionPattern = PATTERN

Levels: TRACE, DEBUG, INFO, WARN, ERROR, FATAL, OFF (ALL is TRACE). Values may use
``${appname}`` ("dispatch"), ``${hostname}``, ``${pid}``, ``${date}``, ``${time}`` and
environment variables. A pattern knows ``%m`` ``%n`` ``%p`` ``%c`` ``%d{fmt}``
``%D{fmt}`` (strftime, ``%q`` milliseconds) ``%t`` ``%i`` / ``%P`` ``%h`` ``%r``
``%%``, with width modifiers (``%-5p``). Each line of a message of several lines (an
association dump) is written through the layout, so every line carries the prefix.

Logger-specific levels (``log4cplus.logger.*``) name DCMTK's loggers and are ignored.
A file that cannot be used is one error line in storescu's words where storescu has
them ("Specified --log-config file does not exist"), exit code 1.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from dispatch.cli.cmdline import CommandLineError
from dispatch.cli.logs import TRACE

__all__ = ["Appender", "LogConfig", "apply_log_config", "read_log_config"]

LEVELS = {
    "ALL": TRACE,
    "TRACE": TRACE,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "ERROR": logging.ERROR,
    "FATAL": logging.CRITICAL,
    "OFF": logging.CRITICAL + 10,
}
_NAMES = {
    TRACE: "TRACE",
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARN",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "FATAL",
}
_PREFIX = "log4cplus."
_APPENDERS = {"ConsoleAppender", "FileAppender", "RollingFileAppender", "NullAppender"}
_LAYOUTS = {"SimpleLayout", "PatternLayout", "TTCCLayout"}
_TTCC = "%r [%t] %p %c %x - %m%n"
_STARTED = time.time()


@dataclass(frozen=True)
class Appender:
    """One appender of the file: where lines go and how they look."""

    name: str
    kind: str
    """"ConsoleAppender", "FileAppender", "RollingFileAppender" or "NullAppender"."""
    to_stderr: bool = False
    file: str = ""
    append: bool = True
    max_bytes: int = 10 << 20
    backups: int = 1
    threshold: int = TRACE
    pattern: str = "%p - %m%n"
    """The layout as a pattern (SimpleLayout and TTCCLayout included)."""


@dataclass(frozen=True)
class LogConfig:
    """A checked ``-lc`` file: the root level and the appenders it names."""

    level: int
    appenders: tuple[Appender, ...]

    @property
    def level_name(self) -> str:
        """The root level as a ``-ll`` value ("fatal" ... "trace"; "fatal" for OFF)."""
        return _NAMES.get(self.level, "FATAL").lower()


def read_log_config(path: str) -> LogConfig:
    """Read and check the log configuration file ``path``. Raises
    :class:`CommandLineError` (one line) for a file that is missing, unreadable,
    empty of settings, without a root logger, or with a value not understood."""
    if not os.path.exists(path):
        raise CommandLineError("Specified --log-config file does not exist")
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        raise CommandLineError("Specified --log-config file cannot be read") from None
    props = _properties(text)
    if not props:
        raise CommandLineError("Specified --log-config file does not contain any settings")
    if not any(key.startswith(_PREFIX) for key in props):
        raise CommandLineError("Specified --log-config file does not contain any valid settings")
    root = props.get(_PREFIX + "rootLogger")
    if root is None:
        raise CommandLineError("Specified --log-config file does not set up log4cplus.rootLogger")
    parts = [part.strip() for part in root.split(",")]
    level = _level(parts[0] or "DEBUG", "log4cplus.rootLogger")
    appenders = tuple(_appender(props, name) for name in parts[1:] if name)
    return LogConfig(level, appenders)


def apply_log_config(config: LogConfig) -> logging.Logger:
    """Send the ``dispatch`` loggers where ``config`` says; return the command's logger.
    Raises :class:`CommandLineError` when a log file cannot be opened."""
    logging.addLevelName(TRACE, "TRACE")
    handlers: list[logging.Handler] = []
    for appender in config.appenders:
        handler = _handler(appender)
        handler.setLevel(appender.threshold)
        handler.setFormatter(_PatternFormatter(appender.pattern))
        handlers.append(handler)
    root = logging.getLogger("dispatch")
    for old in root.handlers:
        old.close()  # a log file of an earlier configuration (a test runs many)
    root.handlers[:] = handlers or [logging.NullHandler()]
    root.setLevel(config.level)
    root.propagate = False
    return root


# -- reading ---------------------------------------------------------------------------


def _properties(text: str) -> dict[str, str]:
    """``key = value`` lines (``#`` and ``!`` start comments), ``${var}`` expanded."""
    props: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!" or "=" not in line:
            continue
        key, _, value = line.partition("=")
        props[key.strip()] = value.strip()
    now = time.localtime()
    variables = {
        "appname": "dispatch",
        "hostname": socket.gethostname(),
        "pid": str(os.getpid()),
        "date": time.strftime("%Y%m%d", now),
        "time": time.strftime("%H%M%S", now),
    }

    def expand(match: re.Match[str]) -> str:
        name = match.group(1)
        return props.get(name, variables.get(name, os.environ.get(name, "")))

    return {key: re.sub(r"\$\{([^}]*)\}", expand, value) for key, value in props.items()}


def _level(text: str, key: str) -> int:
    level = LEVELS.get(text.strip().upper())
    if level is None:
        raise CommandLineError(f"Specified --log-config file: invalid log level {text!r} in {key}")
    return level


def _flag(text: str, key: str) -> bool:
    value = text.strip().lower()
    if value not in ("true", "false"):
        raise CommandLineError(f"Specified --log-config file: {key} must be true or false")
    return value == "true"


def _class(text: str, known: set[str], key: str, what: str) -> str:
    name = text.strip().removeprefix("log4cplus::")
    if name not in known:
        raise CommandLineError(f"Specified --log-config file: unknown {what} {text!r} in {key}")
    return name


def _appender(props: dict[str, str], name: str) -> Appender:
    base = f"{_PREFIX}appender.{name}"
    if base not in props:
        raise CommandLineError(f"Specified --log-config file: appender {name!r} is not defined")
    kind = _class(props[base], _APPENDERS, base, "appender class")
    # Property names as written in DCMTK's samples and log4cplus's documentation differ
    # in case ("logToStderr", "logToStdErr"): compared without it.
    own = {k[len(base) + 1 :].lower(): (k, v) for k, v in props.items() if k.startswith(base + ".")}

    def get(option: str) -> tuple[str, str] | None:
        return own.get(option.lower())

    fields: dict[str, object] = {}
    if (found := get("logToStdErr")) is not None:
        fields["to_stderr"] = _flag(found[1], found[0])
    if (found := get("Append")) is not None:
        fields["append"] = _flag(found[1], found[0])
    if (found := get("Threshold")) is not None:
        fields["threshold"] = _level(found[1], found[0])
    if (found := get("MaxBackupIndex")) is not None:
        fields["backups"] = _number(found[1], found[0])
    if (found := get("MaxFileSize")) is not None:
        fields["max_bytes"] = _size(found[1], found[0])
    if kind in ("FileAppender", "RollingFileAppender"):
        found = get("File")
        if found is None or not found[1]:
            raise CommandLineError(f"Specified --log-config file: {base}.File is not set")
        fields["file"] = found[1]
    layout = get("layout")
    if layout is not None:
        layout_kind = _class(layout[1], _LAYOUTS, layout[0], "layout")
        if layout_kind == "TTCCLayout":
            fields["pattern"] = _TTCC
        elif layout_kind == "PatternLayout":
            pattern = get("layout.ConversionPattern")
            fields["pattern"] = pattern[1] if pattern is not None else "%m%n"
            _compile(str(fields["pattern"]), base + ".layout.ConversionPattern")
    return Appender(name, kind, **fields)  # type: ignore[arg-type]


def _number(text: str, key: str) -> int:
    if not text.strip().isdigit():
        raise CommandLineError(f"Specified --log-config file: {key} must be a number")
    return int(text)


def _size(text: str, key: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*(KB|MB)?\s*", text, re.I)
    if match is None:
        raise CommandLineError(f"Specified --log-config file: {key} must be a size (N, NKB, NMB)")
    unit = {None: 1, "KB": 1 << 10, "MB": 1 << 20}[match.group(2) and match.group(2).upper()]
    return max(int(match.group(1)) * unit, 200 << 10)  # log4cplus's floor


# -- writing ---------------------------------------------------------------------------


def _handler(appender: Appender) -> logging.Handler:
    if appender.kind == "NullAppender":
        return logging.NullHandler()
    if appender.kind == "ConsoleAppender":
        return _ConsoleHandler(appender.to_stderr)
    mode = "a" if appender.append else "w"
    try:
        if appender.kind == "RollingFileAppender":
            return logging.handlers.RotatingFileHandler(
                appender.file, mode, appender.max_bytes, appender.backups, encoding="utf-8"
            )
        return logging.FileHandler(appender.file, mode, encoding="utf-8")
    except OSError as exc:
        raise CommandLineError(
            f"Specified --log-config file: cannot open log file {appender.file}: "
            f"{exc.strerror or exc}"
        ) from None


class _ConsoleHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Standard output or error as they are when a record is written (a caller may
    have redirected them since the handler was made)."""

    def __init__(self, to_stderr: bool) -> None:
        super().__init__()
        self._to_stderr = to_stderr

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr if self._to_stderr else sys.stdout
        super().emit(record)


_Piece = Callable[[logging.LogRecord, str], str]
_CONVERSION = re.compile(r"%(-?\d*)(?:\.(\d+))?([a-zA-Z%])(?:\{([^}]*)\})?")


def _compile(pattern: str, key: str) -> list[_Piece]:
    """The pattern as pieces, each giving its text for a record and one message line.
    Raises :class:`CommandLineError` for a conversion character it does not know."""
    pieces: list[_Piece] = []
    pos = 0
    for match in _CONVERSION.finditer(pattern):
        literal = pattern[pos : match.start()]
        if literal:
            pieces.append(_literal(literal))
        pos = match.end()
        width, precision, char, option = match.groups()
        convert = _converter(char, option)
        if convert is None:
            raise CommandLineError(
                f"Specified --log-config file: unknown conversion %{char} in {key}"
            )
        pieces.append(_sized(convert, width, precision))
    if pattern[pos:]:
        pieces.append(_literal(pattern[pos:]))
    return pieces


def _literal(text: str) -> _Piece:
    def literal(_record: logging.LogRecord, _line: str) -> str:
        return text

    return literal


def _sized(convert: _Piece, width: str, precision: str | None) -> _Piece:
    if not width and precision is None:
        return convert
    size = int(width) if width and width != "-" else 0

    def sized(record: logging.LogRecord, line: str) -> str:
        text = convert(record, line)
        if precision is not None:
            text = text[-int(precision) :] if int(precision) else ""
        return text.ljust(-size) if size < 0 else text.rjust(size)

    return sized


def _converter(char: str, option: str | None) -> _Piece | None:
    simple: dict[str, _Piece] = {
        "m": lambda _r, line: line,
        "n": lambda _r, _m: "\n",
        "p": lambda r, _m: _NAMES.get(r.levelno, r.levelname),
        "c": lambda r, _m: r.name,
        "t": lambda r, _m: r.threadName or str(threading.get_ident()),
        "i": lambda r, _m: str(r.process),
        "P": lambda r, _m: str(r.process),
        "h": lambda _r, _m: socket.gethostname(),
        "H": lambda _r, _m: socket.getfqdn(),
        "r": lambda r, _m: str(int((r.created - _STARTED) * 1000)),
        "x": lambda _r, _m: "",
        "%": lambda _r, _m: "%",
    }
    if char in simple:
        return simple[char]
    if char in ("d", "D"):
        fmt = option or "%Y-%m-%d %H:%M:%S"
        utc = char == "d"

        def stamp(record: logging.LogRecord, _line: str) -> str:
            moment = time.gmtime(record.created) if utc else time.localtime(record.created)
            millis = f"{int(record.msecs):03d}"
            return time.strftime(fmt.replace("%q", millis).replace("%Q", millis), moment)

        return stamp
    return None


class _PatternFormatter(logging.Formatter):
    """Formats each line of a message through a log4cplus pattern."""

    def __init__(self, pattern: str) -> None:
        super().__init__()
        self._pieces = _compile(pattern, "pattern")

    def format(self, record: logging.LogRecord) -> str:
        out = []
        for line in record.getMessage().split("\n"):
            out.append("".join(piece(record, line) for piece in self._pieces))
        # The handler adds its own newline: drop the pattern's last one.
        return "".join(out).removesuffix("\n")
