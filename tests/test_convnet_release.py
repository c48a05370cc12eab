"""The convnet release: the given helpers as they are, every solution region a stub, no
solution line anywhere students look (files, notebook, the self-check)."""
from __future__ import annotations

import pytest
from conftest import CONVNET, REPO

from grader.authoring.release import solution_lines

RELEASE = REPO / "assignments" / "convnet"


def released_lines() -> dict[str, set[str]]:
    found = {}
    for path in sorted(p for p in RELEASE.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        text = path.read_text(encoding="utf-8").replace("\\n", "\n")  # the notebook's JSON strings too
        found[path.relative_to(RELEASE).as_posix()] = {line.strip().strip('",') for line in text.splitlines()} | \
            {line.split("#")[0].strip() for line in text.splitlines()}
    return found


@pytest.mark.parametrize("solution", CONVNET.files)
def test_no_solution_line_in_any_released_file(solution):
    given = {line.strip() for text in CONVNET.helper_sources().values() for line in text.splitlines()}
    secret = solution_lines((CONVNET.folder / solution).read_text(encoding="utf-8")) - given  # im2col's loop
    assert len(secret) > 5
    leaks = {(name, line) for name, lines in released_lines().items() for line in secret & lines}
    assert not leaks, sorted(leaks)


def test_the_helpers_are_released_as_given_and_the_hidden_tests_never():
    for name, text in CONVNET.helper_sources().items():
        assert (RELEASE / name).read_text(encoding="utf-8") == text
    assert not (RELEASE / "hidden").exists() and not (RELEASE / "assignment.toml").exists()
    shared = REPO / "assignments" / "backprop" / "gradcheck.py"  # one helper for both self-checks
    assert (RELEASE / "gradcheck.py").read_text() == shared.read_text()


@pytest.mark.parametrize("name", CONVNET.files)
def test_every_region_became_a_stub(name):
    regions = (CONVNET.folder / name).read_text(encoding="utf-8").count("### BEGIN SOLUTION")
    student = (RELEASE / name).read_text(encoding="utf-8")
    assert regions >= 1 and student.count("raise NotImplementedError()") == regions and "SOLUTION" not in student
