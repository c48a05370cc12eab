"""Gradescope's autograder: the zip an instructor uploads, and what runs per submission.

The zip (``build``) holds::

    setup.sh          run once when Gradescope builds the image: bubblewrap (where the
                      image allows apt-get), a venv, this grader installed from source/
    run_autograder    run per submission: ``grader gradescope run``
    grader-src/       this installation's grader package and a pyproject to install it
    course/           course.toml (seed, limits, [gradescope] visibility) and
                      solutions/<name>/ (reference, declarations, hidden tests)

``run`` grades /autograder/submission (.py files, or a notebook) as one student, through
the same canary and sandbox as ``grader grade``, into /autograder/results/results.json.
A machine that cannot grade writes no results and exits non-zero: Gradescope then shows
that the autograder failed, rather than a zero the student never earned.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import stat
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

from grader.course import CONFIG, SOLUTIONS, Course

ROOT = "/autograder"
VISIBILITY = ("visible", "after_due_date", "after_published", "hidden")

SETUP = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
set -euo pipefail
cd "$(dirname "$0")"
if command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || true
  # full isolation needs bubblewrap; without it the grader still runs, reduced (and says so)
  apt-get install -y -qq bubblewrap >/dev/null || echo "setup: bubblewrap not installed: reduced isolation" >&2
  command -v python3.11 >/dev/null || apt-get install -y -qq python3.11 python3.11-venv >/dev/null || true
fi
PYTHON=$(command -v python3.12 || command -v python3.11 || command -v python3)
"$PYTHON" -m venv "${AUTOGRADER_ROOT:-/autograder}/venv"
"${AUTOGRADER_ROOT:-/autograder}/venv/bin/pip" install -q ./grader-src
"${AUTOGRADER_ROOT:-/autograder}/venv/bin/grader" doctor --course ./course --assignment {assignment}
"""

RUN = r"""#!/usr/bin/env bash
# Gradescope runs this for every submission.
set -euo pipefail
ROOT=${AUTOGRADER_ROOT:-/autograder}
GRADER=${GRADER:-$ROOT/venv/bin/grader}
exec "$GRADER" gradescope run --course "$ROOT/source/course" --assignment {assignment} \
  --submission "$ROOT/submission" --results "$ROOT/results/results.json"
"""

PYPROJECT = """[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "backprop-grader"
version = "{version}"
requires-python = ">=3.11"
dependencies = {dependencies}

[project.scripts]
grader = "grader.cli:main"

[project.entry-points.pytest11]
grader = "grader.hidden.plugin"

[project.entry-points."grader.outputs"]
"results.json" = "grader.integrations.gradescope:results_json"

[tool.setuptools.packages.find]
include = ["grader*"]

[tool.setuptools.package-data]
grader = ["templates/*"]
"""


def build(course: Course, assignment: str, out: Path, visibility: str | None = None) -> Path:
    """Write the autograder zip for ``assignment`` of ``course`` to ``out``."""
    import grader

    chosen = course.assignment(assignment)
    visibility = visibility or course.settings.gradescope_visibility
    if visibility not in VISIBILITY:
        raise ValueError(f"visibility must be one of {', '.join(VISIBILITY)}, not {visibility!r}")
    files: dict[str, bytes | str] = {
        "setup.sh": SETUP.replace("{assignment}", chosen.name),
        "run_autograder": RUN.replace("{assignment}", chosen.name),
        "course/" + CONFIG: _course_toml(course, visibility),
        "grader-src/pyproject.toml": PYPROJECT.format(
            version=grader.__version__, dependencies=json.dumps(_runtime_requirements())),
    }
    package = Path(grader.__file__).resolve().parent
    for path in sorted(package.rglob("*")):
        rel = path.relative_to(package)
        if path.is_file() and "__pycache__" not in rel.parts and rel.parts[0] != "bundled":
            files[f"grader-src/grader/{rel.as_posix()}"] = path.read_bytes()
    for path in sorted(chosen.folder.rglob("*")):
        rel = path.relative_to(chosen.folder)
        if path.is_file() and "__pycache__" not in rel.parts:
            files[f"course/{SOLUTIONS}/{chosen.name}/{rel.as_posix()}"] = path.read_bytes()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))  # reproducible
            executable = name in ("setup.sh", "run_autograder")
            info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
            archive.writestr(info, data)
    return out


def _course_toml(course: Course, visibility: str) -> str:
    """The course's settings as the autograder uses them (the seed, limits and visibility)."""
    s = course.settings
    lines = [f'seed = "{s.seed:x}"', f'sandbox = "{s.sandbox}"', "", "[limits]"]
    lines += [f"{k} = {v!r}" for k, v in vars(s.limits).items()]
    lines += ["", "[gradescope]", f'visibility = "{visibility}"', ""]
    return "\n".join(lines)


def _runtime_requirements() -> list[str]:
    try:
        found = metadata.requires("backprop-grader") or []
    except metadata.PackageNotFoundError:
        found = []
    return [r for r in found if "extra ==" not in r]


def run(course: Course, assignment: str, submission: Path, results: Path) -> dict:
    """Grade ``submission`` as one student into Gradescope's ``results`` file; return it.

    Raises ``CannotGrade`` (nothing written) when the canary fails."""
    from grader import batch, canary, host
    from grader.grading import Grading
    from grader.intake import Submission
    from grader.integrations.gradescope import results_json
    from grader.judging.misconceptions import hints

    grading = Grading.of(course, assignment)
    visibility = course.settings.gradescope_visibility
    proof = canary.run(grading)
    if not proof.ok:
        raise batch.CannotGrade(proof)
    with tempfile.TemporaryDirectory(prefix="grader-gradescope-") as tmp:
        handin = Path(tmp) / "submission"  # .py files, or a notebook: intake tells them apart
        shutil.copytree(submission, handin, symlinks=True)
        sub = Submission("submission", handin)
        with host.staging() as staging:
            result = grading.grade(sub, staging, host.process_uid())
    data = results_json(result, hints(grading.assignment.exercises))
    data["visibility"] = visibility
    for test in data["tests"]:
        test["visibility"] = visibility
    for error in result.grader_errors:  # the autograder's log (stderr), never the student's results
        print(f"grader error: {error}", file=sys.stderr)
    results.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, ensure_ascii=False, indent=1)
    temporary = results.with_name(f".{results.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, results)
    return data


def read_zip(path: Path) -> dict[str, bytes]:
    """name -> bytes of every file of an autograder zip (for tests and `grader gradescope`)."""
    with zipfile.ZipFile(io.BytesIO(Path(path).read_bytes())) as archive:
        return {name: archive.read(name) for name in archive.namelist()}
