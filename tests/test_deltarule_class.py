"""The deltarule assignment graded for real: its example class, every mistake it names,
many seeds, and the same scores on a machine without PyTorch.

The example class (examples/deltarule-class) holds correct hand-ins written two ways,
seed note 002's own mistake, typical ones and broken files; EXPECTED.json says, part by
part, what a careful grader awards. `grader grade` recognizes the assignment from the
hand-ins' files, as for the backprop class.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import mutants_deltarule
import pytest
from conftest import DELTARULE, GRADER, REPO, leaks, make_grading, part_mismatches, report_of
from test_seeds import sweep

from grader import batch
from grader.judging.misconceptions import catalogue
from grader.reports import student_folder

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

CLASS = REPO / "examples" / "deltarule-class"
EXPECTED = json.loads((CLASS / "EXPECTED.json").read_text())
TORCH_NOTE = "PyTorch check (autograd in float32"
NO_TORCH = "raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n"


def grade_class(out: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*GRADER, "grade", str(CLASS), "--out", str(out), "--jobs", "2"],
                          capture_output=True, text=True, timeout=900, env=env)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    return grade_class(out), out


def test_the_class_is_recognized_and_every_report_written(graded):
    proc, out = graded
    assert proc.returncode == 0, proc.stderr
    assert "assignment: deltarule" in proc.stderr, proc.stderr
    for student in EXPECTED:
        for name in ("report.json", "report.md", "report.html", "results.json"):
            assert (student_folder(out, student) / name).stat().st_size > 0, (student, name)
    with open(out / "grades.csv", newline="") as f:
        assert list(csv.DictReader(f).fieldnames) == ["student", "score", "max_score", *DELTARULE.parts]


def test_each_part_scores_as_a_careful_grader_would(graded):
    _, out = graded
    assert all(set(parts) == set(DELTARULE.parts) for parts in EXPECTED.values())
    wrong = part_mismatches(out, EXPECTED)
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("student, part, misconception", [
    ("seed-002-no-derivative", "SigmoidOutput", "output-derivative-missing"),
    ("seed-002-no-derivative", "DeltaRule", "output-derivative-missing"),
    ("seed-002-no-derivative", "ThreeLayerNet", "output-derivative-missing"),
    ("sse-factor-2", "SSELoss", "half-sse-factor"),
    ("mse-summed", "MSELoss", "mse-sum-over-outputs"),
    ("mse-summed", "ThreeLayerNet", "mse-sum-over-outputs"),
    ("relu-missing", "ThreeLayerNet", "relu-derivative-missing"),
    ("no-transpose", "SigmoidOutput", "error-not-transposed"),
    ("no-transpose", "ThreeLayerNet", "error-not-transposed"),
    ("gradient-ascent", "DeltaRule", "update-sign"),
    ("lin-notebook", "SSELoss", "error-sign"),
    ("syntax-error", "SigmoidOutput", "syntax-error"),
])
def test_the_notes_and_typical_mistakes_are_named(graded, student, part, misconception):
    _, out = graded
    named = {t["misconception"] for t in report_of(out, student)["tests"] if t["part"] == part}
    assert misconception in named, named


def test_the_notes_mistake_is_explained_as_the_notes_tell_it(graded):
    """Forgetting the output's derivative: proportional row by row, still trains, fails the check."""
    _, out = graded
    failed = [t for t in report_of(out, "seed-002-no-derivative")["tests"] if t["status"] != "passed"]
    assert failed and all("the output activation's derivative left out" in t["feedback"] for t in failed)
    text = failed[0]["feedback"]
    assert "proportional row by row" in text and "training still works" in text and "gradient check fails" in text
    gradients = [t for t in failed if t["part"] != "DeltaRule"]
    assert all("does not match the numerical gradient of your own" in t["feedback"] for t in gradients)


def test_a_correct_float32_student_keeps_every_point_and_is_told_why(graded):
    """The notes' setting: everything in float32, as PyTorch computes by default."""
    _, out = graded
    data = report_of(out, "hui-float32")
    assert data["score"] == data["max_score"]
    said = "computed in float32, so judged with float32's tolerance"
    judged = [t for t in data["tests"] if said in t["feedback"]]
    assert len(judged) >= len(data["tests"]) // 2


