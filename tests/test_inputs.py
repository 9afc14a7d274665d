"""Expansion of file and directory arguments (dispatch.inputs), storescu's rules."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from dispatch.inputs import InputItem, Problem, expand_inputs
from tests.conftest import StorescpFactory
from tests.support.programs import require_program


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def listing(directory: Path) -> list[str]:
    """Entry names in the order the file system returns them."""
    with os.scandir(directory) as entries:
        return [entry.name for entry in entries]


def paths(items: list[InputItem]) -> list[str]:
    return [item.path for item in items]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """top/ with files (one hidden, one .dcm), and two subdirectories holding one file each."""
    top = tmp_path / "top"
    for name in ["zeta", "Alpha", "beta.dcm", ".hidden", "10", "9"]:
        touch(top / name)
    touch(top / "sub" / "s1.dcm")
    touch(top / "Asub" / "a1")
    return top


def test_file_arguments_come_back_in_command_line_order(tmp_path: Path) -> None:
    files = [str(touch(tmp_path / name)) for name in ["c", "a", "b"]]
    items = list(expand_inputs(files))
    assert paths(items) == files
    assert all(item.ok and item.problem is None and item.reason == "" for item in items)


def test_missing_path_is_a_problem_in_its_place(tmp_path: Path) -> None:
    first = str(touch(tmp_path / "first"))
    last = str(touch(tmp_path / "last"))
    missing = str(tmp_path / "missing")
    items = list(expand_inputs([first, missing, last]))
    assert paths(items) == [first, missing, last]
    assert items[1].problem is Problem.MISSING
    assert items[1].reason == "cannot access file"
    assert not items[1].ok


def test_directory_without_scan_is_skipped_with_dcmtk_warning(tree: Path) -> None:
    items = list(expand_inputs([str(tree)]))
    assert len(items) == 1
    assert items[0].problem is Problem.DIRECTORY_NOT_SCANNED
    assert items[0].reason == "ignoring directory because option --scan-directories is not set"


def test_scan_lists_files_in_directory_order_without_recursing(tree: Path) -> None:
    items = list(expand_inputs([str(tree)], scan_dirs=True))
    expected = [str(tree / name) for name in listing(tree) if (tree / name).is_file()]
    assert paths(items) == expected
    assert str(tree / ".hidden") in expected


def test_recursion_enters_each_subdirectory_where_it_is_listed(tree: Path) -> None:
    items = list(expand_inputs([str(tree)], scan_dirs=True, recurse=True))
    expected: list[str] = []
    for name in listing(tree):
        path = tree / name
        if path.is_dir():
            expected.extend(str(path / inner) for inner in listing(path))
        else:
            expected.append(str(path))
    assert paths(items) == expected
    assert len(expected) == 8


def test_name_order_sorts_each_directory_and_recurses_where_listed(tree: Path) -> None:
    items = list(expand_inputs([str(tree)], scan_dirs=True, recurse=True, name_order=True))
    names = [".hidden", "10", "9", "Alpha", "Asub/a1", "beta.dcm", "sub/s1.dcm", "zeta"]
    assert paths(items) == [str(tree / name) for name in names]


def test_pattern_matches_base_names_of_scanned_files_only(tree: Path) -> None:
    explicit = str(tree / "zeta")
    items = list(
        expand_inputs([explicit, str(tree)], scan_dirs=True, pattern="*.dcm", recurse=True)
    )
    # The explicit file is not filtered; the directory "sub" is entered although its
    # name does not match.
    assert sorted(paths(items)) == sorted(
        [explicit, str(tree / "beta.dcm"), str(tree / "sub" / "s1.dcm")]
    )
    assert paths(items)[0] == explicit


def test_pattern_is_case_sensitive_with_shell_wildcards(tree: Path) -> None:
    found = paths(list(expand_inputs([str(tree)], scan_dirs=True, pattern="[A-Z]*")))
    assert found == [str(tree / "Alpha")]
    found = paths(list(expand_inputs([str(tree)], scan_dirs=True, pattern="?")))
    assert found == [str(tree / "9")]


def test_directory_order_matches_dcmtk(tree: Path, storescp: StorescpFactory) -> None:
    """storescu -v +sd +r prints 'Sending file: PATH' in the order it scans."""
    storescu = require_program("storescu")
    peer = storescp("--ignore")
    # Real DICOM content so that storescu gets as far as sending every file.
    source = get_testdata_file("CT_small.dcm")
    assert source is not None
    for item in expand_inputs([str(tree)], scan_dirs=True, recurse=True):
        shutil.copyfile(source, item.path)
    done = subprocess.run(
        [str(storescu), "-v", "+sd", "+r", "127.0.0.1", str(peer.port), str(tree)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TCP_NODELAY": "1"},
        check=False,
    )
    sent = [
        line.split("Sending file: ", 1)[1]
        for line in done.stderr.splitlines()
        if "Sending file: " in line
    ]
    assert len(sent) == 8, done.stderr
    assert sent == paths(list(expand_inputs([str(tree)], scan_dirs=True, recurse=True)))


def test_symbolic_links_are_followed_and_loops_end(tmp_path: Path) -> None:
    top = tmp_path / "top"
    real = touch(tmp_path / "elsewhere" / "real")
    touch(top / "inner" / "file")
    (top / "link-to-file").symlink_to(real)
    (top / "inner" / "loop").symlink_to(top, target_is_directory=True)
    (top / "dangling").symlink_to(tmp_path / "nothing")
    os.mkfifo(top / "fifo")
    items = list(expand_inputs([str(top)], scan_dirs=True, recurse=True))
    assert sorted(paths(items)) == sorted([str(top / "link-to-file"), str(top / "inner" / "file")])
    assert all(item.ok for item in items)


def test_same_directory_twice_is_scanned_twice(tmp_path: Path) -> None:
    touch(tmp_path / "d" / "f")
    items = list(expand_inputs([str(tmp_path / "d")] * 2, scan_dirs=True))
    assert paths(items) == [str(tmp_path / "d" / "f")] * 2


def test_empty_directory_gives_nothing(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert list(expand_inputs([str(tmp_path / "empty")], scan_dirs=True, recurse=True)) == []


def test_subdirectory_that_cannot_be_listed_is_reported(tmp_path: Path) -> None:
    top = tmp_path / "top"
    (top / "sub").mkdir(parents=True)
    for index in range(10):
        touch(top / f"file{index}")
    order = listing(top)
    if order.index("sub") == 0:
        pytest.skip("the file system lists the subdirectory first")
    walk = expand_inputs([str(top)], scan_dirs=True, recurse=True)
    first = next(walk)
    assert first.ok
    # The listing of top is already buffered with "sub" in it; removing it now makes
    # entering it fail, as with a directory that cannot be read.
    (top / "sub").rmdir()
    rest = list(walk)
    problems = [item for item in rest if not item.ok]
    assert [(item.path, item.problem) for item in problems] == [
        (str(top / "sub"), Problem.UNREADABLE_DIRECTORY)
    ]
    assert problems[0].reason == "cannot read directory: No such file or directory"
    assert len(rest) == 10


def test_arguments_are_examined_lazily(tmp_path: Path) -> None:
    first = str(touch(tmp_path / "first"))
    later = tmp_path / "later"
    walk = expand_inputs([first, str(later)])
    assert next(walk).path == first
    touch(later)  # created after the walk started, before it reached the argument
    assert next(walk) == InputItem(str(later))


def test_many_files_are_listed_without_sorting(tmp_path: Path) -> None:
    top = tmp_path / "many"
    top.mkdir()
    for index in range(2000):
        (top / f"{index:05d}").write_bytes(b"")
    items = list(expand_inputs([str(top)], scan_dirs=True))
    assert paths(items) == [str(top / name) for name in listing(top)]
