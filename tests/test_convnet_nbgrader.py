"""The convnet assignment through the real nbgrader CLI (a smaller run than test_nbgrader.py).

`grader nbgrader init` also writes the assignment's helper modules (im2col, the given
layers) into nbgrader's source folder, so `generate_assignment` releases them beside the
notebook and `autograde` puts them beside the notebook its kernel runs: the students'
cells import them. Scores come from the sandbox and equal `grader grade`'s.
"""
from __future__ import annotations

import json
import os
import shutil
from types import SimpleNamespace

import pytest
from conftest import CONVNET
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

from grader.authoring.release import notebook_companions, solution_lines

pytestmark = [pytest.mark.nbgrader, pytest.mark.slow]

NAME = CONVNET.name
MAX = {e.part: float(e.max_points) for e in CONVNET.exercises}
OVERWRITE = ("x:x_max:stride] += col", "x:x_max:stride] = col")
UNSCALED = ("        return x * (1.0 - self.dropout_ratio)\n", "        return x\n")


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("nbgrader-convnet")
    shutil.copytree(CONVNET.folder, root / "solutions" / NAME)
    toml = root / "course.toml"
    toml.write_text("seed = 4243\n", encoding="utf-8")
    # PYTHONPATH kept: the grader under test, for nbgrader's kernels too, if it is not the installed one
    env = {k: v for k, v in os.environ.items() if k not in {"PYTEST_ADDOPTS", "GRADER_CONFIG"}}
    env.update(JUPYTER_CONFIG_DIR=str(root / "jupyter-config"), JUPYTER_RUNTIME_DIR=str(root / "runtime"),
               PYTHONDONTWRITEBYTECODE="1")
    env = this_nbgrader_first(env)
    path = root / "course"
    run(script("grader") + ["nbgrader", "init", path, "--config", toml, "--timeout", "60"], root, env)
    run(script("nbgrader") + ["generate_assignment", NAME, "--force"], path, env)
    hand = Notebooks(path, NAME)
    hand.hand_in("correct")
    hand.hand_in("partly", edits=[OVERWRITE, UNSCALED])
    hand.hand_in("untouched", solve=False)
    run(script("nbgrader") + ["autograde", NAME, "--force"], path, env)
    run(script("grader") + ["grade", path / "submitted", "--out", root / "cli", "--config", toml, "--jobs", "2"],
        root, env)
    run(script("nbgrader") + ["generate_feedback", NAME, "--force"], path, env)
    return SimpleNamespace(root=root, path=path, students=["correct", "partly", "untouched"])


def test_the_helpers_and_the_self_check_are_released_beside_the_notebook(course):
    """`grader nbgrader init` wrote them into source/; generate_assignment released them as they are."""
    files = released(course, CONVNET)
    assert {"selfcheck.py", "conftest.py", "test_convnet.py", "gradcheck.py"} <= {p.as_posix() for p in files}
    assert files == notebook_companions(CONVNET)
    for name, text in CONVNET.helper_sources().items():
        assert (course.path / "release" / NAME / name).read_text(encoding="utf-8") == text
        assert (course.path / "autograded" / "correct" / NAME / name).is_file()


def test_the_kernel_ran_the_students_cells_importing_the_helpers(course):
    graded = json.loads((course.path / "autograded" / "correct" / NAME / CONVNET.notebook).read_text("utf-8"))
    errors = [o for c in graded["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, errors[0]
    assert any(c.get("execution_count") for c in graded["cells"] if c["cell_type"] == "code")


def test_autograde_scores_equal_grader_grade_part_by_part(course):
    book = gradebook(course, NAME)
    for student in course.students:
        assert {part: g.score for part, g in book[student].items()} == cli_parts(course, student), student
        assert {part: g.max for part, g in book[student].items()} == MAX
    totals = {s: sum(g.score for g in book[s].values()) for s in course.students}
    assert totals["correct"] == sum(MAX.values())
    assert 0 == totals["untouched"] < totals["partly"] < totals["correct"]
    partly = cli_parts(course, "partly")
    assert partly["col2im"] < MAX["col2im"] and partly["Dropout"] < MAX["Dropout"]
    assert partly["Convolution"] == MAX["Convolution"], "col2im's overwrite is charged to col2im only"


def test_feedback_shows_the_named_mistakes_and_no_solution_line(course):
    secret = set().union(*(solution_lines((CONVNET.folder / f).read_text("utf-8")) for f in CONVNET.files))
    text = feedback_text(course, "partly", NAME)
    assert "overlapping windows overwrite each other" in text and "test mode not scaled" in text
    for student in course.students:
        shown = {line.strip() for line in feedback_text(course, student, NAME).splitlines()}
        cells = json.loads((course.path / "submitted" / student / NAME / CONVNET.notebook).read_text("utf-8"))
        own = {line.strip() for c in cells["cells"] for line in "".join(c["source"]).splitlines()}
        assert not (secret & shown) - own, student
    assert len(secret & {line.strip() for line in feedback_text(course, "correct", NAME).splitlines()}) > 10