def test_pytorch_is_a_third_oracle_that_gives_notes_not_points(graded):
    _, out = graded
    for student in EXPECTED:
        notes = [n for n in report_of(out, student)["notes"] if n.startswith(TORCH_NOTE)]
        assert len(notes) == 1, (student, report_of(out, student)["notes"])
        if student in ("ada-reference", "grace-variants"):
            assert "disagrees" not in notes[0] and ", ".join(DELTARULE.parts) in notes[0], notes[0]
    said = next(n for n in report_of(out, "sse-factor-2")["notes"] if n.startswith(TORCH_NOTE))
    assert "disagrees: SSELoss: dy differs from PyTorch's by 1 of the largest entry" in said, said
    assert "disagrees: DeltaRule" in said and "MSELoss" in said.split("disagrees")[0]
    gradescope = json.loads((student_folder(out, "sse-factor-2") / "results.json").read_text())
    assert TORCH_NOTE in gradescope["output"]


def test_without_pytorch_the_scores_are_the_same_and_the_report_says_why(graded, tmp_path):
    """A grading machine without torch (an import that fails, in every process of the run)."""
    proc, out = graded
    hidden = tmp_path / "no-torch" / "torch"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text(NO_TORCH)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(hidden.parent),
                                                                      os.environ.get("PYTHONPATH")]))}
    check = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert "No module named 'torch'" in check.stderr
    again = grade_class(tmp_path / "out", env)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "out" / "grades.csv").read_bytes() == (out / "grades.csv").read_bytes()
    for student in EXPECTED:
        notes = report_of(tmp_path / "out", student)["notes"]
        assert not any(n.startswith(TORCH_NOTE) for n in notes)
        assert any(n.startswith("Not graded (skipped): test_pytorch_agrees: the PyTorch check") and
                   "torch cannot be imported" in n for n in notes), notes


def test_feedback_never_shows_solution_or_hidden_test_code(graded):
    _, out = graded
    leaked = leaks(out, EXPECTED, CLASS, DELTARULE)
    assert not leaked, leaked[:3]


# --- every mistake of the catalogue, on a real buggy hand-in -------------------------------
@pytest.fixture(scope="module")
def diagnosed(tmp_path_factory):
    root = tmp_path_factory.mktemp("mutants")
    for mutant_id in mutants_deltarule.MUTANTS:
        mutants_deltarule.DELTARULE.build(mutant_id, root / mutant_id)
    full = {}
    batch.grade_class(root, tmp_path_factory.mktemp("reports"), make_grading(DELTARULE), jobs=2,
                      on_done=lambda r: full.__setitem__(r.student, r))
    return full


@pytest.mark.parametrize("mutant_id", mutants_deltarule.MUTANTS)
def test_mistake_is_named(diagnosed, mutant_id):
    result = diagnosed[mutant_id]
    expected = mutants_deltarule.ALIASES.get(mutant_id, mutant_id)
    assert expected in result.misconceptions(), [
        (t.name, t.misconception, t.feedback[:200]) for t in result.tests if t.status != "passed"]
    assert result.score < result.max_score
    named = next(t for t in result.tests if t.misconception == expected)
    if expected not in ("duplicate-class", "missing-class"):  # named by static reading instead
        assert catalogue(DELTARULE.exercises)[expected].title in named.feedback


def test_every_catalogue_entry_is_exercised():
    tested = {mutants_deltarule.ALIASES.get(m, m) for m in mutants_deltarule.MUTANTS}
    known = set(catalogue(DELTARULE.exercises)) - set(mutants_deltarule.NOT_APPLICABLE)
    assert known == tested, (known - tested, tested - known)


# --- many seeds -----------------------------------------------------------------------------
@pytest.mark.parametrize("student", ["ada-reference", "grace-variants", "hui-float32"])
def test_correct_code_never_loses_a_point_over_many_seeds(tmp_path, student):
    """Whatever the seed: the reference, another way of writing it, and all of it in float32
    (judged with float32's tolerance) keep every point, the layer protocol's included."""
    assert not sweep(CLASS / student, range(150), tmp_path, DELTARULE)


def test_hidden_tests_run_under_plain_pytest():
    done = subprocess.run([sys.executable, "-m", "pytest", str(DELTARULE.hidden), "--handin",
                           str(CLASS / "relu-missing"), "-p", "no:cacheprovider", "-q"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "test_exercise[ThreeLayerNet]" in done.stdout and "ThreeLayerNet: 8 / 20" in done.stdout
    assert "the ReLU derivative missing in a hidden layer" in done.stdout
    assert "note: PyTorch check" in done.stdout and "disagrees: ThreeLayerNet" in done.stdout
