"""``-lc FILE``: a log4cplus configuration file, as storescu reads one, sends the log
where it says in the layout it gives; a file that cannot be used is one error line and
exit code 1, in storescu's words where storescu has them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.cli.conftest import Run, observe, run_dispatch, run_storescu
from tests.support.dicom_files import make_file
from tests.support.scp import StorageScp

DCMTK_SAMPLE = """\
# as DCMTK's sample logger.cfg
log4cplus.rootLogger = DEBUG, console, logfile
log4cplus.appender.console = log4cplus::ConsoleAppender
log4cplus.appender.console.Threshold = INFO
log4cplus.appender.console.logToStderr = true
log4cplus.appender.console.ImmediateFlush = true
log4cplus.appender.logfile = log4cplus::FileAppender
log4cplus.appender.logfile.File = {log}
log4cplus.appender.logfile.Append = true
log4cplus.appender.console.layout = log4cplus::PatternLayout
log4cplus.appender.logfile.layout = log4cplus::PatternLayout
log4cplus.appender.console.layout.ConversionPattern = %D{{%H:%M:%S}} %5p: %m%n
log4cplus.appender.logfile.layout.ConversionPattern = %D{{%Y-%m-%d %H:%M:%S.%q}} %5p: %m%n
log4cplus.logger.dcmtk.apps.storescu.progress = INFO
"""


def test_a_dcmtk_style_file_sends_each_level_where_it_says(scp: StorageScp, tmp_path: Path) -> None:
    log = tmp_path / "send.log"
    config = tmp_path / "logger.cfg"
    config.write_text(DCMTK_SAMPLE.format(log=log))
    image = make_file(tmp_path / "ct.dcm", ts="explicit")
    run = observe(run_dispatch, scp, "-lc", config, "-R", image).run
    assert run.code == 0, run.stderr
    console = run.stderr.splitlines()
    assert all(re.match(r"^\d\d:\d\d:\d\d  INFO: ", line) for line in console), console
    assert any(line.endswith(" INFO: Sending Store Request (MsgID 1, CT)") for line in console)
    written = log.read_text().splitlines()
    stamp = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} "
    assert all(re.match(stamp + r"( INFO|DEBUG): ", line) for line in written), written
    # Every line of a dump carries the prefix (the file has the debug level).
    rq = "DEBUG: Message Type                  : C-STORE RQ"
    assert any(line.endswith(rq) for line in written)


def test_console_goes_to_standard_output_unless_told(scp: StorageScp, tmp_path: Path) -> None:
    config = tmp_path / "logger.cfg"
    config.write_text(
        "log4cplus.rootLogger = INFO, out\nlog4cplus.appender.out = log4cplus::ConsoleAppender\n"
    )
    image = make_file(tmp_path / "ct.dcm", ts="explicit")
    run = observe(run_dispatch, scp, "-lc", config, image).run
    assert run.code == 0
    assert "INFO - Sending file: " in run.stdout  # log4cplus's SimpleLayout
    assert "Sending file" not in run.stderr


def refused(config: Path, *options: str) -> Run:
    return run_dispatch(*options, "-lc", config, "localhost", "104", "x.dcm")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "Specified --log-config file does not contain any settings"),
        ("a = b\n", "Specified --log-config file does not contain any valid settings"),
        (
            "log4cplus.appender.x = log4cplus::ConsoleAppender\n",
            "Specified --log-config file does not set up log4cplus.rootLogger",
        ),
        ("log4cplus.rootLogger = LOUD\n", "invalid log level 'LOUD'"),
        ("log4cplus.rootLogger = INFO, x\n", "appender 'x' is not defined"),
        (
            "log4cplus.rootLogger = INFO, x\nlog4cplus.appender.x = log4cplus::SyslogAppender\n",
            "unknown appender class 'log4cplus::SyslogAppender'",
        ),
        (
            "log4cplus.rootLogger = INFO, x\nlog4cplus.appender.x = log4cplus::ConsoleAppender\n"
            "log4cplus.appender.x.layout = log4cplus::PatternLayout\n"
            "log4cplus.appender.x.layout.ConversionPattern = %Z %m%n\n",
            "unknown conversion %Z",
        ),
        (
            "log4cplus.rootLogger = INFO, f\nlog4cplus.appender.f = log4cplus::FileAppender\n",
            "log4cplus.appender.f.File is not set",
        ),
        (
            "log4cplus.rootLogger = INFO, f\nlog4cplus.appender.f = log4cplus::FileAppender\n"
            "log4cplus.appender.f.File = /nonexistent-directory/x.log\n",
            "cannot open log file /nonexistent-directory/x.log",
        ),
    ],
    ids=["empty", "no-log4cplus", "no-root", "level", "undefined", "class", "pattern", "no-file",
         "unopenable"],
)  # fmt: skip
def test_a_bad_file_is_one_line_and_exit_code_1(tmp_path: Path, content: str, message: str) -> None:
    config = tmp_path / "logger.cfg"
    config.write_text(content)
    run = refused(config)
    assert run.code == 1
    assert run.stderr.count("\n") == 1, run.stderr
    assert message in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ([], "error: Specified --log-config file does not exist"),
        (["-v"], "error: --log-config not allowed with --verbose, --debug or --quiet"),
        (["-ll", "info"], "error: --log-config not allowed with --log-level"),
    ],
)
def test_refusals_are_storescus(tmp_path: Path, options: list[str], message: str) -> None:
    missing = tmp_path / "missing.cfg"
    if options:
        missing.write_text("log4cplus.rootLogger = INFO\n")
    dcmtk = run_storescu(*options, "-lc", missing, "localhost", "104", "x.dcm")
    ours = refused(missing, *options)
    assert dcmtk.code == ours.code == 1
    assert message in dcmtk.stderr
    assert ours.stderr == message + "\n"
