"""The storescu-compatible command line of ``dispatch send`` (dispatch.cli.options)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

import dispatch
from dispatch import uids
from dispatch.cli.cmdline import (
    CliExit,
    CommandLineError,
    OptionSpec,
    ValueSpec,
    parse_command_line,
    split_command_file,
)
from dispatch.cli.options import SEND_SPEC, SendOptions, parse_send_args, send_options_from
from dispatch.errors import UsageError
from dispatch.settings import ReadMode, SendPolicy, Timeouts
from tests.support.programs import require_program

BASE = ["localhost", "104", "f.dcm"]


def parse(*args: str) -> SendOptions:
    return parse_send_args([*args, *BASE], stderr=io.StringIO())


def error(*args: str, base: bool = True) -> CommandLineError:
    argv = [*args, *BASE] if base else list(args)
    with pytest.raises(CommandLineError) as info:
        parse_send_args(argv, stderr=io.StringIO())
    return info.value


def dcmtk_error(args: list[str]) -> str:
    """The last line DCMTK's storescu prints on standard error for ``args``."""
    program = require_program("storescu")
    done = subprocess.run(
        [str(program), *args], capture_output=True, text=True, timeout=10, check=False
    )
    assert done.returncode == 1, done
    return done.stderr.strip().splitlines()[-1]


# -- help, version, no arguments -------------------------------------------------------


def test_no_arguments_prints_usage_and_exits_0() -> None:
    with pytest.raises(CliExit) as info:
        parse_send_args([])
    assert info.value.code == 0
    assert info.value.stream == "stdout"
    assert "usage: dispatch send [options] peer port dcmfile-in..." in info.value.text


@pytest.mark.parametrize(
    "argv",
    [
        ["-h"],
        ["--help"],
        ["localhost", "104", "-h"],
        ["--version", "-h"],
        ["-h", "--version"],
        ["-pdu", "abc", "-h"],
    ],
)
def test_help_anywhere_exits_0_even_with_bad_values(argv: list[str]) -> None:
    with pytest.raises(CliExit) as info:
        parse_send_args(argv)
    assert (info.value.code, info.value.stream) == (0, "stdout")
    assert info.value.text.startswith("dispatch send: DICOM storage (C-STORE) SCU")


def test_help_lists_every_supported_option_and_no_refused_one() -> None:
    with pytest.raises(CliExit) as info:
        parse_send_args(["-h"])
    words = set(info.value.text.split())
    for option in SEND_SPEC.options:
        for name in option.names:
            if option.refused:
                assert name not in words, name
            else:
                assert name in words, name
    assert "--report" in words


def test_help_uses_the_program_name_given() -> None:
    with pytest.raises(CliExit) as info:
        parse_send_args(["-h"], prog="dispatch submit")
    assert "usage: dispatch submit [options]" in info.value.text


def test_version_names_package_and_libraries() -> None:
    from importlib import metadata

    with pytest.raises(CliExit) as info:
        parse_send_args(["localhost", "--version"])
    text = info.value.text
    assert info.value.code == 0
    assert f"dicom-dispatch {dispatch.__version__}" in text
    assert f"pydicom, Version {metadata.version('pydicom')}" in text
    assert f"pynetdicom, Version {metadata.version('pynetdicom')}" in text


