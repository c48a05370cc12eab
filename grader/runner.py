"""Grade one student: stage the files, start the worker, run every hidden test.

The hidden tests are collected once per batch (their modules are imported here, in
the trusted process); each test is then called per student with the fixtures it
names. A test that hangs or kills the worker costs its own items only: the worker
is restarted for the next test. A worker that cannot be started at all (the sandbox
failed before any of the student's code ran) is retried, then reported as the
grader's failure (``WorkerUnavailable``), never as the student's.
"""
from __future__ import annotations

import importlib.util
import inspect
import itertools
import re
import time
import traceback
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader import diagnosis, reference, sandbox, submission
from grader.course import Course
from grader.results import StudentResult
from grader.scoring import Scorer
from grader.testing import Student
from grader.worker.client import StudentError, Worker, WorkerError

START_RETRIES = (0.25, 0.5, 1.0, 2.0)  # seconds before each new attempt to start the worker


class WorkerUnavailable(RuntimeError):
    """No worker could be started for this student: the machine's fault, not the student's
    (e.g. fork failing with EAGAIN because the sandbox uid is out of processes)."""


@dataclass
class HiddenTest:
    name: str
    func: Callable
    params: dict


def collect(folder: Path) -> list[HiddenTest]:
    """Import ``test_*.py`` in ``folder``; expand ``pytest.mark.parametrize``."""
    tests = []
    for path in sorted(Path(folder).glob("test_*.py")):
        spec = importlib.util.spec_from_file_location(f"_grader_hidden_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for name, func in vars(module).items():
            if name.startswith("test_") and callable(func):
                tests.extend(HiddenTest(f"{name}{suffix}", func, params)
                             for suffix, params in _parametrize(func))
    return tests


def _parametrize(func) -> list[tuple[str, dict]]:
    grids = []
    for mark in getattr(func, "pytestmark", []):
        if mark.name != "parametrize":
            continue
        names = [n.strip() for n in (mark.args[0].split(",") if isinstance(mark.args[0], str)
                                     else mark.args[0])]
        values = list(mark.args[1])
        ids = mark.kwargs.get("ids") or [str(i) for i in range(len(values))]
        grids.append([(ids[i], dict(zip(names, v if len(names) > 1 else (v,), strict=True)))
                      for i, v in enumerate(values)])
    if not grids:
        return [("", {})]
    out = []
    for combo in itertools.product(*grids):
        ids, params = [c[0] for c in combo], {}
        for c in combo:
            params.update(c[1])
        out.append((f"[{'-'.join(ids)}]", params))
    return out


def grade(sub: submission.Submission, course: Course, tests: list[HiddenTest],
          staging: Path, uid: int = sandbox.WORKER_UID) -> StudentResult:
    """Everything for one student; never raises for anything the submission does.

    ``uid``: the host uid the submission runs as; one per concurrent worker slot.
    Raises WorkerUnavailable when the sandbox cannot start a worker at all.
    """
    staged = submission.stage(sub, staging / sub.student)
    refs = reference.load(course.solutions)
    scorer = Scorer()
    notes = list(staged.notes)
    bugs: list[str] = []
    hide = (course.solutions, course.hidden_tests)
    with Worker(staged.folder, course.limits, course.sandbox, uid=uid, hide=hide) as worker:
        started = _start(worker, notes)
        for test in tests:
            if started and not worker.alive:
                _start(worker, [])
            bug = _run(test, worker, scorer, refs, course.seed)
            if bug:
                bugs.append(f"{sub.student} / {test.name}:\n{bug}")
        output = worker.output.text()
        isolation = str(worker.isolation) if worker.isolation else "isolation: unknown"
    results = scorer.results()
    _attribute(results, staged)
    return StudentResult(sub.student, results, isolation=isolation, notes=notes, output=output,
                         grader_errors=bugs)


def _start(worker: Worker, notes: list[str]) -> bool:
    """Start the student's process and import their files; False if the import failed.

    Worker.start counts a new generation once the zygote has forked the student's
    process: a failure before that ran none of their code, so it is retried, and in
    the end raised as WorkerUnavailable rather than charged to them.
    """
    for delay in (*START_RETRIES, None):
        generation = worker.generation
        try:
            modules = worker.start()
            break
        except WorkerError as exc:
            if worker.generation != generation:  # their process ran: their import failed
                worker.dead_reason = f"importing the submission failed: {exc}"
                notes.append(f"Importing your files failed: {exc}. Nothing could be graded.")
                return False
            if delay is None:
                raise WorkerUnavailable(f"the sandboxed worker could not be started "
                                        f"({len(START_RETRIES) + 1} attempts): {exc}") from None
            time.sleep(delay)
    for name, status in modules.items():
        if isinstance(status, dict) and isinstance(status.get("error"), dict):
            error = {"type": "Exception", "message": "", "frames": [], **status["error"]}
            notes.append(diagnosis.format_error(f"Importing {name}.py", error))
    return True


def _run(test: HiddenTest, worker: Worker, scorer: Scorer, refs, seed: int) -> str | None:
    """Run one hidden test; return a traceback if the test itself (not the student) failed."""
    fixtures = {
        "worker": worker, "scorer": scorer, "reference": refs, "seed": seed,
        "student": Student(worker),
        "rng": np.random.default_rng([seed, zlib.crc32(test.name.encode())]),
    }
    wanted = inspect.signature(test.func).parameters
    kwargs = {n: test.params[n] if n in test.params else fixtures[n] for n in wanted}
    mark = getattr(test.func, "graded", None)
    item = scorer.plan(mark["part"], mark["name"], mark["points"]) if mark else None
    try:
        test.func(**kwargs)
        if item:
            item.passed("passed")
    except AssertionError as exc:
        if item:
            item.failed(str(exc) or "a check failed")
    except StudentError as exc:
        if item:
            item.error(diagnosis.format_error("your code", exc.error))
    except WorkerError as exc:
        if item:
            item.error(str(exc), status=exc.status)
    except Exception as exc:  # a bug in a hidden test must not cost the student or the batch
        for planned in scorer.unsettled():
            planned.error(f"The grader failed on this check ({type(exc).__name__}); "
                          "your instructor has been told. It scores 0 until regraded.")
        return traceback.format_exc()
    return None


_MISSING = re.compile(r"module '(\w+)' has no attribute '(\w+)'")


def _attribute(results, staged: submission.Staged) -> None:
    """Explain a missing class by what static reading found (syntax error, duplicate)."""
    for result in results:
        found = _MISSING.search(result.feedback)
        if not found or result.status == "passed":
            continue
        cls = found.group(2)
        if cls in staged.left_out:
            result.misconception = "syntax-error"
            result.feedback += (f"\n{cls} could not be graded because of a syntax error: "
                                f"{staged.left_out[cls]}.")
        elif staged.duplicates:
            dup = ", ".join(f"{c} (lines {', '.join(map(str, n))})" for c, n in staged.duplicates.items())
            result.misconception = "duplicate-class"
            result.feedback += (f"\nKnown mistake: a class defined twice under one name. {dup} is "
                                f"defined more than once; did you mean one of them to be {cls}?")
        else:
            result.misconception = "missing-class"
            result.feedback += f"\nKnown mistake: a missing class. Your file has no class {cls}."
