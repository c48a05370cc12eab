"""Gradebook exports for Canvas and Moodle: the roster maps hand-in ids to the LMS's people."""
from __future__ import annotations

import csv
import io

import pytest
from click.testing import CliRunner

from grader.cli import main
from grader.integrations import lms
from grader.reports import write_grades_csv
from grader.results import StudentResult, TestResult

pytestmark = pytest.mark.fast

CANVAS_ROSTER = """Student,ID,SIS User ID,SIS Login ID,Section,handin
"Lovelace, Ada",101,s1,ada,A,ada
"Turing, Alan",102,s2,alan,A,alan
"=HYPERLINK(""x""),Mal",103,s3,mal,B,mallory
"""


def _graded(tmp_path, scores: dict[str, float], top: float = 10.0):
    results = [StudentResult(s, [TestResult("t", "part", v, top, "passed" if v == top else "failed")])
               for s, v in scores.items()]
    write_grades_csv(results, ["part"], tmp_path / "grades.csv")
    return tmp_path


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_canvas_maps_roster_to_scores_with_points_possible(tmp_path):
    reports = _graded(tmp_path, {"ada": 10.0, "alan": 7.5, "stranger": 3.0})
    (tmp_path / "roster.csv").write_text(CANVAS_ROSTER)
    run = CliRunner().invoke(main, ["export", str(reports), "--lms", "canvas", "--roster",
                                    str(tmp_path / "roster.csv"), "--key", "handin", "--column", "Ch5 backprop"])
    assert run.exit_code == 0, run.output
    rows = _rows((reports / "canvas.csv").read_text())
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Ch5 backprop"]
    assert rows[1][0].strip() == "Points Possible" and rows[1][-1] == "10"
    assert rows[2] == ["Lovelace, Ada", "101", "s1", "ada", "A", "10"]
    assert rows[3][-1] == "7.5"
    # no hand-in: empty cell (the LMS leaves it alone); a formula in a name is text
    assert rows[4][0].startswith("'=") and rows[4][-1] == ""
    assert "mallory" in run.output and "stranger" in run.output


def test_moodle_uses_the_identity_column(tmp_path):
    reports = _graded(tmp_path, {"u1": 4.0})
    (tmp_path / "r.csv").write_text("Username,Email address,student\nbob,bob@uni.edu,u1\n")
    run = CliRunner().invoke(main, ["export", str(reports), "--lms", "moodle", "--roster", str(tmp_path / "r.csv"),
                                    "--column", "A1"])
    assert run.exit_code == 0, run.output
    assert _rows((reports / "moodle.csv").read_text()) == [["Email address", "A1"], ["bob@uni.edu", "4"]]


@pytest.mark.parametrize("roster, says", [
    ("name,email\nx,y\n", "no column 'student'"),
    ("student,Username\na,b\na,c\n", "row 3 repeats the id 'a' of row 2"),
])
def test_bad_roster_refuses_naming_file_and_row(tmp_path, roster, says):
    reports = _graded(tmp_path, {"a": 1.0})
    (tmp_path / "r.csv").write_text(roster)
    run = CliRunner().invoke(main, ["export", str(reports), "--lms", "moodle", "--roster", str(tmp_path / "r.csv"),
                                    "--column", "A1"])
    assert run.exit_code != 0 and says in run.output and "r.csv" in run.output


def test_moodle_without_identity_column_refuses():
    with pytest.raises(lms.RosterError, match="Email address"):
        lms.export("moodle", [{"student": "a", "Name": "x"}], "student", {"a": "1"}, "A1", "1")


def test_ungraded_folder_refuses(tmp_path):
    (tmp_path / "r.csv").write_text("student,Username\na,b\n")
    run = CliRunner().invoke(main, ["export", str(tmp_path), "--lms", "moodle",
                                    "--roster", str(tmp_path / "r.csv")])
    assert run.exit_code != 0 and "grades.csv" in run.output
