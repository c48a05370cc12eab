"""The course: settings validated when loaded, found the same way by every command,
and commands that tell the truth with their exit codes.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import COURSE, REPO, SOLUTIONS

from grader import course
from grader.assignment import Assignment, AssignmentError
from grader.cli.common import CANNOT_GRADE, GRADER_FAILURES, USAGE
from grader.reports import student_folder

CLASS = REPO / "examples" / "class"
README = (REPO / "README.md").read_text(encoding="utf-8")


# --- settings --------------------------------------------------------------------------------
@pytest.mark.parametrize("text, said", [
    ('sandbox = "requierd"', "sandbox: invalid enum value 'requierd' (one of: auto, required, off)"),
    ("seed = -5", "seed: expected `int` >= 0, got -5"),
    ("limits = 5", "limits: expected `object`, got `int`"),
    ("[limits]\nmemory_mb = 0", "limits.memory_mb: expected `int` >= 1, got 0"),
    ("[limits]\nmemroy_mb = 512", "unknown [limits] key `memroy_mb`"),
    ('solutions = "elsewhere"', "unknown key `solutions`"),
    ("seed = 1\nseed = 2", "not valid TOML"),
])
def test_a_bad_setting_is_an_error_naming_the_key(text, said):
    with pytest.raises(course.CourseError) as raised:
        course.parse_settings(text, "my/course.toml")
    assert str(raised.value).startswith("my/course.toml: ") and said in str(raised.value)


def test_settings_read_every_key():
    got = course.parse_settings('seed = "0xff"\nsandbox = "off"\nassignment = "a1"\n'
                                '[limits]\ncall_seconds = 2.5\n')
    assert (got.seed, got.sandbox, got.assignment, got.limits.call_seconds, got.limits.memory_mb) == \
        (255, "off", "a1", 2.5, 1024)
    assert course.Settings().public_seed and got.public_seed, "the default, and 8 bits, are no secret"
    assert not course.parse_settings(f'seed = "{"5f" * 16}"').public_seed


# --- finding the course ------------------------------------------------------------------------
def test_the_course_is_found_from_the_working_directory(tmp_path):
    (tmp_path / "solutions").mkdir()
    shutil.copytree(SOLUTIONS, tmp_path / "solutions" / "hw1")
    (tmp_path / "course.toml").write_text("seed = 7\n")
    (tmp_path / "deep" / "er").mkdir(parents=True)
    found = course.find(cwd=tmp_path / "deep" / "er")
    assert found.root == tmp_path.resolve() and found.names() == ["hw1"] and found.settings.seed == 7
    assert found.assignment().name == "hw1"
    assert found.release_dir("hw1") == tmp_path.resolve() / "assignments" / "hw1"
    assert set(found.secrets()) == {tmp_path.resolve() / "solutions", tmp_path.resolve() / "course.toml"}


def test_the_assignment_is_recognized_from_files_notebooks_and_nbgrader_folders(tmp_path):
    """With several assignments and none named: a student's files, the files a notebook's cells
    belong to (whatever it is called), or nbgrader's submitted/<student>/<id>/<notebook>."""
    from grader.authoring import notebook

    repo = course.find(REPO)
    assert len(repo.names()) >= 2
    for name in ("backprop", "deltarule"):
        a = repo.assignment(name)
        (tmp_path / name / "files" / "ann").mkdir(parents=True)
        for f in a.files:
            (tmp_path / name / "files" / "ann" / f).write_text("")
        (tmp_path / name / "loose").mkdir()
        (tmp_path / name / "loose" / "bob.ipynb").write_text(notebook.dumps(notebook.student_notebook(a)))
        (tmp_path / name / "nbgrader" / "cy" / name).mkdir(parents=True)
        shutil.copy(tmp_path / name / "loose" / "bob.ipynb",
                    tmp_path / name / "nbgrader" / "cy" / name / a.notebook)
        for layout in ("files", "loose", "nbgrader"):
            assert repo.recognize(tmp_path / name / layout) == name, (name, layout)
            assert repo.assignment(handins=tmp_path / name / layout).name == name
    shutil.copytree(tmp_path / "backprop" / "files" / "ann", tmp_path / "deltarule" / "files" / "dan")
    assert repo.recognize(tmp_path / "deltarule" / "files") is None  # two assignments' files: ask
    with pytest.raises(course.CourseError, match="name one with --assignment"):
        repo.assignment(handins=tmp_path / "deltarule" / "files")
    (tmp_path / "empty").mkdir()
    with pytest.raises(course.CourseError, match="no students found .* the folder is empty"):
        repo.assignment(handins=tmp_path / "empty")


def test_without_a_course_the_bundled_one_is_used_read_only(tmp_path, monkeypatch):
    monkeypatch.delenv(course.ENV, raising=False)
    found = course.find(cwd=tmp_path)
    assert found.root is None and "backprop" in found.names()
    with pytest.raises(course.CourseError, match="read-only"):
        found.release_dir("backprop")


