"""Hostile hand-ins, round two: their *shape* attacks the grader's own process.

Staging runs in the grader's process (and in nbgrader's), so a hand-in that stalls the
parser, blocks an ``open``, recurses once per folder level or is notebook JSON of the
wrong shape stalls or fails the whole batch. Here each one is graded for real and must
cost the grader a bounded time, be the student's own note (never a grader failure), and
leave every other student graded. Ids and names are anyone's: they must not inject into
grades.csv, the terminal or Markdown, nor clash with the class's own files, and
``--resume`` takes a student's id from their folder, never from report.json.

The builders are in ``tests/hostile/handins.py``.

How these were shown to fail (on the code before this suite): staging the stalling
notebook ran past its 60 s timeout (quadratic backtracking), and so did the 30 MiB
notebook of class cells (each cell parsed once per exercise); the FIFO kept ``grader
grade`` waiting past its timeout; the folder chain, the malformed notebooks and the
forged replies (tests/test_hostile.py) were grader failures (RecursionError, TypeError);
grades.csv held ``+SUM(1)``, ``-2+3`` and ``@SUM(A1)`` raw; the terminal got the ESC and CSI
bytes of the names; class.md linked ``www.example.com``; a folder named ``grades.csv``
stopped grades.csv from being written; ``--resume`` put the id from a report.json into
grades.csv.
"""
from __future__ import annotations

import csv
import json
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import BACKPROP, FULL, GRADER, REPO, make_grading
from hostile import handins as H

from grader.batch import grade_class
from grader.reports import student_folder
from grader.sandbox import Limits

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

COURSE = make_grading(limits=Limits(call_seconds=2.0))
STAGE = """
import sys, time
from pathlib import Path
from grader.course import find
from grader.intake import Submission, stage
assignment = find().assignment("backprop")
started = time.monotonic()
staged = stage(Submission.of(Path(sys.argv[1])), Path(sys.argv[2]), assignment)
print(round(time.monotonic() - started, 2), len(staged.notes))
"""


def _stage_in_a_process(handin: Path, target: Path, seconds: float) -> float:
    """Stage ``handin`` as grading does, in a process of its own: stalling the test process
    itself would show nothing. Returns the seconds staging took; fails past ``seconds``."""
    try:
        done = subprocess.run([sys.executable, "-c", STAGE, str(handin), str(target)], cwd=REPO,
                              capture_output=True, text=True, timeout=seconds)
    except subprocess.TimeoutExpired:
        pytest.fail(f"staging {handin.name} took more than {seconds:g} s: it stalls the batch")
    assert done.returncode == 0, done.stderr[-2000:]
    return float(done.stdout.split()[0])


def report(out: Path, student: str) -> dict:
    return json.loads((student_folder(out, student) / "report.json").read_text(encoding="utf-8"))


# --- 1. stalling the batch through staging ------------------------------------------------
def test_a_notebook_that_makes_a_pattern_backtrack_is_staged_in_linear_time(tmp_path):
    root = tmp_path / "class"
    root.mkdir()
    student = H.stalling_notebook(root, spaces=1_000_000)
    _stage_in_a_process(root / f"{student}.ipynb", tmp_path / "staged", 60)


def test_a_huge_notebook_of_class_cells_costs_a_bounded_parse(tmp_path):
    root = tmp_path / "class"
    root.mkdir()
    student = H.class_cells_notebook(root, megabytes=30)
    _stage_in_a_process(root / f"{student}.ipynb", tmp_path / "staged", 60)


# --- 2. special files ----------------------------------------------------------------------
def _limit_memory() -> None:  # a device read without end would take the machine with it
    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))


def test_fifos_and_devices_are_skipped_never_opened(tmp_path):
    root, out = tmp_path / "class", tmp_path / "reports"
    H.write(root / "honest")
    made = H.special_files(root)
    started = time.monotonic()
    try:
        done = subprocess.run([*GRADER, "grade", str(root), "--out", str(out), "--jobs", "1"],
                              capture_output=True, text=True, timeout=240, preexec_fn=_limit_memory)
    except subprocess.TimeoutExpired:
        pytest.fail("the batch never ended: a special file was opened and blocked it")
    assert done.returncode == 0, done.stderr[-2000:]
    said = " ".join(done.stderr.split())
    assert "fifo.ipynb: a FIFO (named pipe), not a regular file" in said, done.stderr
    if "zero.ipynb" in made:  # made only as root (CAP_MKNOD)
        assert "zero.ipynb: a character device, not a regular file" in said, done.stderr
    assert report(out, "honest")["score"] == FULL
    assert time.monotonic() - started < 240


# --- 7. a hand-in's errors charged to the student ------------------------------------------
@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """One class: an honest student, a folder chain 1,200 deep, notebooks of the wrong shape."""
    base = tmp_path_factory.mktemp("shapes")
    root, out = base / "class", base / "reports"
    H.write(root / "honest")
    deep = H.deep_chain(root)
    malformed = H.malformed_notebooks(root)
    batch = grade_class(root, out, COURSE, jobs=2)
    yield batch, out, deep, malformed
    H.remove_deep(root / deep)


