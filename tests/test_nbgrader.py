"""End to end through the real nbgrader CLI, its kernel and its gradebook.

`grader nbgrader init` -> `nbgrader generate_assignment` -> submitted notebooks (correct,
partly wrong, untouched, two hostile ones, one writing to stderr) -> `nbgrader
autograde` -> gradebook -> `nbgrader export` and `generate_feedback`; every score is
compared, part by part, with `grader grade` on the same notebooks. Then kernels that
write to the gradebook or to the grader's files, and a course that never executes.
"""
from __future__ import annotations

import copy
import csv
import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from conftest import BACKPROP, RELEASE, SOLUTIONS, command, execute_notebook, fill_in, solutions_of
from nbgrader.api import Gradebook

from grader.authoring.release import solution_lines
from grader.reports import student_folder

pytestmark = [pytest.mark.nbgrader, pytest.mark.slow]

MAX = {e.part: float(e.max_points) for e in BACKPROP.exercises}
TOTAL = sum(MAX.values())
HIDDEN_CALL = "from grader.nb import check"
PATCH_NUMPY = """import numpy as np
np.allclose = lambda *a, **k: True
np.isclose = lambda a, b, *x, **k: np.ones(np.broadcast(a, b).shape, bool)
np.array_equal = lambda *a, **k: True
np.testing.assert_allclose = lambda *a, **k: None
"""
PATCH_GRADER = f"""import grader.nb
POINTS = {MAX!r}
grader.nb.check = lambda part, *rest: print(part, "- all checks passed") or POINTS[part]
"""
STDERR = """import sys, warnings
get_ipython().events.register("pre_run_cell", lambda *a: print("RuntimeWarning: overflow in exp", file=sys.stderr))
warnings.warn("a warning from the student's own cell")
"""
WRITE_GRADEBOOK = """import os, sqlite3
db = sqlite3.connect(os.path.join("..", "..", "..", "gradebook.db"))
db.execute("UPDATE grade SET manual_score = 1000")
db.commit()
db.close()
"""


def script(name: str) -> list[str]:
    return command(name)


def this_nbgrader_first(env: dict) -> dict:
    """nbgrader runs `alembic` from PATH: this interpreter's, not one another install put on
    PATH (as a normal user, root's pyenv shims on an inherited PATH cannot even be run)."""
    here = str(Path(command("nbgrader")[0]).parent)
    return {**env, "PATH": os.pathsep.join([here, env.get("PATH", os.defpath)])}


