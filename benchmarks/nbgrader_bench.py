"""nbgrader autograde against `grader grade` on the same students, as notebooks.

Each student folder of a benchmark class becomes the notebook nbgrader itself
released (`nbgrader generate_assignment` on the course `grader nbgrader init`
writes), with its code cells replaced by the student's own code, and is put where
`nbgrader collect` would put it. Then both graders run on exactly those files:

- `nbgrader autograde backprop --force` (the course as an instructor gets it: nbgrader
  executes each notebook in a kernel; scores come from the grader's sandbox);
- `grader grade submitted --jobs auto` (the CLI reads the same .ipynb files).

Each runs twice, in turn (nbgrader, grader, grader, nbgrader); the means are compared.
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sysconfig
import time
from pathlib import Path

from grader import course
from grader.authoring import notebook

BACKPROP = course.find(Path(__file__).resolve().parent.parent).assignment("backprop")

ASSIGNMENT = "backprop"


def command(name: str) -> str:
    found = Path(sysconfig.get_path("scripts")) / name
    return str(found) if found.exists() else (shutil.which(name) or name)


def run(args: list, cwd: Path, env: dict) -> float:
    """Run a command; return its wall time in seconds (raise with its output if it fails)."""
    start = time.perf_counter()
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, args))} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return time.perf_counter() - start


def as_notebook(release: dict, student: Path) -> dict:
    """nbgrader's release notebook with the student's code in its cells (by cell id).

    A file that does not parse keeps the release's stub cells: that student is then
    graded as an untouched hand-in by both graders alike.
    """
    nb = copy.deepcopy(release)
    try:
        files = {name: (student / name).read_text(encoding="utf-8") for name in BACKPROP.files}
        theirs = {c.id: c.source for c in notebook.source_notebook(BACKPROP, files).cells if c.cell_type == "code"}
    except (OSError, SyntaxError, ValueError):
        theirs = {}
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and cell["id"] in theirs and "file" in cell["metadata"].get("grader", {}):
            cell["source"] = theirs[cell["id"]]
    return nb


def autograde_notebooks(students: list[Path], work: Path) -> dict:
    """Grade ``students`` as notebooks with both tools; return {"n", "nbgrader", "grader"} seconds."""
    work.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in {"PYTEST_ADDOPTS", "PYTHONPATH"}}
    env.update(JUPYTER_CONFIG_DIR=str(work / "jupyter-config"), JUPYTER_RUNTIME_DIR=str(work / "runtime"))
    course = work / "course"
    run([command("grader"), "nbgrader", "init", course, "--assignment", "backprop", "--force"], work, env)
    run([command("nbgrader"), "generate_assignment", ASSIGNMENT, "--force"], course, env)
    release = json.loads((course / "release" / ASSIGNMENT / BACKPROP.notebook).read_text(encoding="utf-8"))
    for student in students:
        path = course / "submitted" / student.name / ASSIGNMENT / BACKPROP.notebook
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(as_notebook(release, student), indent=1), encoding="utf-8")
    times: dict[str, list[float]] = {"nbgrader": [], "grader": []}
    for i, tool in enumerate(ORDER):  # in turn, each twice: one run of either varies by 10-20% here
        if tool == "nbgrader":
            times[tool].append(run([command("nbgrader"), "autograde", ASSIGNMENT, "--force"], course, env))
        else:
            times[tool].append(run([command("grader"), "grade", course / "submitted", "--out",
                                    work / f"reports-{i}", "--jobs", "auto"], work, env))
    return {"n": len(students), **{tool: sum(t) / len(t) for tool, t in times.items()}, "runs": times,
            "same_scores": all(same_scores(course, work / f"reports-{i}")
                               for i, tool in enumerate(ORDER) if tool == "grader")}


ORDER = ("nbgrader", "grader", "grader", "nbgrader")


def same_scores(course: Path, reports: Path) -> bool:
    """Did nbgrader's gradebook get exactly the CLI's scores? (a fast grader that disagrees is no use)"""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in gb.students:
            report = json.loads((reports / "students" / student.id / "report.json").read_text(encoding="utf-8"))
            total = gb.find_submission(ASSIGNMENT, student.id).score
            if abs(total - report["score"]) > 1e-6:
                return False
    return True
