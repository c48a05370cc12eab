"""`grader grade` on the example class: the command contract and scores a careful grader gives.

The example class (examples/class) holds correct hand-ins written in different
styles, the seed notes' mistakes, typical mistakes and broken files; EXPECTED.json
says, part by part, what a careful human grader awards.
"""
from __future__ import annotations

import csv
import json
import re
import subprocess

import pytest
from conftest import BACKPROP, GRADER, REPO, leaks, part_mismatches

from grader.judging.misconceptions import catalogue
from grader.reports import student_folder

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

CLASS = REPO / "examples" / "class"
EXPECTED = json.loads((CLASS / "EXPECTED.json").read_text())
PARTS = BACKPROP.parts
MAX = {e.part: e.max_points for e in BACKPROP.exercises}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    proc = subprocess.run([*GRADER, "grade", str(CLASS), "--out", str(out), "--jobs", "2"],
                          capture_output=True, text=True, timeout=600)
    return proc, out


def report(out, student) -> dict:
    return json.loads((student_folder(out, student) / "report.json").read_text())


def test_batch_completes_with_every_report(graded):
    proc, out = graded
    assert proc.returncode == 0, proc.stderr
    for student in EXPECTED:
        for name in ("report.json", "report.md", "report.html", "results.json"):
            assert (student_folder(out, student) / name).stat().st_size > 0, (student, name)
    assert "isolation: full" in proc.stderr
    assert re.search(r"\d+ students: mean \d+(\.\d)?/94, median \d+(\.\d)?,", proc.stdout), proc.stdout
    assert "ada-book" in proc.stdout  # the summary table