def test_an_unknown_assignment_is_named_with_the_known_ones():
    with pytest.raises(course.CourseError, match=r"no assignment 'hw9'.*there: backprop"):
        course.find(REPO).assignment("hw9")


def test_a_bad_manifest_names_the_file(tmp_path):
    shutil.copytree(SOLUTIONS, tmp_path / "a")
    (tmp_path / "a" / "assignment.toml").write_text('title = "x"\nfiles = ["nothere.py"]\n')
    with pytest.raises(AssignmentError, match=r"assignment.toml: nothere.py not found"):
        Assignment.load(tmp_path / "a")
    (tmp_path / "a" / "assignment.toml").write_text('title = "x"\nfiles = ["layers.py"]\ncolour = 1\n')
    with pytest.raises(AssignmentError, match="colour"):
        Assignment.load(tmp_path / "a")


# --- the command line ------------------------------------------------------------------------
def grader(*args, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=600, env=env)


def test_exit_codes_are_documented():
    done = grader("grade", "--help", cwd=REPO)
    assert "Exit codes: 0 every student graded; 2 bad usage or configuration; 3" in " ".join(done.stdout.split())


def test_no_students_is_an_error_with_a_hint(tmp_path):
    (tmp_path / "empty").mkdir()
    done = grader("grade", tmp_path / "empty", "--out", tmp_path / "r", "--assignment", "backprop", cwd=REPO)
    assert done.returncode == USAGE and "no students found" in done.stderr and "is empty" in done.stderr
    done = grader("grade", tmp_path / "empty", "--out", tmp_path / "r", cwd=REPO)  # no assignment to recognize
    assert done.returncode == USAGE and "no students found" in done.stderr and "is empty" in done.stderr
    one = CLASS / "ada-book"  # one student's folder, passed by mistake
    done = grader("grade", one, "--out", tmp_path / "r", cwd=REPO)
    assert done.returncode == USAGE and "looks like ONE student's folder" in done.stderr
    assert not (tmp_path / "r").exists()


def test_a_bad_course_toml_stops_before_grading(tmp_path):
    (tmp_path / "course.toml").write_text('sandbox = "requierd"\n')
    done = grader("grade", CLASS, "--out", tmp_path / "r", cwd=tmp_path)
    assert done.returncode == USAGE and "course.toml: sandbox: invalid enum value" in done.stderr


