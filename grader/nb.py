"""The hidden cell's check, ``from grader.nb import check; check(PART, ASSIGNMENT)``, and its helpers.

nbgrader runs a grade cell in the student's own kernel, after the student's cells, so
nothing printed there can be trusted: a student cell may patch numpy, or replace
``check`` itself, and print any score. ``check`` therefore grades the notebook *file*
(its cells' code, never the kernel's state) in the grader's sandbox, and is only a
courtesy: with the course's ``nbgrader_config.py`` the score that counts comes from
``grader.integrations.nbgrader``, which grades outside the kernel and replaces this cell's
output. Either way the cell follows nbgrader's scoring rules: feedback on stdout only,
never stderr (it would zero the cell), and a plain ``float`` as the last output,
clamped to the cell's points (a numpy scalar's repr would count as full credit).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

from grader.intake.notebook import Extracted, safe_extract
from grader.results import StudentResult, points

_graded: dict[str, StudentResult] = {}  # notebook digest -> result, for the other grade cells


def check(part: str, assignment: str | None = None) -> float:
    """Print ``part``'s feedback for the notebook being graded; return its score."""
    out = sys.stdout
    try:
        with _quiet():
            text, score = _check(part, assignment)
    except BaseException as exc:  # noqa: B036 - a timeout's KeyboardInterrupt too: never a traceback
        text, score = (f"{part}: the checks could not run in this notebook ({type(exc).__name__}). "
                       "It scores 0 here; your instructor's grading decides."), 0.0
    with contextlib.suppress(BaseException):
        print(text, file=out, flush=True)
    return float(score)


@contextlib.contextmanager
def _quiet():
    """Nothing reaches stderr while grading: nbgrader would zero the cell."""
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _check(part: str, name: str | None) -> tuple[str, float]:
    from grader import course
    from grader.grading import Grading

    found = course.find(config=Path(os.environ["GRADER_CONFIG"]) if os.environ.get("GRADER_CONFIG") else None)
    grading = Grading.of(found, name)
    path = notebook_path(grading.assignment.notebook)
    if path is None:
        return (f"{part}: no notebook found in {Path.cwd()} to grade; this cell scores 0 here.", 0.0)
    data = path.read_bytes()
    key = hashlib.sha256(data).hexdigest()
    if key not in _graded:
        _graded[key] = grade_notebook(data, _student(), grading)
    result = _graded[key]
    return (feedback(result, part, located(data, grading.assignment), grading.assignment.parts[0]),
            cell_score(result, part, None))


def located(data: bytes, assignment) -> Extracted | None:
    """Where each extracted line came from, for feedback (None if the notebook does not parse)."""
    import json

    try:
        nb = json.loads(data.decode("utf-8-sig"))
    except Exception:  # noqa: BLE001 - the student's notebook: not even JSON
        return None
    return safe_extract(nb, assignment) if isinstance(nb, dict) else None


def notebook_path(preferred: str) -> Path | None:
    """The notebook being run: ``$GRADER_NOTEBOOK``, else the only (or the assignment's) notebook in cwd."""
    if os.environ.get("GRADER_NOTEBOOK"):
        return Path(os.environ["GRADER_NOTEBOOK"])
    here = sorted(Path.cwd().glob("*.ipynb"))
    if len(here) == 1:
        return here[0]
    if (Path.cwd() / preferred).is_file():
        return Path.cwd() / preferred
    session = os.environ.get("JPY_SESSION_NAME", "")  # set by Jupyter servers
    return Path(session) if session.endswith(".ipynb") and Path(session).is_file() else None


def _student() -> str:
    if os.environ.get("NBGRADER_EXECUTION"):  # cwd is autograded/<student>/<assignment>
        return Path.cwd().parent.name
    return "notebook"


def grade_notebook(data: bytes, student: str, grading) -> StudentResult:
    """Grade a notebook's code in the sandbox, exactly as ``grader grade`` grades a folder holding it."""
    from grader import host
    from grader.intake import Submission

    safe = re.sub(r"[^\w.@+-]", "_", student)[:100] or "student"
    folder = Path(tempfile.mkdtemp(prefix="grader-notebook-"))
    try:
        (folder / grading.assignment.notebook).write_bytes(data)
        with host.staging() as staging:  # locked while in use, like grader grade's
            return grading.grade(Submission(safe, folder), staging, host.process_uid())
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def cell_score(result: StudentResult, part: str, cell_points: float | None) -> float:
    """The part's score as a plain float in [0, cell_points], scaled if the cell's points differ."""
    got = result.parts().get(part, {"score": 0.0, "max_score": 0.0})
    if got["max_score"] <= 0:
        return 0.0
    top = got["max_score"] if cell_points is None else float(cell_points)
    return float(points(min(max(got["score"] * top / got["max_score"], 0.0), top)))


_LINE = re.compile(r"\b(\w+\.py), line (\d+)")


def feedback(result: StudentResult, part: str, extracted: Extracted | None = None,
             first_part: str | None = None) -> str:
    """What the student reads under a grade cell: the part's checks, and the notebook notes
    once (under ``first_part``'s cell).

    ``extracted`` turns "x.py, line 47" into "x.py, line 47 (cell 4, line 20)".
    """
    from grader.reports import fmt_score

    def cells(text: str) -> str:
        if extracted is None:
            return text
        return _LINE.sub(lambda m: m.group(0) + (f" ({w})" if (w := extracted.where(m.group(1), int(m.group(2))))
                                                 else ""), text)

    got = result.parts().get(part, {"score": 0.0, "max_score": 0.0})
    lines = [f"{part}: {fmt_score(got['score'])} / {fmt_score(got['max_score'])} points"]
    previous = None
    for test in (t for t in result.tests if t.part == part):
        mark = "ok  " if test.status == "passed" else test.status.upper()
        lines.append(f"  {mark} {test.name} ({fmt_score(test.score)} / {fmt_score(test.max_score)})")
        if test.status != "passed" and test.feedback:
            if test.feedback == previous:
                lines.append("        (same as above)")
            else:
                lines.extend(f"        {line}" for line in cells(test.feedback).splitlines())
            previous = test.feedback
    if result.notes and part == first_part:
        lines += ["", "About your notebook:", *(f"  - {note}" for note in result.notes)]
    return "\n".join(lines)
