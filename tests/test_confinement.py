"""The pure pieces of round two's defences, without a sandbox: the seccomp filter's system
call numbers, bounded reading, magic lines, spreadsheet and Markdown escapes.

The behaviour end to end (a real sandbox, real attacks) is in tests/test_hostile.py and
tests/test_hostile_handins.py; these pin what those rely on.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from grader.intake.notebook import _magic
from grader.intake.reading import HandinError, read_bytes, shown, walk
from grader.reports import csv_text, md_inline

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "grader" / "worker" / "inside"))
import seccomp  # noqa: E402  (runs inside the sandbox, where it is a top-level module)

HEADERS = {"x86_64": Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h"),
           "aarch64": Path("/usr/include/asm-generic/unistd.h")}


@pytest.mark.parametrize("machine", sorted(HEADERS))
def test_the_filter_uses_the_kernels_own_system_call_numbers(machine):
    header = HEADERS[machine]
    if not header.is_file():
        pytest.skip(f"no {header} here (apt-get install linux-libc-dev)")
    text = header.read_text()
    column = seccomp.ARCHES[machine][0]
    for name, numbers in seccomp.CALLS.items():
        found = re.search(rf"#define __NR(?:3264)?_{name}\s+(\d+)\b", text)
        assert found, f"{name} is not in {header}"
        assert int(found.group(1)) == numbers[column], f"{machine} {name}: {numbers[column]} != {found.group(1)}"


def test_the_filter_refuses_the_calls_and_keeps_fork_working():
    if seccomp.number("unshare") is None:
        pytest.skip("no seccomp filter for this architecture")
    assert seccomp.probe(seccomp.program()) is None


def test_an_unknown_architecture_gets_no_filter_and_says_so():
    with pytest.raises(OSError, match="no seccomp filter for the s390x architecture"):
        seccomp.program("s390x")


def test_a_fifo_or_a_device_is_refused_before_it_is_read(tmp_path):
    os.mkfifo(tmp_path / "x.ipynb")  # opening it to read would block until a writer comes
    with pytest.raises(HandinError, match=r"x\.ipynb is a FIFO \(named pipe\), not a regular file"):
        read_bytes(tmp_path / "x.ipynb", 100)
    with pytest.raises(HandinError, match="a character device"):
        read_bytes(Path("/dev/zero"), 100)  # would never end
    (tmp_path / "big").write_bytes(b"x" * 1000)
    assert read_bytes(tmp_path / "big", 100) == (b"x" * 100, True)


def test_a_walk_stops_at_its_depth_and_never_follows_links(tmp_path):
    deep = tmp_path / "a" / "b" / "c" / "d"
    deep.mkdir(parents=True)
    (deep / "far.py").write_text("")
    (tmp_path / "near.py").write_text("")
    (tmp_path / "link").symlink_to("/")
    os.mkfifo(tmp_path / "fifo.py")
    tree = walk(tmp_path, max_depth=3)
    assert tree.files == [Path("near.py")] and "levels deep" in tree.cut


@pytest.mark.parametrize("line, indent", [
    ("%timeit f()", ""), ("    !pip install x", "    "), ("files = !ls", ""), ("a, b[0] = %time f()", ""),
    ("x = 1 % 2", None), ("!= 3", None), ("a == %b", None), ("x = y != z", None), ("", None),
    (" " * 10_000 + "?", None)])
def test_magic_lines(line, indent):
    assert _magic(line) == indent


def test_spreadsheet_cells_never_start_a_formula():
    assert [csv_text(t) for t in ("=1+1", "+A1", "-2", "@SUM(A1)", "\t=x", "alice")] == \
        ["'=1+1", "'+A1", "'-2", "'@SUM(A1)", "'\t=x", "alice"]


def test_markdown_defuses_autolinks():
    assert md_inline("www.example.com") == "www\\.example.com"
    assert md_inline("alice@example.com") == "alice\\@example.com"
    assert md_inline("see https://evil.example") == "see https\\://evil.example"


def test_names_are_shown_with_every_control_character_escaped():
    assert shown("\x1b[31mred\u202e\u009b") == "\\x1b[31mred\\u202e\\x9b"
    assert shown("a" * 200).endswith("...") and len(shown("a" * 200)) == 123
