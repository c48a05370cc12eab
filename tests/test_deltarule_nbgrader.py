"""The deltarule assignment through the real nbgrader CLI: generate, autograde (the scores
computed in the grader's sandbox), export and feedback, part by part equal to
`grader grade` on the same notebooks, with the notes' mistake named in the feedback.
"""
from __future__ import annotations

import os
import shutil
from types import SimpleNamespace

import pytest
from conftest import DELTARULE, REPO
from test_nbgrader import (
    Notebooks,
    cli_parts,
    feedback_text,
    gradebook,
    released,
    run,
    script,
    this_nbgrader_first,
)

from grader.authoring.release import solution_lines

pytestmark = [pytest.mark.nbgrader, pytest.mark.slow]

NAME = DELTARULE.name
RELEASE = REPO / "assignments" / NAME
MAX = {e.part: float(e.max_points) for e in DELTARULE.exercises}
NOTES_MISTAKE = [("delta = dout * self.out * (1.0 - self.out)", "delta = dout"),
                 ("delta3 = 2.0 * (o - t) / o.size * o * (1.0 - o)", "delta3 = 2.0 * (o - t) / o.size")]


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("nbgrader-deltarule")
    shutil.copytree(DELTARULE.folder, root / "solutions" / NAME)
    toml = root / "course.toml"
    toml.write_text("seed = 1313\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in {"PYTEST_ADDOPTS", "GRADER_CONFIG"}}
    env.update(JUPYTER_CONFIG_DIR=str(root / "jupyter-config"), JUPYTER_RUNTIME_DIR=str(root / "runtime"),
               PYTHONDONTWRITEBYTECODE="1")
    env = this_nbgrader_first(env)
    course = root / "course"
    run(script("grader") + ["nbgrader", "init", course, "--config", toml, "--assignment", NAME,
                            "--timeout", "90"], root, env)
    run(script("nbgrader") + ["generate_assignment", NAME, "--force"], course, env)
    hand = Notebooks(course, NAME)
    hand.hand_in("correct")
    hand.hand_in("seed-002", edits=NOTES_MISTAKE)
    hand.hand_in("untouched", solve=False)
    run(script("nbgrader") + ["autograde", NAME, "--force"], course, env)
    run(script("grader") + ["grade", course / "submitted", "--out", root / "cli", "--config", toml], root, env)
    run(script("nbgrader") + ["generate_feedback", NAME, "--force"], course, env)
    run(script("nbgrader") + ["export"], course, env)
    return SimpleNamespace(root=root, path=course, env=env)


def test_the_self_check_is_released_beside_the_notebook(course):
    """`grader nbgrader init` wrote it into source/; generate_assignment released it as it is."""
    files = released(course, DELTARULE)
    assert {p.as_posix() for p in files} == {"selfcheck.py", "conftest.py", "test_deltarule.py", "gradcheck.py",
                                             "pytest.ini"}
    assert all(data == (RELEASE / path).read_bytes() for path, data in files.items())


def test_autograde_scores_equal_grader_grade_part_by_part(course):
    book = gradebook(course, NAME)
    assert sorted(book) == ["correct", "seed-002", "untouched"]
    for student, grades in book.items():
        assert {part: g.max for part, g in grades.items()} == MAX
        assert {part: g.score for part, g in grades.items()} == cli_parts(course, student), student
    assert {part: g.score for part, g in book["correct"].items()} == MAX
    seed = {part: g.score for part, g in book["seed-002"].items()}
    assert seed["SSELoss"] == MAX["SSELoss"] and seed["SigmoidOutput"] < MAX["SigmoidOutput"]
    assert seed["ThreeLayerNet"] < MAX["ThreeLayerNet"]
    assert sum(g.score for g in book["untouched"].values()) < sum(MAX.values()) / 4
    grades_csv = (course.path / "grades.csv").read_text(encoding="utf-8")
    assert "seed-002" in grades_csv and NAME in grades_csv


def test_feedback_names_the_notes_mistake_and_shows_no_hidden_or_solution_line(course):
    text = feedback_text(course, "seed-002", NAME)
    assert "the output activation's derivative left out" in text and "proportional row by row" in text
    assert "from grader.nb import check" not in text
    secret, given = set(), set()
    for name in DELTARULE.files:
        secret |= solution_lines((DELTARULE.folder / name).read_text(encoding="utf-8"))
        given |= {line.strip() for line in (RELEASE / name).read_text(encoding="utf-8").splitlines()}
    assert not [line for line in secret - given if line in feedback_text(course, "untouched", NAME)]
