"""The student self-check's reporter, written once here and copied into every release.

An assignment that ships a self-check (a ``test_*.py`` beside its reference) gets two
more files in its release: ``selfcheck.py`` (this folder's, byte for byte: a pytest
plugin that reports each failure message first, and ``run(part)`` for notebook cells)
and a ``conftest.py`` that loads it and names the files students write - the one thing
the plugin must know about the assignment, taken from its manifest. Which tests check
which part is declared on the tests themselves (``@pytest.mark.part("NAME")``).
"""
from __future__ import annotations

from pathlib import Path

PLUGIN = "selfcheck.py"
CONFTEST = "conftest.py"
_CONFTEST = '''\
"""pytest reads this file first: selfcheck.py's hooks report each failure message first.

`grader release` wrote both files from the assignment; do not edit them.
"""
import selfcheck
from selfcheck import *  # noqa: F403 - the hooks (a conftest's own, so they work wherever pytest starts)

selfcheck.STUDENT_FILES = {files!r}
'''


def tests(assignment) -> list[str]:
    """The self-check's test files the assignment ships (never its hidden tests)."""
    folder = Path(assignment.folder)
    return sorted(p.name for p in folder.glob("*.py") if p.name.startswith("test_") or p.name.endswith("_test.py"))


def files(assignment) -> dict[str, bytes]:
    """The reporter's files for ``assignment``'s release; none if it ships no self-check."""
    if not tests(assignment):
        return {}
    plugin = (Path(__file__).parent / PLUGIN).read_bytes()
    return {PLUGIN: plugin, CONFTEST: _CONFTEST.format(files=tuple(assignment.files)).encode("utf-8")}


def call(part: str) -> str:
    """The line of a notebook's grade cell that runs ``part``'s self-check."""
    return f"import {PLUGIN[:-3]}; {PLUGIN[:-3]}.run({part!r})"