def test_importing_the_parser_imports_neither_pydicom_nor_pynetdicom() -> None:
    code = (
        "import sys, dispatch.cli.options, dispatch.inputs;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydicom', 'pynetdicom')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# -- defaults and every option in scope ------------------------------------------------


def test_defaults_match_storescu() -> None:
    options = parse()
    assert options == SendOptions(host="localhost", port=104, inputs=("f.dcm",))
    assert options.calling_ae == "STORESCU"
    assert options.called_ae == "ANY-SCP"
    assert options.proposal == "uncompressed"
    assert options.timeouts == Timeouts(connect_s=None, socket_s=60.0, acse_s=30.0, dimse_s=None)
    assert options.max_pdu == 16384
    assert options.max_send_pdu is None
    assert options.policy == SendPolicy()
    assert options.log_level == "warn"
    assert options.arguments is None


def test_options_may_stand_anywhere_among_parameters() -> None:
    options = parse_send_args(["localhost", "-aet", "ME", "104", "a", "-R", "b", "+C", "c"])
    assert (options.host, options.port, options.inputs) == ("localhost", 104, ("a", "b", "c"))
    assert options.calling_ae == "ME"
    assert options.required_only and options.combine


@pytest.mark.parametrize(
    ("args", "field", "expected"),
    [
        (["-aet", "ME"], "calling_ae", "ME"),
        (["--aetitle", "ME"], "calling_ae", "ME"),
        (["-aec", "PEER"], "called_ae", "PEER"),
        (["--call", "PEER"], "called_ae", "PEER"),
        (["-aet", ""], "calling_ae", ""),  # refused when the association is requested
        (["-aec", ""], "called_ae", ""),
        (["-aet", "ABCDEFGHIJKLMNOPQRSTUV"], "calling_ae", "ABCDEFGHIJKLMNOP"),  # as storescu
        (["-aec", "0123456789abcdefXYZ"], "called_ae", "0123456789abcdef"),
        (["-R"], "required_only", True),
        (["--required"], "required_only", True),
        (["+C"], "combine", True),
        (["--combine"], "combine", True),
        (["-pdu", "4096"], "max_pdu", 4096),
        (["--max-pdu", "131072"], "max_pdu", 131072),
        (["--max-send-pdu", "8192"], "max_send_pdu", 8192),
        (["+sd"], "scan_dirs", True),
        (["--scan-directories"], "scan_dirs", True),
        (["+sd", "+sp", "*.dcm"], "pattern", "*.dcm"),
        (["+sd", "--scan-pattern", "*.dcm"], "pattern", "*.dcm"),
        (["+sd", "+r"], "recurse", True),
        (["+sd", "--recurse"], "recurse", True),
        (["-r"], "recurse", False),
        (["--no-recurse"], "recurse", False),
        (["-v"], "log_level", "info"),
        (["--verbose"], "log_level", "info"),
        (["-d"], "log_level", "debug"),
        (["--debug"], "log_level", "debug"),
        (["-q"], "log_level", "fatal"),
        (["--quiet"], "log_level", "fatal"),
        (["-ll", "trace"], "log_level", "trace"),
        (["--log-level", "ERROR"], "log_level", "error"),
        (["-v", "+v"], "verbose_pc", True),
        (["-d", "--verbose-pc"], "verbose_pc", True),
        (["--report", "out.jsonl"], "report", "out.jsonl"),
        (["-tls"], "host", "localhost"),
        (["--disable-tls"], "host", "localhost"),
    ],
)
def test_option_sets_its_field(args: list[str], field: str, expected: object) -> None:
    assert getattr(parse(*args), field) == expected


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("-x=", "uncompressed"),
        ("--propose-uncompr", "uncompressed"),
        ("-xe", "little"),
        ("--propose-little", "little"),
        ("-xb", "big"),
        ("--propose-big", "big"),
        ("-xi", "implicit"),
        ("--propose-implicit", "implicit"),
        ("-xs", uids.JPEG_LOSSLESS_SV1),
        ("--propose-lossless", uids.JPEG_LOSSLESS_SV1),
        ("-xy", uids.JPEG_BASELINE),
        ("--propose-jpeg8", uids.JPEG_BASELINE),
        ("-xx", uids.JPEG_EXTENDED),
        ("--propose-jpeg12", uids.JPEG_EXTENDED),
        ("-xv", uids.JPEG_2000_LOSSLESS),
        ("--propose-j2k-lossless", uids.JPEG_2000_LOSSLESS),
        ("-xw", uids.JPEG_2000),
        ("--propose-j2k-lossy", uids.JPEG_2000),
        ("-xr", uids.RLE_LOSSLESS),
        ("--propose-rle", uids.RLE_LOSSLESS),
        ("-xd", uids.DEFLATED_LE),
        ("--propose-deflated", uids.DEFLATED_LE),
        ("-xt", uids.JPEG_LS_LOSSLESS),
        ("--propose-jls-lossless", uids.JPEG_LS_LOSSLESS),
        ("-xu", uids.JPEG_LS_NEAR_LOSSLESS),
        ("--propose-jls-lossy", uids.JPEG_LS_NEAR_LOSSLESS),
    ],
)
def test_proposal_options_choose_the_proposed_syntax(option: str, expected: str) -> None:
    assert parse(option).proposal == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["+f"], ReadMode.FILE),
        (["--read-file"], ReadMode.FILE),
        (["+fo"], ReadMode.FILE_ONLY),
        (["--read-file-only"], ReadMode.FILE_ONLY),
        (["-f"], ReadMode.DATASET),
        (["--read-dataset"], ReadMode.DATASET),
        (["+fo", "-f", "+f"], ReadMode.FILE),
        (["-f", "+fo"], ReadMode.FILE_ONLY),
    ],
)
def test_read_mode_rightmost_wins(args: list[str], expected: ReadMode) -> None:
    assert parse(*args).policy.read_mode is expected


