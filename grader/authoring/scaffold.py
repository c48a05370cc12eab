"""Start a course (``grader init``) or an assignment (``grader new``) from what exists."""
from __future__ import annotations

import ast
import os
import secrets
import shutil
from pathlib import Path

from grader import course as courses
from grader.assignment import HIDDEN, MANIFEST, Assignment

COURSE_TOML = """\
# The course's settings, read by every grader command run in this folder (see `grader --help`).
# Keep this file private: the seed decides every input the hidden tests use.
seed = "{seed}"         # 128 random bits, written by `grader init`
sandbox = "auto"        # auto | required | off
# assignment = "..."    # the default for --assignment

[limits]                # every key optional; these are the defaults
call_seconds = 5.0      # wall clock per request to the worker
memory_mb = 1024        # address space per process, and all of a submission's processes together
cpu_seconds = 60
output_bytes = 65536
file_size_mb = 8
open_files = 64
processes = 32
tmp_mb = 64
"""

EXERCISES = '''"""The exercises of {name}, in grading order: each one declares its class, the quantities
checked and their points, the input cases, and its known misconceptions.

See the bundled backprop assignment for complete examples of each kind.
"""
from grader.exercises import Case, LayerExercise, Misconception, Quantity  # noqa: F401

EXERCISES = [
    # LayerExercise(
    #     part="MyLayer", cls="MyLayer", module="{module}", init=(), forward=("x",), backward=("dout",),
    #     quantities={{"dx": Quantity(("return", None), wrt="x")}},
    #     points={{"forward": 1, "dx": 2}},
    #     cases=[Case("matrix", lambda rng: {{"x": rng.standard_normal((3, 4)),
    #                                        "dout": rng.standard_normal((3, 4))}})],
    # ),
]
'''

TESTS = '''"""Hidden tests of {name}: every declared exercise, plus any test of your own.

Mark a test of your own ``@pytest.mark.graded(part="...", points=N)``; debug against one
hand-in with ``pytest solutions/{name}/hidden --handin FOLDER``.
"""


def test_exercise(exercise, worker, scorer, answers):
    exercise.grade(worker, scorer, answers)
'''


def init_course(folder: Path, force: bool = False) -> list[Path]:
    """A course folder with the bundled assignments, a fresh 128-bit seed, and the releases."""
    from grader.authoring.release import release

    folder = Path(folder)
    bundled = courses.bundled_solutions()
    if bundled is None:
        raise ValueError("this installation has no bundled assignments to start from")
    config = folder / courses.CONFIG
    if config.exists() and not force:
        raise ValueError(f"{config} already exists: this is a course already (--force to overwrite)")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the seed is private: owner only
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(COURSE_TOML.format(seed=secrets.token_hex(16)))
    os.chmod(config, 0o600)
    written.append(config)
    for source in sorted(bundled.glob(f"*/{MANIFEST}")):
        target = folder / courses.SOLUTIONS / source.parent.name
        if target.exists() and not force:
            raise ValueError(f"{target} already exists (--force to overwrite)")
        shutil.copytree(source.parent, target, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", ".*"))
        written.append(target)
    course = courses.find(folder)
    for name in course.names():
        written += release(course.assignment(name), course.release_dir(name))
    return written


def new_assignment(course: courses.Course, name: str, source: Path) -> list[Path]:
    """``solutions/<name>/`` from a folder of reference files: manifest, files, hidden/ to fill in."""
    from grader.authoring.release import solution_regions

    target = course.root / courses.SOLUTIONS / name
    if target.exists():
        raise ValueError(f"{target} already exists")
    files = sorted(p for p in Path(source).glob("*.py") if not p.name.startswith("test_"))
    marked = [p for p in files if solution_regions(p.read_text(encoding="utf-8"), str(p))]
    if not marked:
        raise ValueError(f"no .py file in {source} has a ### BEGIN SOLUTION / ### END SOLUTION region: "
                         "mark what students write first")
    for path in files:
        ast.parse(path.read_text(encoding="utf-8"), filename=str(path))  # a syntax error is named now
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", ".*"))
    manifest = target / MANIFEST
    manifest.write_text(f'title = "{name}"\nfiles = [{", ".join(repr(p.name) for p in marked)}]\n'
                        f'notebook = "{name}.ipynb"\n'.replace("'", '"'), encoding="utf-8")
    hidden = target / HIDDEN
    hidden.mkdir(exist_ok=True)
    (hidden / "exercises.py").write_text(EXERCISES.format(name=name, module=marked[0].stem), encoding="utf-8")
    (hidden / "test_exercises.py").write_text(TESTS.format(name=name), encoding="utf-8")
    Assignment.load(target)  # the manifest it wrote is valid
    return [manifest, hidden / "exercises.py", hidden / "test_exercises.py"]