def test_grades_csv_contract(graded):
    _, out = graded
    with open(out / "grades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
        header = rows and list(rows[0].keys())
    assert header == ["student", "score", "max_score", *PARTS]
    assert [r["student"] for r in rows] == sorted(EXPECTED)
    for row in rows:
        assert float(row["max_score"]) == sum(MAX.values())
        assert float(row["score"]) == pytest.approx(sum(float(row[p]) for p in PARTS))


def test_each_part_scores_as_a_careful_grader_would(graded):
    _, out = graded
    wrong = part_mismatches(out, EXPECTED)
    assert not wrong, "\n".join(wrong)


def test_report_json_contract(graded):
    _, out = graded
    known = set(catalogue(BACKPROP.exercises))
    for student in EXPECTED:
        data = report(out, student)
        assert data["student"] == student
        assert set(data["parts"]) == set(PARTS)
        assert data["score"] == pytest.approx(sum(p["score"] for p in data["parts"].values()))
        for test in data["tests"]:
            assert set(test) == {"name", "part", "score", "max_score", "status", "feedback",
                                 "misconception", "instructor"}
            assert test["status"] in ("passed", "failed", "error", "timeout")
            assert test["misconception"] is None or test["misconception"] in known
            assert test["score"] in (0, test["max_score"])
            assert (test["status"] == "passed") == (test["score"] == test["max_score"])


@pytest.mark.parametrize("student, part, misconception", [
    ("seed-000", "AddLayer", "duplicate-class"),
    ("seed-000", "Relu", "relu-derivative-x"),
    ("seed-000", "Affine", "dx-with-dW-formula"),
    ("seed-000", "SoftmaxWithLoss", "undefined-attribute"),
    ("seed-000", "SoftmaxWithLoss", "undefined-name"),
    ("seed-003-log", "SoftmaxWithLoss", "log-not-called"),
    ("seed-004-dw", "Affine", "dW-wrong-operands"),
    ("seed-002-sigmoid", "Sigmoid", "sigmoid-derivative-missing"),
    ("syntax-error", "Sigmoid", "syntax-error"),
    ("missing-class", "Affine", "missing-class"),
    ("batch-forgot", "SoftmaxWithLoss", "missing-batch-division"),
    ("db-mean", "Affine", "db-mean"),
    ("wrong-shapes", "Affine", "db-keepdims"),
    ("no-transpose", "Affine", "dx-untransposed-W"),
    ("swapped-mul", "MulLayer", "swapped-mul-gradients"),
    ("forward-order", "TwoLayerNet", "layers-forward-order"),
    ("one-hot-only", "SoftmaxWithLoss", "one-hot-only"),
])
def test_seed_and_typical_mistakes_are_named(graded, student, part, misconception):
    _, out = graded
    named = {t["misconception"] for t in report(out, student)["tests"] if t["part"] == part}
    assert misconception in named, named


def test_broken_files_are_reported_clearly(graded):
    _, out = graded
    loop = report(out, "infinite-loop")
    assert {t["status"] for t in loop["tests"] if t["name"].startswith("Sigmoid: dx")} == {"timeout"}
    exited = [t for t in report(out, "os-exit")["tests"] if t["name"].startswith("AddLayer: dx")]
    assert exited and all(t["status"] == "error" and "ended the worker" in t["feedback"] for t in exited)
    nan = [t for t in report(out, "nan-output")["tests"] if t["name"].startswith("Sigmoid: dx")]
    assert all("NaN" in t["feedback"] for t in nan)
    shapes = [t for t in report(out, "wrong-shapes")["tests"] if t["name"].startswith("Affine: db")]
    assert all(re.search(r"shape \(1, \d+\), expected \(\d+,\)", t["feedback"]) for t in shapes)
    assert any("layers.py is empty" in n for n in report(out, "empty-files")["notes"])
    raised = [t for t in report(out, "exception-backward")["tests"] if t["name"].startswith("Relu: dx")]
    assert all(re.search(r"layers\.py, line \d+, in backward", t["feedback"]) for t in raised)
    loud = report(out, "prints-a-lot")
    assert loud["score"] == loud["max_score"] and loud["output"]


def test_a_duplicated_class_is_one_card_and_fix_first_leads(graded):
    """seed-000 (MulLayer defined twice, SoftmaxWithLoss reading self.x): 39 failed checks, a
    handful of causes; the first thing in the report is what to fix first."""
    _, out = graded
    md = (student_folder(out, "seed-000") / "report.md").read_text()
    cards = re.findall(r"^### \d+\. .*$", md, re.M)
    failed = sum(t["status"] != "passed" for t in report(out, "seed-000")["tests"])
    assert failed > 30 and len(cards) <= 8, cards
    assert any(re.search(r"AddLayer: all \d+ checks fail for one reason", c) for c in cards), cards
    assert md.index("## Fix first: ") < md.index("## About your submission") < md.index("## What to fix")
    assert "SoftmaxWithLoss, TwoLayerNet" in md[:md.index("## About your submission")]


def test_the_class_report_points_the_lecture_at_mistakes_and_students(graded):
    _, out = graded
    md = (out / "class.md").read_text()
    lecture = md[md.index("## For the lecture: known mistakes by part"):md.index("## Score distribution")]
    for student in EXPECTED:
        for t in report(out, student)["tests"]:
            if t["misconception"]:
                part = lecture[lecture.index(f"### {t['part']}\n"):]
                part = part[:part.find("\n### ", 1) if "\n### " in part[1:] else len(part)]
                row = next(x for x in part.splitlines() if x.startswith(f"| **{t['misconception']}**"))
                assert f"[{student}](./{student}/report.html)" in row.replace("\\-", "-"), (student, row)
    assert "## For the lecture: most often failed" in md


def test_feedback_never_shows_solution_or_hidden_test_code(graded):
    _, out = graded
    leaked = leaks(out, EXPECTED, CLASS, BACKPROP)
    assert not leaked, leaked[:3]


def test_same_submission_same_score(graded, tmp_path):
    _, out = graded
    again = tmp_path / "again"
    subprocess.run([*GRADER, "grade", str(CLASS), "--out", str(again), "--jobs", "1"],
                   check=True, capture_output=True, timeout=600)
    assert (again / "grades.csv").read_bytes() == (out / "grades.csv").read_bytes()


def test_grade_help_shows_an_example():
    proc = subprocess.run([*GRADER, "grade", "--help"], capture_output=True, text=True, check=True)
    assert "Example:" in proc.stdout and "grader grade examples/class --out reports" in proc.stdout


def test_a_missing_submissions_folder_is_a_clear_error(tmp_path):
    proc = subprocess.run([*GRADER, "grade", str(tmp_path / "nope"), "--out", str(tmp_path / "r")],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "does not exist" in proc.stderr