def test_policy_options() -> None:
    policy = parse("-nh", "--repeat", "3", "--abort", "-up", "+rn").policy
    assert policy == SendPolicy(
        halt=False,
        repeat=3,
        abort_at_end=True,
        uid_padding=True,
        read_mode=ReadMode.FILE,
        rename=True,
    )
    assert parse("--no-halt", "--uid-padding", "--rename").policy.halt is False


def test_timeouts() -> None:
    timeouts = parse("-to", "5", "-ts", "7", "-ta", "9", "-td", "11").timeouts
    assert timeouts == Timeouts(connect_s=5.0, socket_s=7.0, acse_s=9.0, dimse_s=11.0)
    long_names = parse(
        "--timeout", "1", "--socket-timeout", "2", "--acse-timeout", "3", "--dimse-timeout", "4"
    ).timeouts
    assert long_names == Timeouts(1.0, 2.0, 3.0, 4.0)


@pytest.mark.parametrize("value", ["0", "-1"])
def test_socket_timeout_zero_or_minus_one_means_none(value: str) -> None:
    assert parse("-ts", value).timeouts.socket_s is None


def test_timeouts_accept_fractions() -> None:
    assert parse("-td", "0.5", "-to", "1.25").timeouts.dimse_s == 0.5


# -- rightmost wins --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [(["-xe", "-xb"], "big"), (["-xb", "-xe"], "little"), (["-xs", "-xi", "-x="], "uncompressed")],
)
def test_proposal_rightmost_wins(args: list[str], expected: str) -> None:
    assert parse(*args).proposal == expected


def test_recurse_and_rename_rightmost_wins() -> None:
    assert parse("+sd", "+r", "-r").recurse is False
    assert parse("+sd", "-r", "+r").recurse is True
    assert parse("+rn", "-rn").policy.rename is False
    assert parse("-rn", "+rn").policy.rename is True


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-q", "-v"], "info"),
        (["-v", "-d"], "debug"),
        (["-d", "-q"], "fatal"),
        (["-q", "-v", "-d", "-q"], "fatal"),
    ],
)
def test_verbosity_rightmost_wins(args: list[str], expected: str) -> None:
    assert parse(*args).log_level == expected


def test_repeated_value_option_rightmost_wins() -> None:
    assert parse("-aet", "A", "-aet", "B").calling_ae == "B"
    assert parse("-pdu", "4096", "-pdu", "8192").max_pdu == 8192


# -- dependent and conflicting options -------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["+sp", "*.dcm"], "--scan-pattern only allowed with --scan-directories"),
        (["+r"], "--recurse only allowed with --scan-directories"),
        (["-r", "+r"], "--recurse only allowed with --scan-directories"),
        (["+r", "+sp", "x"], "--scan-pattern only allowed with --scan-directories"),
        (["-ll", "info", "-v"], "--log-level not allowed with --verbose, --debug or --quiet"),
        (["-q", "-ll", "info"], "--log-level not allowed with --verbose, --debug or --quiet"),
        (["+v"], "--verbose-pc only allowed with verbose mode"),
        (["-ll", "warn", "+v"], "--verbose-pc only allowed with verbose mode"),
        (["-ll", "foo"], "Invalid log level for --log-level option"),
    ],
)
def test_dependency_errors(args: list[str], message: str) -> None:
    assert error(*args).message == message


