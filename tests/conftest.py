"""Shared helpers: the repository's course, submissions built from the reference with edits,
and grading them for real (the real sandbox, the real hidden tests run by pytest)."""
from __future__ import annotations

import json
import os
import sys
import sysconfig
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/mutants.py

import mutants  # noqa: E402

from grader import course, sandbox  # noqa: E402
from grader.course import Settings  # noqa: E402
from grader.grading import Grading  # noqa: E402
from grader.intake import Submission  # noqa: E402
from grader.results import StudentResult  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
COURSE = course.find(REPO)
BACKPROP = COURSE.assignment("backprop")
SOLUTIONS = BACKPROP.folder
RELEASE = REPO / "assignments" / "backprop"
DELTARULE = COURSE.assignment("deltarule")
CONVNET = COURSE.assignment("convnet")
FULL = BACKPROP.max_points  # a correct hand-in's score


def command(name: str) -> list[str]:
    """This interpreter's own console script ``name`` (never another install found on PATH)."""
    script = Path(sysconfig.get_path("scripts")) / name
    assert script.exists(), f"the `{name}` command is not installed beside {sys.executable} (pip install -e .)"
    return [str(script)]


GRADER = command("grader")
TIERS = ("sandbox", "nbgrader", "slow", "layouts")
TEST_PROCESSES = 2


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config):
    """The suite runs in two test processes (pytest-xdist), each file in one (its module
    fixtures built once): most tests wait on subprocesses - sandboxes, kernels, schedulers -
    so it takes half the time. ``-n 0`` runs it in one. Set here, for this suite only, and not
    in pyproject.toml's addopts, which ``pytest solutions/NAME/hidden --handin ...`` reads too."""
    if getattr(config.option, "numprocesses", 0) is None and "PYTEST_XDIST_WORKER" not in os.environ \
            and not config.option.collectonly:
        config.option.numprocesses = TEST_PROCESSES
        if config.option.dist == "no":
            config.option.dist = "loadfile"


def pytest_collection_modifyitems(config, items):
    """Tests that grade for real are ``sandbox``; every test of no slower tier is ``fast``
    (``pytest -m fast`` runs in seconds)."""
    for item in items:
        if {"grade", "grading"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.sandbox)
        if not any(item.get_closest_marker(tier) for tier in TIERS):
            item.add_marker(pytest.mark.fast)


def make_grading(assignment=None, **settings) -> Grading:
    """Grading with the repository's course, ``assignment`` (default backprop) and these settings."""
    return Grading(assignment or BACKPROP, Settings(**settings), COURSE.secrets())


def write_submission(folder: Path, edits=(), sources: dict[str, str] | None = None) -> Path:
    """The reference hand-in with ``(file, old, new)`` edits applied (each must hit once)."""
    sources = dict(sources or mutants.reference_sources())
    for name, old, new in edits:
        assert sources[name].count(old) == 1, f"{name}: {old!r} must occur exactly once"
        sources[name] = sources[name].replace(old, new)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in sources.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def grading() -> Grading:
    return make_grading()


@pytest.fixture
def grade(tmp_path, grading):
    """Grade a folder with the real sandbox and the real hidden tests."""
    def run(folder: Path, with_: Grading | None = None) -> StudentResult:
        staging = tmp_path / "staging"
        staging.mkdir(exist_ok=True)
        staging.chmod(0o755)
        return (with_ or grading).grade(Submission(folder.name, folder), staging, sandbox.WORKER_UID)

    return run


def execute_notebook(nb, folder: Path, timeout: int = 120, env: dict[str, str] | None = None):
    """Run every cell of ``nb`` in ``folder`` in a real Jupyter kernel of this interpreter, as a student
    does (a cell that raises does not stop the rest); return ``nb`` with its outputs. ``env``: the
    kernel's environment variables on top of this process's (e.g. nbgrader's autograde)."""
    from nbclient import NotebookClient

    NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(folder)}}).execute(env={**os.environ, **(env or {})})
    return nb


def solutions_of(source) -> dict[str, str]:
    """cell id -> its code, for the file cells of a source notebook (nbgrader's, with solutions):
    what a student who solved everything typed into the released notebook's cells."""
    return {c["id"]: "".join(c["source"]) for c in source["cells"] if "file" in c["metadata"].get("grader", {})}


def fill_in(nb, solutions: dict[str, str], edits=(), unsolved=()):
    """Fill ``nb``'s file cells (a released notebook, JSON or nbformat) with ``solutions``, each with
    the ``(old, new)`` edits applied; the cells of ``unsolved`` (ids) stay as released. Returns ``nb``."""
    for cell in nb["cells"]:
        if cell["id"] in solutions and cell["id"] not in unsolved:
            text = solutions[cell["id"]]
            for old, new in edits:
                text = text.replace(old, new)
            cell["source"] = text
    return nb


def part_scores(result: StudentResult) -> dict[str, float]:
    return {part: totals["score"] for part, totals in result.parts().items()}


def report_of(out: Path, student: str) -> dict:
    """A graded student's report.json (a notebook hand-in reports under its stem)."""
    from grader.reports import student_folder

    return json.loads((student_folder(out, student.removesuffix(".ipynb")) / "report.json").read_text())


def part_mismatches(out: Path, expected: dict) -> list[str]:
    """Where the reports' part scores differ from EXPECTED.json's "full" / "partial" / "zero"."""
    wrong = []
    for student, parts in expected.items():
        got = report_of(out, student)["parts"]
        for part, verdict in parts.items():
            verdict = verdict if isinstance(verdict, str) else verdict[0]
            score, maximum = got[part]["score"], got[part]["max_score"]
            actual = "full" if score == maximum else "zero" if score == 0 else "partial"
            if actual != verdict:
                wrong.append(f"{student} {part}: {actual} ({score}/{maximum}), expected {verdict}")
    return wrong


def leaks(out: Path, students, handins: Path, assignment) -> list:
    """Lines of the solution or of the hidden tests found in a student's reports (the lines
    of their own files aside: their tracebacks quote them)."""
    from grader.authoring import release
    from grader.reports import student_folder

    secret = set()
    for path in assignment.folder.glob("*.py"):
        secret |= release.solution_lines(path.read_text())
    for path in assignment.hidden.rglob("*.py"):
        for line in path.read_text().splitlines():
            code = line.strip()
            if len(code) > 20 and not code.startswith(('"', "'", "#", "from ", "import ")):
                secret.add(code)
    found = []
    for student in students:
        own = {line.strip() for f in (handins / student).glob("*.py") for line in f.read_text().splitlines()}
        for name in ("report.json", "report.md", "report.html", "results.json"):
            text = (student_folder(out, student.removesuffix(".ipynb")) / name).read_text()
            found += [(student, name, line) for line in secret - own if line in text]
    return found