def test_no_shape_of_hand_in_is_a_grader_failure(shapes):
    batch, out, deep, malformed = shapes
    assert batch.grader_errors == 0, [(r.student, r.grader_errors) for r in batch.results if r.grader_errors]
    assert sorted(r.student for r in batch.results) == sorted(["honest", deep, *malformed])
    assert report(out, "honest")["score"] == FULL


def test_a_folder_chain_too_deep_to_walk_is_the_students_note(shapes):
    _, out, deep, _ = shapes
    got = report(out, deep)
    assert "two_layer_net.py is missing." in got["notes"], got["notes"]
    assert any("levels deep" in n for n in got["notes"]), got["notes"]
    full = {e.part: float(e.max_points) for e in BACKPROP.exercises}
    assert got["parts"]["Affine"]["score"] == full["Affine"], "the files at the top are graded"


@pytest.mark.parametrize("student", sorted(H.MALFORMED))
def test_a_malformed_notebook_is_a_note_naming_it(shapes, student):
    _, out, _, _ = shapes
    got = report(out, student)
    assert got["score"] == 0
    assert any(n.startswith(f"{student}.ipynb is not") and n.endswith("Nothing could be graded.")
               for n in got["notes"]), got["notes"]


# --- 3. injection ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def injected(tmp_path_factory):
    base = tmp_path_factory.mktemp("injection")
    root, out = base / "class", base / "reports"
    H.injecting_names(root)
    done = subprocess.run([*GRADER, "grade", str(root), "--out", str(out), "--jobs", "2"],
                          capture_output=True, timeout=300)
    return done, out


def test_grades_csv_holds_no_formula(injected):
    done, out = injected
    assert done.returncode == 0, done.stderr[-2000:]
    with open(out / "grades.csv", newline="", encoding="utf-8") as fh:
        cells = [cell for row in csv.reader(fh) for cell in row]
    formulas = [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert formulas == [], f"cells a spreadsheet would run: {formulas}"
    said = done.stderr.decode()
    for name in H.FORMULA_IDS:
        assert f"{name}: a student id starts with a letter" in " ".join(said.split()), said


def test_names_reach_the_terminal_as_text(injected):
    done, _ = injected
    assert done.returncode == 0, done.stderr[-2000:]
    both = done.stdout + done.stderr
    assert b"\x1b" not in both and "\u009b".encode() not in both and "\u202e".encode() not in both, both[-2000:]
    said = " ".join(done.stderr.decode().split())
    for shown in ("\\x1b[31mred\\x1b[0m", "\\x1b]0;owned\\x07title", "\\x9b31mcsi", "[bold red]markup",
                  "[link=x]y", "\\u202eright-to-left"):
        assert f"{shown}: a student id starts with" in said, (shown, said)


def test_ids_do_not_become_links_in_markdown(injected):
    _, out = injected
    text = re.sub(r"\]\([^)]*\)", "]", (out / "class.md").read_text(encoding="utf-8"))  # link targets: ours
    for student in H.LINK_IDS:
        assert report(out, student)["score"] == FULL
        assert student not in text, f"{student} is written raw: GitHub's Markdown links it"
    assert "www\\.example.com" in text and "alice\\@example.com" in text


# --- 4. name clashes and resume ----------------------------------------------------------
def test_students_named_like_class_files_clash_with_nothing(tmp_path):
    root, out = tmp_path / "class", tmp_path / "reports"
    H.clashing_names(root)
    grade_class(root, out, COURSE, jobs=2)
    for name in ("grades.csv", "class.html", "class.md"):
        assert (out / name).is_file(), f"{name} was not written"
    with open(out / "grades.csv", newline="", encoding="utf-8") as fh:
        rows = {row["student"]: float(row["score"]) for row in csv.DictReader(fh)}
    assert rows == {name: FULL for name in H.CLASHING}


def test_resume_takes_the_id_from_the_folder_never_from_report_json(tmp_path):
    """Long ids of 2-byte letters that differ only in the middle, and output that escaping
    inflates: a report cut to its size cap once cut these ids to the same text; and a
    report.json that names someone else."""
    root, out = tmp_path / "class", tmp_path / "reports"
    flood = "import sys\nsys.stdout.write('\\x01' * 70000)\n"
    students = ["é" * 49 + "x" + "é" * 49, "é" * 49 + "y" + "é" * 49, "plain"]
    for student in students:
        sources = dict(H.mutants.reference_sources())
        sources["layers.py"] += "\n" + flood
        H.write(root / student, sources)
    first = grade_class(root, out, COURSE, jobs=2)
    with open(out / "grades.csv", "rb") as fh:
        graded = fh.read()
    tampered = student_folder(out, "plain") / "report.json"
    tampered.write_text(tampered.read_text(encoding="utf-8").replace('"student": "plain"', '"student": "mallory"'),
                        encoding="utf-8")
    second = grade_class(root, out, COURSE, jobs=2, resume=True)
    assert second.resumed == 3 and first.grader_errors == 0
    assert sorted(r.student for r in second.results) == sorted(students)
    assert (out / "grades.csv").read_bytes() == graded