def test_scan_options_with_scan_directories_are_fine() -> None:
    options = parse("+sp", "*.dcm", "+r", "+sd")
    assert (options.scan_dirs, options.pattern, options.recurse) == (True, "*.dcm", True)


# -- bad values, parameters, syntax ----------------------------------------------------

BAD_VALUES = [
    (["-pdu", "100"], "Invalid value for option --max-pdu (underflow: 100)"),
    (["-pdu", "200000"], "Invalid value for option --max-pdu (overflow: 200000)"),
    (["-pdu", "abc"], "Invalid value for option --max-pdu (abc)"),
    (["-pdu", "-1"], "Invalid value for option --max-pdu (-1)"),
    (["--max-send-pdu", "4095"], "Invalid value for option --max-send-pdu (underflow: 4095)"),
    (["--max-send-pdu", "131073"], "Invalid value for option --max-send-pdu (overflow: 131073)"),
    (["--repeat", "0"], "Invalid value for option --repeat (underflow: 0)"),
    (["--repeat", "abc"], "Invalid value for option --repeat (abc)"),
    (["--repeat", "-1"], "Invalid value for option --repeat (-1)"),
    (["-to", "0"], "Invalid value for option --timeout (underflow: 0)"),
    (["-to", "-1"], "Invalid value for option --timeout (underflow: -1)"),
    (["-ts", "-2"], "Invalid value for option --socket-timeout (underflow: -2)"),
    (["-ta", "0"], "Invalid value for option --acse-timeout (underflow: 0)"),
    (["-td", "0"], "Invalid value for option --dimse-timeout (underflow: 0)"),
    (["-td", "x"], "Invalid value for option --dimse-timeout (x)"),
    # When several values are wrong, storescu's order of checks decides.
    (
        ["--repeat", "0", "-td", "0", "-ts", "-5", "-ta", "0"],
        "Invalid value for option --socket-timeout (underflow: -5)",
    ),
    (["--max-send-pdu", "1", "-pdu", "1"], "Invalid value for option --max-pdu (underflow: 1)"),
    (["-pdu", "1", "+sp", "x"], "--scan-pattern only allowed with --scan-directories"),
    (["-to", "0", "-ll", "foo"], "Invalid log level for --log-level option"),
]


@pytest.mark.parametrize(("args", "message"), BAD_VALUES)
def test_bad_values_are_command_line_errors(args: list[str], message: str) -> None:
    exc = error(*args)
    assert exc.message == message
    assert (exc.code, exc.stream, exc.text) == (1, "stderr", f"error: {message}")
    assert isinstance(exc, UsageError)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["localhost"], "Missing parameter port"),
        (["localhost", "104"], "Missing parameter dcmfile-in"),
        (["-aet", "X"], "Missing parameter peer"),
        (["localhost", "abc", "f"], "Invalid parameter value abc"),
        (["localhost", "0", "f"], "Invalid parameter value 0 (underflow)"),
        (["localhost", "65536", "f"], "Invalid parameter value 65536 (overflow)"),
        (["localhost", "-1", "f"], "Invalid parameter value -1 (overflow)"),
        (["localhost", "104x", "f"], "Invalid parameter value 104x"),
        (["--bogus", "localhost", "104", "f"], "Unknown option --bogus"),
        (["-x", "localhost", "104", "f"], "Unknown option -x"),
        (["--", "localhost", "104", "f"], "Unknown option --"),
        (["-pdu"], "Missing value for option --max-pdu"),
        (["-aet"], "Missing value for option --aetitle"),
        (["-ll"], "Missing value for option --log-level"),
        (["-pdu", "-h"], "Missing parameter peer"),
        (["-pdu", "100", "localhost", "abc", "f"], "Invalid parameter value abc"),
        (["-pdu", "100", "localhost"], "Missing parameter port"),
        (["--bogus", "-h"], "Unknown option --bogus"),
    ],
)
def test_parameter_and_syntax_errors(argv: list[str], message: str) -> None:
    assert error(*argv, base=False).message == message


