"""The Gradescope autograder: the zip, unpacked into a folder laid out like Gradescope's
(source/, submission/, results/), and its run_autograder run there for real."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import BACKPROP, FULL, GRADER, REPO, SOLUTIONS, command

from grader.authoring import notebook

pytestmark = pytest.mark.sandbox
CLASS = REPO / "examples" / "class"


def autograder(tmp_path: Path, *build_args: str, cwd: Path = REPO, assignment: str = "backprop") -> Path:
    """/autograder laid out as Gradescope does, with our zip unpacked into source/."""
    root = tmp_path / "autograder"
    done = subprocess.run([*GRADER, "gradescope", "build", "--assignment", assignment, "--out",
                           str(tmp_path / "autograder.zip"), *build_args], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(tmp_path / "autograder.zip") as archive:
        archive.extractall(root / "source")
    for name in ("setup.sh", "run_autograder"):
        (root / "source" / name).chmod(0o755)
    (root / "submission").mkdir()
    (root / "results").mkdir()
    return root


def run_autograder(root: Path, grader: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "GRADER": grader or command("grader")[0]}
    return subprocess.run(["bash", str(root / "source" / "run_autograder")], cwd=root / "source", env=env,
                          capture_output=True, text=True, timeout=600)


def results(root: Path) -> dict:
    return json.loads((root / "results" / "results.json").read_text())


def test_the_zip_holds_what_gradescope_runs_and_no_student_file(tmp_path):
    root = autograder(tmp_path)
    source = root / "source"
    assert (source / "setup.sh").is_file() and (source / "run_autograder").is_file()
    assert (source / "grader-src" / "grader" / "cli" / "__init__.py").is_file()
    assert (source / "course" / "solutions" / "backprop" / "hidden" / "test_exercises.py").is_file()
    again = autograder(tmp_path / "again")
    assert (tmp_path / "autograder.zip").read_bytes() == (tmp_path / "again" / "autograder.zip").read_bytes()
    assert not (again / "source" / "assignments").exists()  # the release is not the autograder's business


def test_a_py_hand_in(tmp_path):
    root = autograder(tmp_path)
    for name in BACKPROP.files:
        shutil.copy(CLASS / "db-mean" / name, root / "submission" / name)
    done = run_autograder(root)
    assert done.returncode == 0, done.stderr
    data = results(root)
    assert data["score"] == FULL - 3 and data["visibility"] == "visible"
    assert all(t["visibility"] == "visible" for t in data["tests"])
    failed = [t for t in data["tests"] if t["status"] == "failed"]
    assert failed and all("db" in t["name"] for t in failed)
    assert "instructor" not in json.dumps(data)


def test_a_notebook_hand_in(tmp_path):
    root = autograder(tmp_path, "--visibility", "after_due_date")
    nb = notebook.source_notebook(BACKPROP)  # the reference, as a notebook
    (root / "submission" / BACKPROP.notebook).write_text(notebook.dumps(nb), encoding="utf-8")
    done = run_autograder(root)
    assert done.returncode == 0, done.stderr
    data = results(root)
    assert data["score"] == FULL and data["visibility"] == "after_due_date"
    assert {t["visibility"] for t in data["tests"]} == {"after_due_date"}
    assert "notebook" in data["output"]


def test_a_broken_hand_in_is_graded_not_crashed(tmp_path):
    root = autograder(tmp_path)
    (root / "submission" / "layers.py").write_text("class MulLayer(:\n")
    done = run_autograder(root)
    assert done.returncode == 0, done.stderr
    data = results(root)
    assert data["score"] == 0 and "layers.py" in data["output"] and "missing" in data["output"]


def test_an_autograder_that_cannot_grade_writes_nothing(tmp_path):
    course = tmp_path / "course"
    shutil.copytree(SOLUTIONS, course / "solutions" / "backprop")
    (course / "course.toml").write_text('[limits]\nmemory_mb = 24\n[gradescope]\nvisibility = "hidden"\n')
    root = autograder(tmp_path, cwd=course)
    assert 'visibility = "hidden"' in (root / "source" / "course" / "course.toml").read_text()
    for name in BACKPROP.files:
        shutil.copy(CLASS / "ada-book" / name, root / "submission" / name)
    done = run_autograder(root)
    assert done.returncode == 4 and "canary FAILED" in done.stderr
    assert not (root / "results" / "results.json").exists()


@pytest.mark.slow
def test_setup_sh_installs_a_grader_that_runs_the_autograder(tmp_path):
    """setup.sh as Gradescope runs it (its own venv, the grader installed from the zip); then
    run_autograder with that grader."""
    root = autograder(tmp_path)
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    done = subprocess.run(["bash", str(root / "source" / "setup.sh")], cwd=root / "source", env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "isolation: full" in done.stdout or os.geteuid() != 0
    for name in BACKPROP.files:
        shutil.copy(CLASS / "ada-book" / name, root / "submission" / name)
    ran = run_autograder(root, grader=str(root / "venv" / "bin" / "grader"))
    assert ran.returncode == 0, ran.stderr
    assert results(root)["score"] == FULL