def run(args: list, cwd: Path, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert done.returncode == 0, f"{args} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return done


class Notebooks:
    """Student notebooks made from nbgrader's own release, with the solution cells filled in."""

    def __init__(self, course: Path, name: str = "backprop"):
        self.course, self.name = course, name
        self.release = json.loads((course / f"release/{name}/{name}.ipynb").read_text(encoding="utf-8"))
        source = json.loads((course / f"source/{name}/{name}.ipynb").read_text(encoding="utf-8"))
        self.solved = solutions_of(source)

    def hand_in(self, student: str, edits=(), extra=(), solve: bool = True, nbgrader=None) -> Path:
        """``nbgrader``: cell id -> the nbgrader metadata the student gave that cell."""
        nb = fill_in(copy.deepcopy(self.release), self.solved if solve else {}, edits)
        for i, code in enumerate(extra):  # a student's own cells, right after layers.py's top
            at = next(n for n, c in enumerate(nb["cells"]) if c["id"] == "layers-top")
            nb["cells"].insert(at + 1 + i, {"cell_type": "code", "id": f"own-{i}", "metadata": {},
                                            "execution_count": None, "outputs": [], "source": code})
        for cell in nb["cells"]:
            if cell["id"] in (nbgrader or {}):
                cell["metadata"]["nbgrader"] = nbgrader[cell["id"]]
        path = self.course / "submitted" / student / self.name / f"{self.name}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(nb, indent=1), encoding="utf-8")
        return path


WRONG_MUL = ("dx = dout * self.y  # swap the inputs", "dx = dout * self.x")
WRONG_SIGMOID = ("dx = dout * (1.0 - self.out) * self.out", "dx = dout * self.out")
DB_MEAN = ("self.db = np.sum(dout, axis=0)", "self.db = np.mean(dout, axis=0)")


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("nbgrader")
    # the grader's course: its own copy of the assignment (a kernel will write to it), its settings
    shutil.copytree(SOLUTIONS, root / "solutions" / "backprop")
    toml = root / "course.toml"
    toml.write_text('seed = 4242\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in {"PYTEST_ADDOPTS", "PYTHONPATH", "GRADER_CONFIG"}}
    env.update(JUPYTER_CONFIG_DIR=str(root / "jupyter-config"), JUPYTER_RUNTIME_DIR=str(root / "runtime"),
               PYTHONDONTWRITEBYTECODE="1")
    env = this_nbgrader_first(env)
    course = root / "course"
    run(script("grader") + ["nbgrader", "init", course, "--config", toml, "--timeout", "60"], root, env)
    run(script("nbgrader") + ["generate_assignment", "backprop", "--force"], course, env)
    hand = Notebooks(course)
    hand.hand_in("correct")
    hand.hand_in("partly", edits=[WRONG_MUL, DB_MEAN])
    hand.hand_in("untouched", solve=False)
    hand.hand_in("hostile-numpy", edits=[WRONG_MUL, WRONG_SIGMOID], extra=[PATCH_NUMPY])
    hand.hand_in("hostile-grader", edits=[WRONG_MUL, DB_MEAN], extra=[PATCH_GRADER])
    hand.hand_in("warns", extra=[STDERR])
    students = sorted(p.name for p in (course / "submitted").iterdir())
    autograde = run(script("nbgrader") + ["autograde", "backprop", "--force"], course, env)
    cli = run(script("grader") + ["grade", course / "submitted", "--out", root / "cli", "--config", toml,
                                  "--jobs", "2"], root, env)
    run(script("nbgrader") + ["generate_feedback", "backprop", "--force"], course, env)
    run(script("nbgrader") + ["export"], course, env)
    return SimpleNamespace(root=root, path=course, env=env, toml=toml, hand=hand, students=students,
                           autograde=autograde, cli=cli)


def gradebook(course, name: str = "backprop") -> dict[str, dict[str, object]]:
    """student -> part -> the Grade row, read back from nbgrader's database."""
    with Gradebook(f"sqlite:///{course.path / 'gradebook.db'}") as gb:
        return {s.id: {g.name: SimpleNamespace(score=g.score, auto=g.auto_score, manual=g.manual_score,
                                               max=g.max_score)
                       for g in gb.find_submission_notebook(name, name, s.id).grades}
                for s in gb.students if gb.find_submission(name, s.id)}


def cli_parts(course, student: str) -> dict[str, float]:
    report = json.loads((student_folder(course.root / "cli", student) / "report.json").read_text(encoding="utf-8"))
    return {part: totals["score"] for part, totals in report["parts"].items()}


def graded_notebook(course, student: str) -> dict:
    return json.loads((course.path / "autograded" / student / "backprop" / "backprop.ipynb").read_text("utf-8"))


def grade_cells(nb: dict) -> dict[str, dict]:
    return {c["metadata"]["nbgrader"]["grade_id"]: c for c in nb["cells"]
            if c["metadata"].get("nbgrader", {}).get("grade")}


def feedback_text(course, student: str, name: str = "backprop") -> str:
    page = (course.path / "feedback" / student / name / f"{name}.html").read_text(encoding="utf-8")
    page = re.sub(r"<(style|script)\b.*?</\1>", "", page, flags=re.S)  # CSS names e.g. Generic.Traceback
    return html.unescape(re.sub(r"<[^>]+>", "", page))


# ------------------------------------------------------------------ the release


def released(course, assignment) -> dict[Path, bytes]:
    """What `nbgrader generate_assignment` put into release/ beside ``assignment``'s notebook
    (a course of this module's kind), as `grader release`'s notebook companions are keyed."""
    release = course.path / "release" / assignment.name
    files = {p.relative_to(release): p.read_bytes() for p in release.rglob("*") if p.is_file()}
    assert files.pop(Path(assignment.notebook), None), f"no {assignment.notebook} in {release}"
    return files


def test_nbgrader_release_is_the_committed_student_notebook(course):
    """generate_assignment's release and `grader release`'s notebook hold the same cells."""
    ours = json.loads((RELEASE / BACKPROP.notebook).read_text(encoding="utf-8"))
    theirs = course.hand.release
    assert [(c["id"], "".join(c["source"])) for c in theirs["cells"]] == \
        [(c["id"], "".join(c["source"])) for c in ours["cells"]]
    points = {c["metadata"]["nbgrader"]["grade_id"]: c["metadata"]["nbgrader"]["points"]
              for c in theirs["cells"] if c["metadata"].get("nbgrader", {}).get("grade")}
    assert points == MAX


SELF_CHECK = {"conftest.py", "gradcheck.py", "pytest.ini", "selfcheck.py", "test_backprop.py"}


def test_the_release_folder_holds_the_self_check_and_nothing_hidden(course):
    """`grader nbgrader init` put the self-check into source/, so generate_assignment released it as it is."""
    release = course.path / "release" / "backprop"
    files = {p.relative_to(release).as_posix(): p for p in release.rglob("*") if p.is_file()}
    assert set(files) == SELF_CHECK | {BACKPROP.notebook}
    assert all(files[name].read_bytes() == (RELEASE / name).read_bytes() for name in SELF_CHECK)
    secret = set().union(*(solution_lines((SOLUTIONS / n).read_text("utf-8")) for n in BACKPROP.files))
    hidden = {p.read_bytes() for p in (SOLUTIONS / "hidden").rglob("*.py")}
    assert not {p.name for p in (SOLUTIONS / "hidden").rglob("test_*.py")} & set(files)
    for name, path in files.items():
        text = path.read_text(encoding="utf-8")
        rows = text.splitlines()
        lines = {line.strip() for line in rows} | {line.split("#")[0].strip() for line in rows}
        assert not secret & lines and "HIDDEN TESTS" not in text and "grader.nb" not in text, name
        assert path.read_bytes() not in hidden, name


def test_the_released_notebooks_grade_cells_self_check_in_a_kernel(course, tmp_path):
    """A student runs nbgrader's release: each grade cell checks the notebook's own classes."""
    folder = shutil.copytree(course.path / "release" / "backprop", tmp_path / "backprop")
    nb = fill_in(nbformat.reads(json.dumps(course.hand.release), as_version=4), course.hand.solved, [DB_MEAN])
    execute_notebook(nb, folder)
    printed = {c.metadata["grader"]["part"]: "".join(o.get("text", "") for o in c.outputs).splitlines()
               for c in nb.cells if "part" in c.metadata.get("grader", {})}
    assert printed["MulLayer"] == ["Self-check of MulLayer (it does not change your grade):", "✓ test_mul_layer",
                                   "It passes."]
    assert printed["Affine"][1].startswith("✗ test_affine[2-D input]: Affine.backward: db: largest relative error")
    assert printed["Affine"][-1] == "2 of 2 checks failed."
    assert all(not any(line.startswith("✗") for line in printed[p]) for p in ("Relu", "Sigmoid", "ShoppingGraph"))


def test_under_autograde_the_self_check_is_silent_and_the_hidden_check_scores(course):
    """The self-check's line comes first in each grade cell and prints nothing there: the kernel's own
    result (kept as kernel_said) is the hidden check's float, with no stderr or error before it."""
    cells = grade_cells(graded_notebook(course, "correct"))
    said = {p: c["metadata"]["grader"]["kernel_said"] for p, c in cells.items()}
    assert said == {p: repr(m) for p, m in MAX.items()}
    for part, cell in cells.items():
        assert "".join(cell["source"]).splitlines()[2] == f"import selfcheck; selfcheck.run({part!r})"


# ------------------------------------------------------------------ the scores


def test_autograde_scores_equal_grader_grade_part_by_part(course):
    book = gradebook(course)
    assert set(course.students) <= set(book)
    for student in course.students:
        assert {part: g.score for part, g in book[student].items()} == cli_parts(course, student), student
        assert {part: g.max for part, g in book[student].items()} == MAX
        assert all(g.manual is None for g in book[student].values())
    totals = {s: sum(g.score for g in book[s].values()) for s in course.students}
    assert totals["correct"] == totals["warns"] == TOTAL
    assert 0 < totals["untouched"] < totals["partly"] < TOTAL
    exported = {row["student_id"]: float(row["score"])
                for row in csv.DictReader((course.path / "grades.csv").open(encoding="utf-8"))}
    assert exported == totals


def test_a_zero_is_recorded_as_zero_from_a_plain_float(course):
    book = gradebook(course)
    assert book["untouched"]["ShoppingGraph"].auto == 0.0 == cli_parts(course, "untouched")["ShoppingGraph"]
    for student in course.students:
        for part, cell in grade_cells(graded_notebook(course, student)).items():
            results = [o for o in cell["outputs"] if o["output_type"] == "execute_result"]
            assert len(results) == 1 and cell["outputs"][-1] is results[0]
            text = "".join(results[0]["data"]["text/plain"])
            assert re.fullmatch(r"\d+\.\d+", text) and float(text) == book[student][part].auto


def test_stderr_in_a_grade_cell_does_not_zero_it(course):
    """The student's hook writes to stderr before every cell: nbgrader alone would give 0."""
    cells = grade_cells(graded_notebook(course, "warns"))
    assert {c["metadata"]["grader"]["kernel_said"] for c in cells.values()} == {"<stderr: scores 0>"}
    assert all(g.score == MAX[p] for p, g in gradebook(course)["warns"].items())
    for student in course.students:
        for cell in grade_cells(graded_notebook(course, student)).values():
            assert all(o["output_type"] != "error" and o.get("name") != "stderr" for o in cell["outputs"])


def test_hostile_kernels_gain_nothing(course):
    book = gradebook(course)
    cells = grade_cells(graded_notebook(course, "hostile-grader"))
    said = {p: c["metadata"]["grader"]["kernel_said"] for p, c in cells.items()}
    assert said == {p: repr(m) for p, m in MAX.items()}, "the patched check did claim full marks in the kernel"
    for student, wrong in (("hostile-grader", ["MulLayer", "Affine"]), ("hostile-numpy", ["MulLayer", "Sigmoid"])):
        scores = {p: g.score for p, g in book[student].items()}
        assert scores == cli_parts(course, student)
        assert all(scores[p] < MAX[p] for p in wrong), (student, scores)
        assert scores["Relu"] == MAX["Relu"], "a part they got right still counts"
    assert f"the kernel's output said {MAX['MulLayer']}; the sandbox's score is" in course.autograde.stderr


def test_feedback_shows_our_feedback_and_no_hidden_or_solution_line(course):
    secret = set().union(*(solution_lines((SOLUTIONS / n).read_text("utf-8")) for n in BACKPROP.files))
    for student in course.students:
        text = feedback_text(course, student)
        assert HIDDEN_CALL not in text and "HIDDEN TESTS" not in text, student
        assert not re.search(r"grader/\w+\.py", text), f"{student}: a traceback through the grader"
        handed_in = (course.path / "submitted" / student / "backprop" / "backprop.ipynb").read_text("utf-8")
        lines = "".join("".join(c["source"]) + "\n" for c in json.loads(handed_in)["cells"]).splitlines()
        own = {line.strip() for line in lines} | {line.split("#")[0].strip() for line in lines}
        rendered = text.splitlines()
        shown = secret & ({line.strip() for line in rendered} | {line.split("#")[0].strip() for line in rendered})
        assert shown <= own, f"{student}: solution lines they did not write: {sorted(shown - own)[:3]}"
        assert "Autograded: MulLayer" in text and "About your notebook:" in text
    assert f"MulLayer: {MAX['MulLayer']:g} / {MAX['MulLayer']:g} points" in feedback_text(course, "correct")
    correct = {line.strip() for line in feedback_text(course, "correct").splitlines()}
    assert len(secret & correct) > 10, "the leak check sees the code at all"
    partly = feedback_text(course, "partly")
    # MulLayer: its dx items lost (2 x 2 points), its protocol kept (the same wrong formula everywhere)
    assert f"MulLayer: 7 / {MAX['MulLayer']:g} points" in partly and "FAILED Affine: db" in partly


# ------------------------------------------------------------ what a kernel may try


def test_kernels_that_write_the_gradebook_or_the_reference_are_undone_and_not_graded(course):
    before = gradebook(course)
    target = course.root / "solutions" / "backprop" / "layers.py"
    kept = target.read_bytes()
    course.hand.hand_in("zz-gradebook", extra=[WRITE_GRADEBOOK])
    course.hand.hand_in("zz-files", extra=[f"open({str(target)!r}, 'a').write('\\n# edited by a student\\n')\n"])
    try:
        done = run(script("nbgrader") + ["autograde", "backprop", "--student", "zz-*", "--force"],
                   course.path, course.env, check=False)
    finally:
        target.write_bytes(kept)
    assert done.returncode != 0
    assert "zz-gradebook: the gradebook changed while this notebook ran" in done.stderr
    assert f"while zz-files's notebook ran, its code changed files the grades depend on: {target}. " \
           "This notebook is not graded." in done.stderr
    after = gradebook(course)
    for student in course.students:  # the UPDATE hit every row; the copy from before is back
        assert {p: (g.score, g.manual) for p, g in after[student].items()} == \
            {p: (g.score, None) for p, g in before[student].items()}
    for student in ("zz-gradebook", "zz-files"):
        assert all(g.manual is None and g.auto is None for g in after.get(student, {}).values())
        assert not (course.path / "autograded" / student / "backprop").exists(), "nbgrader removes a failed one"


# a student's own grade cells: their solution cell marked `grade: true`, a cell of theirs with
# metadata copied from another course's notebook, a class cell with `grade: true` and no id
MARKED = {
    "zz-mark-own": ([], {"layers-Affine": {"grade": True, "grade_id": "layers-Affine", "locked": False,
                                           "points": 88, "schema_version": 3, "solution": True}}),
    "zz-mark-copied": (["x = 1\n"], {"own-0": {"grade": True, "grade_id": "cell-5f2a9c", "locked": True,
                                               "points": 3, "schema_version": 3, "solution": False}}),
    "zz-mark-noid": ([], {"layers-Relu": {"grade": True}}),
}


def test_cells_a_student_marked_as_grade_cells_are_graded_as_their_code(course, tmp_path):
    """nbgrader's OverwriteCells/DeduplicateIds crashed on these (a silent 0 in export, no
    feedback) while `grader grade` scored them: their metadata is the release's again first."""
    for student, (extra, marks) in MARKED.items():
        course.hand.hand_in(student, extra=extra, nbgrader=marks)
    done = run(script("nbgrader") + ["autograde", "backprop", "--student", "zz-mark-*", "--force"],
               course.path, course.env, check=False)
    cli = run(script("grader") + ["grade", course.path / "submitted", "--out", tmp_path / "cli", "--config",
                                  course.toml, "--jobs", "2"], course.root, course.env)
    run(script("nbgrader") + ["generate_feedback", "backprop", "--student", "zz-mark-*", "--force"],
        course.path, course.env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    book = gradebook(course)
    for student in MARKED:
        report = json.loads((student_folder(tmp_path / "cli", student) / "report.json").read_text("utf-8"))
        assert {p: g.score for p, g in book[student].items()} == \
            {p: t["score"] for p, t in report["parts"].items()}, (student, cli.stdout[-500:])
        assert sum(g.score for g in book[student].values()) == TOTAL, student
        assert f"MulLayer: {MAX['MulLayer']:g} / {MAX['MulLayer']:g} points" in feedback_text(course, student)


def test_a_no_execute_course_never_runs_student_code_outside_the_sandbox(course, tmp_path):
    canary = tmp_path / "canary"
    run(script("grader") + ["nbgrader", "init", course.path, "--config", course.toml, "--no-execute", "--force"],
        course.root, course.env)
    try:  # "partly"'s notebook plus a cell that would leave a file if a kernel ran it
        course.hand.hand_in("zz-quiet", edits=[WRONG_MUL, DB_MEAN], extra=[f"open({str(canary)!r}, 'w')\n"])
        run(script("nbgrader") + ["autograde", "backprop", "--student", "zz-quiet", "--force"],
            course.path, course.env)
    finally:
        run(script("grader") + ["nbgrader", "init", course.path, "--config", course.toml, "--force"],
            course.root, course.env)
    assert not canary.exists(), "a cell ran in a kernel"
    assert {p: g.score for p, g in gradebook(course)["zz-quiet"].items()} == cli_parts(course, "partly")
    cells = grade_cells(graded_notebook(course, "zz-quiet"))
    assert all(c["metadata"]["grader"]["kernel_said"] is None for c in cells.values())
    assert "FAILED Affine: db" in "".join(cells["Affine"]["outputs"][0]["text"])