@pytest.mark.parametrize("port", ["1", "104", "65535", " 11112"])
def test_valid_ports(port: str) -> None:
    assert parse_send_args(["h", port, "f"]).port == int(port)


def test_arguments_that_look_numeric_are_parameters() -> None:
    options = parse_send_args(["localhost", "104", "-1a", "+5", "-", "+"])
    assert options.inputs == ("-1a", "+5", "-", "+")


def test_option_value_may_start_with_a_dash() -> None:
    assert parse("-aet", "-xe").calling_ae == "-xe"
    assert parse("-aet", "-xe").proposal == "uncompressed"


def test_errors_found_after_quiet_is_set_are_quiet() -> None:
    assert error("-q", "-pdu", "1").quiet is True
    assert error("-q", "+sp", "x").quiet is True
    # Errors found before the logging options are read are shown even with -q.
    assert error("-q", "localhost", base=False).quiet is False
    assert error("-q", "--bogus").quiet is False
    assert error("-v", "-pdu", "1").quiet is False


@pytest.mark.parametrize(("args", "message"), BAD_VALUES[:15])
def test_bad_value_messages_match_dcmtk(args: list[str], message: str) -> None:
    # Only syntax/value errors: storescu stops before touching the network or files.
    assert dcmtk_error([*args, *BASE]) == f"error: {message}"


@pytest.mark.parametrize(
    "argv",
    [
        ["localhost"],
        ["localhost", "104"],
        ["localhost", "abc", "f"],
        ["localhost", "0", "f"],
        ["localhost", "65536", "f"],
        ["localhost", "-1", "f"],
        ["--bogus", "localhost", "104", "f"],
        ["-pdu"],
        ["-ll", "foo", "localhost", "104", "f"],
        ["-ll", "info", "-v", "localhost", "104", "f"],
        ["+v", "localhost", "104", "f"],
        ["+sp", "x", "localhost", "104", "f"],
        ["-r", "+r", "localhost", "104", "f"],
        ["@no-such-command-file", "localhost", "104", "f"],
    ],
)
def test_parameter_and_dependency_messages_match_dcmtk(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CommandLineError) as info:
        parse_send_args(argv, stderr=io.StringIO())
    assert info.value.text == dcmtk_error(argv)


# -- refused options -------------------------------------------------------------------

REFUSED = [opt for opt in SEND_SPEC.options if opt.refused]


def test_refused_options_cover_what_is_not_built_yet() -> None:
    names = {name for opt in REFUSED for name in opt.names}
    for name in ["-xm", "-xh", "-xn", "-xl", "-x2", "-x3", "-xo", "-x4", "-x5"]:
        assert name in names, name


@pytest.mark.parametrize("option", REFUSED, ids=lambda opt: opt.long_name)
def test_refused_option_consumes_its_values_and_is_named(option: OptionSpec) -> None:
    for name in option.names:
        values = [f"value{i}" for i in range(option.nargs)]
        exc = error(name, *values)
        spelled = name if name == option.long_name else f"{name} ({option.long_name})"
        assert exc.message == f"Option {spelled} is not supported by dispatch send"
        assert exc.code == 1


def test_refused_option_missing_its_values() -> None:
    assert error("-xf", "only-one", base=False).message == "Missing value for option --config-file"


def test_refused_option_reported_before_parameter_errors() -> None:
    assert error("-xm", base=False).message.startswith("Option -xm")


# -- @command files --------------------------------------------------------------------


def test_command_file_is_expanded_in_place(tmp_path: Path) -> None:
    cmd = tmp_path / "args"
    cmd.write_text("-aet \"MY AE\" -aec 'PEER AE'\n  -xb\tlocalhost\n")
    options = parse_send_args(["-R", f"@{cmd}", "104", "f"])
    assert options.calling_ae == "MY AE"
    assert options.called_ae == "PEER AE"
    assert options.proposal == "big"
    assert (options.host, options.port, options.inputs) == ("localhost", 104, ("f",))
    assert options.required_only