def test_init_makes_a_course_with_a_private_seed(tmp_path):
    done = grader("init", tmp_path / "c", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    settings = course.load_settings(tmp_path / "c" / "course.toml")
    assert not settings.public_seed and settings.seed.bit_length() > 64
    assert (tmp_path / "c" / "assignments" / "backprop" / "layers.py").is_file()
    assert not (tmp_path / "c" / "assignments" / "backprop" / "hidden").exists()
    again = grader("init", tmp_path / "c", cwd=tmp_path)
    assert again.returncode == USAGE and "already exists" in again.stderr


def test_init_writes_a_random_private_seed_and_the_public_one_warns(tmp_path):
    for name in ("a", "b"):
        assert grader("init", tmp_path / name, cwd=tmp_path).returncode == 0
    seeds = [course.load_settings(tmp_path / name / "course.toml").seed for name in ("a", "b")]
    assert seeds[0] != seeds[1] and all(s.bit_length() > 96 for s in seeds), "128 random bits each"
    assert all(s.hex() not in README for s in map(lambda n: n.to_bytes(16, "big"), seeds))
    assert oct((tmp_path / "a" / "course.toml").stat().st_mode & 0o777) == oct(0o600), "readable by its owner only"
    shutil.copytree(CLASS / "db-mean", tmp_path / "class" / "db-mean")
    public = grader("grade", tmp_path / "class", "--out", tmp_path / "r1", cwd=tmp_path)  # the bundled course
    private = grader("grade", tmp_path / "class", "--out", tmp_path / "r2", cwd=tmp_path / "a")
    assert public.returncode == private.returncode == 0, public.stderr + private.stderr
    assert "warning: grading with a public or guessable seed" in " ".join(public.stderr.split())
    assert "seed" not in private.stderr, private.stderr
    (tmp_path / "a" / "course.toml").write_text("seed = 4242\n")  # short: found by trying them all
    assert course.load_settings(tmp_path / "a" / "course.toml").public_seed


def test_new_scaffolds_an_assignment_from_a_reference(tmp_path):
    assert grader("init", tmp_path / "c", cwd=tmp_path).returncode == 0
    draft = tmp_path / "draft"
    draft.mkdir()
    (draft / "gate.py").write_text("class Gate:\n    def backward(self, dout):\n"
                                   "        ### BEGIN SOLUTION\n        return dout\n        ### END SOLUTION\n")
    done = grader("new", "gates", "--from", draft, cwd=tmp_path / "c")
    assert done.returncode == 0, done.stderr
    made = Assignment.load(tmp_path / "c" / "solutions" / "gates")
    assert made.files == ("gate.py",) and made.exercises == []
    release = grader("release", "gates", cwd=tmp_path / "c")
    assert release.returncode == 0, release.stderr
    assert "raise NotImplementedError()" in (tmp_path / "c" / "assignments" / "gates" / "gate.py").read_text()


@pytest.mark.sandbox
def test_the_canary_refuses_a_machine_that_cannot_grade(tmp_path):
    """Break the sandbox on purpose (no room for Python and numpy): nobody is graded, exit 4."""
    (tmp_path / "course.toml").write_text("[limits]\nmemory_mb = 24\n")
    done = grader("grade", CLASS, "--out", tmp_path / "r", cwd=tmp_path)
    assert done.returncode == CANNOT_GRADE, done.stderr
    assert "nobody was graded" in done.stderr and "canary FAILED" in done.stderr
    assert not (tmp_path / "r" / "ada-book").exists()
    doctor = grader("doctor", cwd=tmp_path)
    assert doctor.returncode == CANNOT_GRADE and "isolation: full" not in doctor.stdout, doctor.stdout


@pytest.mark.sandbox
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: only then does the submission run as another uid")
def test_the_canary_names_a_python_the_sandbox_uid_cannot_read(tmp_path):
    """A venv of mode 0700 (made under umask 077): the sandbox uid cannot run it; the canary says
    which folder and how to fix it."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    venv.chmod(0o700)
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "grader", "grade", str(CLASS), "--out",
                           str(tmp_path / "r")], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == CANNOT_GRADE, done.stderr
    assert f"cannot reach {venv}" in done.stderr and "chmod o+x" in done.stderr, done.stderr


@pytest.mark.sandbox
def test_doctor_says_full_only_after_the_canary(tmp_path):
    done = grader("doctor", cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    canary = next(i for i, line in enumerate(lines) if "canary: the reference solution scored" in line)
    full = [i for i, line in enumerate(lines) if line.startswith("isolation: full")]
    assert all(i > canary for i in full)
    for name in COURSE.names():  # every assignment of the course is proven
        assert f"{name}: canary: the reference solution scored full marks" in done.stdout, done.stdout


FRAGILE = """import numpy as np
import pytest


@pytest.mark.graded(part="Affine", points=1)
def test_fragile(student, rng):
    x, W, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 2)), rng.standard_normal(2)
    layer = student.layers.Affine(W, b)
    layer.forward(x)
    layer.backward(np.ones((4, 2)))
    {"sum": 1}["sum" if np.allclose(layer.db, 4.0) else "mean"]  # a hidden-test bug: KeyError
"""


@pytest.mark.sandbox
def test_grader_failures_are_listed_with_their_own_exit_code(tmp_path):
    """A hidden-test bug that hits some students only: the batch completes, they are listed,
    exit 3, and --resume regrades exactly them."""
    shutil.copytree(SOLUTIONS, tmp_path / "solutions" / "backprop")
    (tmp_path / "solutions" / "backprop" / "hidden" / "test_fragile.py").write_text(FRAGILE)
    for student in ("ada-book", "db-mean"):
        shutil.copytree(CLASS / student, tmp_path / "class" / student)
    done = grader("grade", tmp_path / "class", "--out", tmp_path / "r", cwd=tmp_path)
    assert done.returncode == GRADER_FAILURES, done.stderr
    assert "failed on 1 student(s): db-mean" in " ".join(done.stderr.split())
    log = (tmp_path / "r" / "grader-errors.log").read_text()
    assert "db-mean" in log and "KeyError" in log and "ada-book" not in log


@pytest.mark.sandbox
def test_sandbox_required_is_decided_by_the_canary(tmp_path):
    """Without bubblewrap (simulated), `--sandbox required` grades nobody (exit 4); `auto`
    grades with reduced isolation and says so in every report."""
    shutil.copytree(CLASS / "db-mean", tmp_path / "class" / "db-mean")
    env = {**os.environ, "GRADER_BWRAP": str(tmp_path / "no-bwrap")}
    required = grader("grade", tmp_path / "class", "--out", tmp_path / "r1", "--sandbox", "required", cwd=REPO,
                      env=env)
    assert required.returncode == CANNOT_GRADE and "full isolation required" in required.stderr, required.stderr
    assert not student_folder(tmp_path / "r1", "db-mean").exists()
    auto = grader("grade", tmp_path / "class", "--out", tmp_path / "r2", cwd=REPO, env=env)
    assert auto.returncode == 0, auto.stderr
    page = (student_folder(tmp_path / "r2", "db-mean") / "report.md").read_text()
    assert "isolation: reduced (bubblewrap not found" in page
