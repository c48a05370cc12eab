"""`grader grade` on the convnet example class: recognized from its files, scored as a careful
grader would (EXPECTED.json), mistakes named, every report (Gradescope's results.json too),
nothing of the solution or the hidden tests in them.

examples/convnet-class holds correct hand-ins written differently (the simplified batch-norm
backward, gradients shared among tied maxima, a notebook), the assignment's typical
mistakes (col2im overwriting, cs231n's dropout, test mode with batch statistics, an input
changed in place...) and broken ones.
"""
from __future__ import annotations

import csv
import json
import shutil
import subprocess

import pytest
from conftest import CONVNET, GRADER, REPO, leaks, part_mismatches, report_of

from grader.judging.misconceptions import catalogue

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

CLASS = REPO / "examples" / "convnet-class"
EXPECTED = json.loads((CLASS / "EXPECTED.json").read_text())
REPORTS = ("report.json", "report.md", "report.html", "results.json")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    proc = subprocess.run([*GRADER, "grade", str(CLASS), "--out", str(out), "--jobs", "2"],
                          capture_output=True, text=True, timeout=900)
    return proc, out


def test_the_class_is_recognized_and_every_report_written(graded):
    proc, out = graded
    assert proc.returncode == 0, proc.stderr
    assert "assignment: convnet (" in proc.stderr
    assert sorted(p.name for p in CLASS.iterdir() if p.is_dir()) == sorted(EXPECTED)
    for student in EXPECTED:
        for name in REPORTS:
            assert (out / student / name).stat().st_size > 0, (student, name)
    with open(out / "grades.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["student", "score", "max_score", *CONVNET.parts]
    assert {float(r["max_score"]) for r in rows} == {CONVNET.max_points}


def test_each_part_scores_as_a_careful_grader_would(graded):
    _, out = graded
    wrong = part_mismatches(out, EXPECTED)
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("student, part, misconception", [
    ("col2im-assign", "col2im", "col2im-overwrites"),
    ("bn-no-mean-path", "BatchNormalization", "bn-mean-path-missing"),
    ("bn-test-batch-stats", "BatchNormalization", "bn-test-uses-batch-statistics"),
    ("bn-inplace", "BatchNormalization", "input-changed-in-place"),
    ("cs231n-dropout", "Dropout", "dropout-ratio-as-keep-probability"),
    ("cs231n-dropout", "Dropout", "dropout-test-unscaled"),
    ("inverted-dropout", "Dropout", "dropout-inverted"),
    ("conv-no-transpose", "Convolution", "conv-dout-not-transposed"),
    ("pool-ties-all", "Pooling", "pool-ties-duplicated"),
    ("forward-order", "SimpleConvNet", "layers-forward-order"),
    ("numerical-net", "SimpleConvNet", "numerical-differentiation"),
    ("syntax-error", "Pooling", "syntax-error"),
])
def test_typical_mistakes_are_named(graded, student, part, misconception):
    _, out = graded
    named = {t["misconception"] for t in report_of(out, student)["tests"] if t["part"] == part}
    assert misconception in named, named


def test_a_mistake_is_charged_where_it_is(graded):
    """col2im's overwrite is col2im's (Convolution and Pooling call it); a wrong Convolution
    is the Convolution's (the net built from it walks right)."""
    _, out = graded
    for student, blamed in (("col2im-assign", "col2im"), ("conv-no-transpose", "Convolution")):
        tests = report_of(out, student)["tests"]
        assert any(f"because of your {blamed}" in t["feedback"] for t in tests if t["part"] != blamed), student


def test_gradescope_results_hold_the_same_scores(graded):
    _, out = graded
    known = set(catalogue(CONVNET.exercises))
    for student in EXPECTED:
        data, gradescope = report_of(out, student), json.loads((out / student / "results.json").read_text())
        assert gradescope["score"] == pytest.approx(data["score"])
        assert [(t["name"], t["score"]) for t in gradescope["tests"]] == \
            [(t["name"], t["score"]) for t in data["tests"]]
        assert all(t["misconception"] in known for t in data["tests"] if t["misconception"])


def test_a_notebook_hand_in_is_graded_from_its_cells(graded):
    _, out = graded
    data = report_of(out, "hana-notebook")
    assert data["score"] == data["max_score"]
    assert any(n.startswith(f"Your notebook {CONVNET.notebook} was graded") for n in data["notes"]), data["notes"]


def test_feedback_never_shows_solution_or_hidden_test_code(graded):
    _, out = graded
    leaked = leaks(out, EXPECTED, CLASS, CONVNET)
    assert not leaked, leaked[:3]


def test_the_gradescope_autograder_grades_a_convnet_hand_in(tmp_path):
    """The autograder zip carries the assignment's helpers: the hand-in imports them."""
    from test_gradescope import autograder, results, run_autograder

    root = autograder(tmp_path, assignment="convnet")
    for name in CONVNET.files:
        shutil.copy(CLASS / "col2im-assign" / name, root / "submission" / name)
    done = run_autograder(root)
    assert done.returncode == 0, done.stderr
    data = results(root)
    assert data["score"] == CONVNET.max_points - 4, data["output"]
    assert {t["tags"][0] for t in data["tests"] if t["status"] == "failed"} == {"col2im"}