def test_command_file_option_takes_value_from_command_line(tmp_path: Path) -> None:
    cmd = tmp_path / "args"
    cmd.write_text("-pdu")
    assert parse_send_args([f"@{cmd}", "8192", *BASE]).max_pdu == 8192


def test_command_file_empty_quotes_are_empty_arguments(tmp_path: Path) -> None:
    cmd = tmp_path / "args"
    cmd.write_text("localhost 104 \"\" ''")
    assert parse_send_args([f"@{cmd}"]).inputs == ("", "")


def test_command_files_do_not_nest(tmp_path: Path) -> None:
    inner = tmp_path / "inner"
    inner.write_text("-xb")
    outer = tmp_path / "outer"
    outer.write_text(f"localhost 104 @{inner}")
    options = parse_send_args([f"@{outer}"])
    assert options.inputs == (f"@{inner}",)
    assert options.proposal == "uncompressed"


def test_missing_command_file_is_a_command_line_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    exc = error(f"@{missing}")
    assert exc.message == f"Cannot open command file '{missing}'"
    assert exc.code == 1


def test_missing_command_file_wins_over_help(tmp_path: Path) -> None:
    with pytest.raises(CommandLineError):
        parse_send_args(["-h", f"@{tmp_path / 'missing'}"])


def test_lone_at_sign_is_an_ordinary_argument() -> None:
    assert parse_send_args(["localhost", "104", "@"]).inputs == ("@",)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("a b\tc\r\nd", ["a", "b", "c", "d"]),
        ("'x y' \"z w\"", ["x y", "z w"]),
        ("\"\" ''", ["", ""]),
        ("'x\"y'", ['x"y']),
        ('a"b c"d', ["ab c", "d"]),  # the closing quote ends the word, as in DCMTK
        ("'un term", ["un term"]),
        ("# not a comment", ["#", "not", "a", "comment"]),
        ("", []),
    ],
)
def test_split_command_file(text: str, words: list[str]) -> None:
    assert split_command_file(text) == words


