"""A course, not a chapter: assignments are data, and pytest runs their hidden tests.

- one installation grades two different assignments (backprop and the test assignment
  in tests/assignments/dropout: a random mask seeded alike on both sides, a helper
  module shipped read-only into the sandbox);
- the engine (grader/) names no assignment's part, class or file;
- the hidden tests run under a plain pytest command line against one hand-in;
- a broken hidden test is reported once, before any student is graded.
"""
from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BACKPROP, FULL, REPO, SOLUTIONS

from grader.assignment import Assignment
from grader.reports import student_folder

pytestmark = pytest.mark.sandbox

DROPOUT = Path(__file__).resolve().parent / "assignments" / "dropout"
CLASS = REPO / "examples" / "class"
AFFINE = next(e for e in BACKPROP.exercises if e.part == "Affine")


def strip(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if "SOLUTION" not in line)


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A course folder with both assignments and a private seed."""
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(SOLUTIONS, root / "solutions" / "backprop")
    shutil.copytree(DROPOUT, root / "solutions" / "dropout")
    (root / "course.toml").write_text('seed = "0x5eed5eed5eed5eed5eed5eed5eed5eed"\n', encoding="utf-8")
    return root


def grader(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def grades(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "grades.csv", newline="") as fh:
        return {row["student"]: row for row in csv.DictReader(fh)}


def test_one_installation_grades_two_assignments(course, tmp_path):
    good = strip((DROPOUT / "dropout.py").read_text())
    subs = tmp_path / "dropout-class"
    for student, text in {"good": good, "nomask": good.replace("dx = dout * self.mask", "dx = dout"),
                          "remask": good.replace("dx = dout * self.mask",
                                                 "dx = dout * keep_mask(dout.shape, self.dropout_ratio)")}.items():
        (subs / student).mkdir(parents=True)
        (subs / student / "dropout.py").write_text(text)
    # a student's own copy of the helper never counts: the assignment's is staged
    (subs / "good" / "common").mkdir()
    (subs / "good" / "common" / "functions.py").write_text("def keep_mask(shape, ratio):\n    raise KeyError\n")
    done = grader("grade", subs, "--out", tmp_path / "dropout", "--assignment", "dropout", cwd=course)
    assert done.returncode == 0, done.stderr
    got = grades(tmp_path / "dropout")
    # 6 = forward 1 + dx 2 + two graded tests of test_more.py + the layer protocol 1; nomask
    # loses dx; remask loses dx and the protocol (a mask drawn in backward depends on what
    # ran before it), and the seeded mask is the same in every call the protocol compares
    assert {s: float(r["score"]) for s, r in got.items()} == {"good": 6.0, "nomask": 4.0, "remask": 3.0}
    assert list(got["good"])[3:] == ["Dropout"]
    assert "Dropout (test assignment)" in (tmp_path / "dropout" / "students" / "good" / "report.html").read_text()
    named = json.loads((tmp_path / "dropout" / "students" / "nomask" / "report.json").read_text())
    assert "mask-ignored" in {t["misconception"] for t in named["tests"]}

    backprop = tmp_path / "backprop-class"
    for student in ("ada-book", "db-mean"):
        shutil.copytree(CLASS / student, backprop / student)
    done = grader("grade", backprop, "--out", tmp_path / "backprop", "--assignment", "backprop", cwd=course)
    assert done.returncode == 0, done.stderr
    got = grades(tmp_path / "backprop")
    assert float(got["ada-book"]["score"]) == FULL and float(got["db-mean"]["Affine"]) == AFFINE.max_points - 3
    assert BACKPROP.title in (tmp_path / "backprop" / "class.html").read_text()


def test_the_assignment_is_named_or_recognized_from_the_hand_ins(course, tmp_path):
    (tmp_path / "s" / "a").mkdir(parents=True)
    (tmp_path / "s" / "a" / "notes.txt").write_text("no assignment's file")
    done = grader("grade", tmp_path / "s", "--out", tmp_path / "r", cwd=course)
    assert done.returncode == 2 and "--assignment" in done.stderr and "backprop, dropout" in done.stderr
    shutil.copytree(CLASS / "db-mean", tmp_path / "k" / "db-mean")
    done = grader("grade", tmp_path / "k", "--out", tmp_path / "r", cwd=course)
    assert done.returncode == 0 and "assignment: backprop" in done.stderr, done.stderr


def every_shipped_assignment() -> list[Assignment]:
    folders = [p.parent for p in (REPO / "solutions").glob("*/assignment.toml")] + [DROPOUT]
    return [Assignment.load(f) for f in folders]


def test_the_engine_names_no_assignment():
    """Every part, class, function and file of every assignment is data, never engine code."""
    names = set()
    for assignment in every_shipped_assignment():
        names |= {assignment.notebook, *assignment.files, *assignment.helpers}
        for e in assignment.exercises:
            names |= {e.part, e.target, e.file}
    assert len(names) > 10
    found = []
    for path in (REPO / "grader").rglob("*"):
        if path.is_file() and path.suffix in (".py", ".j2", ".html", ".md", ".css", ".toml"):
            text = path.read_text(encoding="utf-8")
            found += [f"{path.relative_to(REPO)}: {n}" for n in names if re.search(rf"\b{re.escape(n)}\b", text)]
    assert not found, found


def test_hidden_tests_run_under_plain_pytest():
    """An instructor debugs a hidden test against one hand-in with pytest itself."""
    hidden = SOLUTIONS / "hidden"
    bad = subprocess.run([sys.executable, "-m", "pytest", str(hidden), "--handin", str(CLASS / "db-mean"),
                          "-p", "no:cacheprovider", "-q"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "FAILED" in bad.stdout and "test_exercise[Affine]" in bad.stdout
    top = AFFINE.max_points
    assert "db as a mean over the batch" in bad.stdout and f"Affine: {top - 3:g} / {top:g}" in bad.stdout
    good = subprocess.run([sys.executable, "-m", "pytest", str(hidden), "--handin", str(CLASS / "ada-book"),
                           "-p", "no:cacheprovider", "-q", "-k", "Relu or Sigmoid"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "4 passed" in good.stdout and "total: 18 / 18" in good.stdout


@pytest.mark.parametrize("broken, said", [
    ("def test_typo(student, sutdent):\n    pass\n", "fixture 'sutdent' not found"),
    ("def test_syntax(:\n", "SyntaxError"),
    ("import pytest\n\n@pytest.mark.graded(part='Affine')\ndef test_no_points(student):\n    pass\n",
     "@pytest.mark.graded(part="),
])
def test_a_broken_hidden_test_is_reported_once_before_grading(course, tmp_path, broken, said):
    broken_course = tmp_path / "course"
    shutil.copytree(course, broken_course)
    (broken_course / "solutions" / "backprop" / "hidden" / "test_broken.py").write_text(broken)
    subs = tmp_path / "class"
    for student in ("ada-book", "db-mean"):
        shutil.copytree(CLASS / student, subs / student)
    done = grader("grade", subs, "--out", tmp_path / "out", "--assignment", "backprop", cwd=broken_course)
    assert done.returncode in (2, 4), done.stderr
    assert said in done.stderr and "nobody was graded" in done.stderr or "cannot be run" in done.stderr
    assert done.stderr.count(said) == 1, done.stderr
    assert not (tmp_path / "out" / "ada-book").exists(), "a student was graded"


def test_select_passes_k_to_pytest(course, tmp_path):
    subs = tmp_path / "class"
    shutil.copytree(CLASS / "db-mean", subs / "db-mean")
    done = grader("grade", subs, "--out", tmp_path / "out", "--assignment", "backprop", "--select", "Affine",
                  cwd=course)
    assert done.returncode == 0, done.stderr
    row = grades(tmp_path / "out")["db-mean"]
    assert float(row["max_score"]) == AFFINE.max_points and float(row["score"]) == AFFINE.max_points - 3


def test_select_matching_nothing_is_a_usage_error_naming_the_tests(course, tmp_path):
    subs = tmp_path / "class"
    shutil.copytree(CLASS / "db-mean", subs / "db-mean")
    done = grader("grade", subs, "--out", tmp_path / "out", "--assignment", "backprop",
                  "--select", "db-mean", cwd=course)
    assert done.returncode == 2, done.stderr
    assert "--select 'db-mean' matches none of the hidden tests" in done.stderr
    assert "test_exercise[Affine]" in done.stderr and "canary" not in done.stderr
    assert not (tmp_path / "out" / "db-mean").exists()


def with_hidden_test(course: Path, tmp_path: Path, source: str) -> Path:
    """A copy of ``course`` whose backprop hidden tests also hold ``source`` (numpy and pytest imported)."""
    own = tmp_path / "course"
    shutil.copytree(course, own)
    (own / "solutions" / "backprop" / "hidden" / "test_mine.py").write_text(
        "import numpy as np\nimport pytest\n\n" + source)
    return own


def test_instructor_assert_messages_reach_students_not_the_explanation(course, tmp_path):
    """A failed plain assert shows its message (or the test's name), never its source or diff."""
    broken_course = with_hidden_test(
        course, tmp_path,
        "@pytest.mark.graded(part='Affine', points=1)\n"
        "def test_keeps_w(student, rng):\n"
        "    W = rng.standard_normal((3, 2))\n"
        "    kept = student.layers.Affine(W, W[0]).W\n"
        "    assert np.array_equal(kept, W + 1), 'Affine must keep the W it is given'\n\n"
        "@pytest.mark.graded(part='Affine', points=1)\n"
        "def test_bare(student):\n"
        "    secret_formula = [1, 2, 3]\n"
        "    assert secret_formula == [1, 2, 4]\n")
    shutil.copytree(CLASS / "ada-book", tmp_path / "class" / "ada-book")
    done = grader("grade", tmp_path / "class", "--out", tmp_path / "out", "--assignment", "backprop",
                  cwd=broken_course)
    # the reference fails these tests too: the canary refuses, naming them for the instructor
    assert done.returncode == 4 and "test_keeps_w" in done.stderr and "test_bare" in done.stderr, done.stderr


def test_an_authors_failed_comparison_is_the_students_failure_with_its_message(course, tmp_path):
    """``assert a == b, "message"`` in an author's hidden test: pytest explains the comparison
    with its terminal writer (the session's terminal reporter must be there, or the
    explanation fails and the message is lost); the student reads the message."""
    own = with_hidden_test(
        course, tmp_path,
        "@pytest.mark.graded(part='Affine', points=1)\n"
        "def test_db_sums(student):\n"
        "    layer = student.layers.Affine(np.ones((2, 2)), np.zeros(2))\n"
        "    layer.forward(np.ones((3, 2)))\n"
        "    layer.backward(np.ones((3, 2)))\n"
        "    assert [float(v) for v in layer.db] == [3.0, 3.0], 'db sums the upstream gradient over the batch'\n")
    for student in ("ada-book", "db-mean"):
        shutil.copytree(CLASS / student, tmp_path / "class" / student)
    done = grader("grade", tmp_path / "class", "--out", tmp_path / "out", "--assignment", "backprop", cwd=own)
    assert done.returncode == 0, done.stderr

    def item(student: str) -> dict:
        report = json.loads((student_folder(tmp_path / "out", student) / "report.json").read_text())
        return next(t for t in report["tests"] if "test_db_sums" in t["name"])

    assert item("ada-book")["status"] == "passed"
    failed = item("db-mean")
    said = "db sums the upstream gradient over the batch"
    assert failed["status"] == "failed" and failed["feedback"] == said, failed
    assert not (tmp_path / "out" / "grader-errors.log").exists()


def test_plain_asserts_give_students_the_message_only(tmp_path):
    from grader.hidden.plugin import _student_message

    assert _student_message(AssertionError("Affine must keep W\nassert False\n +  where ..."), "t") == \
        "Affine must keep W"
    assert _student_message(AssertionError("assert [1, 2, 3] == [1, 2, 4]\n  At index 2"), "test_x") == \
        "The check test_x failed."