def test_command_file_splitting_matches_dcmtk(tmp_path: Path) -> None:
    program = require_program("storescu")
    cmd = tmp_path / "args"
    cmd.write_text("a\"b c\"d 'x\"y' \"\" '' e\\ f\n'p q'")
    done = subprocess.run(
        [str(program), "--arguments", "localhost", "1", f"@{cmd}", "-pdu", "1"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    dcmtk_line = done.stderr.splitlines()[0]
    out = io.StringIO()
    with pytest.raises(CommandLineError):
        parse_send_args(["--arguments", "localhost", "1", f"@{cmd}", "-pdu", "1"], stderr=out)
    ours = out.getvalue().splitlines()[0]
    assert ours.split(" with ", 1)[1] == dcmtk_line.split(" with ", 1)[1]


# -- --arguments -----------------------------------------------------------------------


def test_arguments_prints_expanded_long_form_on_stderr() -> None:
    out = io.StringIO()
    options = parse_send_args(
        ["--arguments", "-xe", "-xb", "-q", "localhost", "104", "f"], stderr=out
    )
    expected = (
        "--arguments",
        "--propose-little",
        "--propose-big",
        "--quiet",
        "localhost",
        "104",
        "f",
    )
    assert options.arguments == expected
    assert out.getvalue() == (
        "I: calling 'dispatch send' with 7 arguments: "
        + "".join(f"'{arg}' " for arg in expected)
        + "\nI: \n"
    )


def test_arguments_printed_before_later_errors_but_not_earlier_ones() -> None:
    out = io.StringIO()
    with pytest.raises(CommandLineError):
        parse_send_args(["--arguments", "-pdu", "1", *BASE], stderr=out)
    assert out.getvalue().startswith("I: calling")
    out = io.StringIO()
    with pytest.raises(CommandLineError):
        parse_send_args(["--arguments", "localhost"], stderr=out)
    assert out.getvalue() == ""


def test_arguments_listing_matches_dcmtk() -> None:
    program = require_program("storescu")
    argv = [
        "--arguments",
        "-xe",
        "-R",
        "+C",
        "-to",
        "5",
        "-nh",
        "+sd",
        "+sp",
        "*.dcm",
        "-aec",
        "X",
        "localhost",
        "1",
        "f",
        "-pdu",
        "1",
    ]
    done = subprocess.run(
        [str(program), *argv], capture_output=True, text=True, timeout=10, check=False
    )
    out = io.StringIO()
    with pytest.raises(CommandLineError):
        parse_send_args(argv, stderr=out)
    ours = out.getvalue().splitlines()[0]
    assert ours.split(" with ", 1)[1] == done.stderr.splitlines()[0].split(" with ", 1)[1]


# -- extending the parser --------------------------------------------------------------

SUBMIT_OPTIONS = [
    OptionSpec(
        ("--broker",),
        "broker",
        nargs=1,
        section="cluster options",
        metavar="[u]rl: string",
        help="broker URL",
    ),
    OptionSpec(
        ("--chunk",),
        "chunk",
        nargs=1,
        value=ValueSpec("uint", minimum=1),
        section="cluster options",
        metavar="[n]umber: integer",
        help="files per task",
    ),
    OptionSpec(("--wait",), "wait", const=True, section="cluster options", help="wait"),
    OptionSpec(("--no-wait",), "wait", const=False, section="cluster options", help="no wait"),
]


def test_spec_can_be_extended_for_another_command() -> None:
    spec = SEND_SPEC.extended(
        prog="dispatch submit", options=SUBMIT_OPTIONS, sections=["cluster options"]
    )
    parsed = parse_command_line(
        [
            "--broker",
            "redis://x",
            "-xb",
            "localhost",
            "104",
            "f",
            "--chunk",
            "50",
            "--wait",
            "--no-wait",
        ],
        spec,
    )
    send = send_options_from(parsed)
    assert send.proposal == "big" and send.inputs == ("f",)
    assert parsed.str_value("broker") == "redis://x"
    assert parsed.int_value("chunk") == 50
    assert parsed.value("wait", True) is False
    with pytest.raises(CommandLineError) as info:
        parsed2 = parse_command_line(["--chunk", "0", *BASE], spec)
        parsed2.int_value("chunk")
    assert info.value.message == "Invalid value for option --chunk (underflow: 0)"
    with pytest.raises(CliExit) as help_exit:
        parse_command_line(["-h"], spec)
    assert "cluster options:\n" in help_exit.value.text
    assert "--broker" in help_exit.value.text
    assert help_exit.value.text.startswith("dispatch submit: ")


def test_extending_with_an_existing_name_is_refused() -> None:
    with pytest.raises(ValueError, match="-aet"):
        SEND_SPEC.extended(options=[OptionSpec(("-aet",), "x")])


def test_emit_prints_where_the_exit_belongs() -> None:
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CliExit) as info:
        parse_send_args(["-h"])
    assert info.value.emit(out, err) == 0
    assert out.getvalue().startswith("dispatch send:") and err.getvalue() == ""
    out, err = io.StringIO(), io.StringIO()
    assert error("-pdu", "1").emit(out, err) == 1
    assert (out.getvalue(), err.getvalue()) == (
        "",
        "error: Invalid value for option --max-pdu (underflow: 1)\n",
    )
    out, err = io.StringIO(), io.StringIO()
    assert error("-q", "-pdu", "1").emit(out, err) == 1
    assert (out.getvalue(), err.getvalue()) == ("", "")


def test_repeatable_option_values_come_back_in_order() -> None:
    spec = SEND_SPEC.extended(
        options=[OptionSpec(("--dest",), "dest", nargs=1, section="cluster options")]
    )
    parsed = parse_command_line(["--dest", "a", *BASE, "--dest", "b"], spec)
    assert parsed.values("dest") == ["a", "b"]
    assert parsed.str_value("dest") == "b"
