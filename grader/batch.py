"""Grade a whole class: one student at a time per job, reports as each one finishes.

Each student's ``report.json`` is written last and atomically, so its presence
means that student is completely done; ``--resume`` skips exactly those. The
class-level files (grades.csv, class report) are rebuilt from every report.json
at the end, so an interrupted run loses nothing that was finished.
"""
from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import shutil
import tempfile
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from grader import catalogue, reports, runner, sandbox, submission
from grader.course import Course
from grader.exercises import ALL, PARTS
from grader.results import StudentResult, TestResult

REPORT = "report.json"
GRADER_ERRORS = "grader-errors.log"  # for the instructor: hidden-test bugs, with tracebacks


@dataclass
class Batch:
    results: list[StudentResult]
    skipped: list[str]      # folders that are not submissions, with the reason
    resumed: int            # students taken from an earlier run
    grader_errors: int = 0  # checks that failed because of the grader, not the student


def grade_class(root: Path, out: Path, course: Course, jobs: int = 1, resume: bool = False,
                on_start: Callable[[int], None] = lambda total: None,
                on_done: Callable[[StudentResult], None] = lambda result: None) -> Batch:
    """Grade every submission under ``root`` into ``out``; return all results.

    The returned results are slim (scores and statuses, no feedback or output): the
    full ones are on disk, and ``on_done`` sees each full result as it finishes.
    """
    subs, skipped = submission.discover(root)
    out.mkdir(parents=True, exist_ok=True)
    done = {s.student: r.slim() for s in subs
            if resume and (r := _finished(out / s.student)) is not None}
    todo = [s for s in subs if s.student not in done]
    on_start(len(todo))
    results = list(done.values())
    for result in _grade_all(todo, out, course, jobs):
        results.append(result.slim())  # the full result is on disk already
        on_done(result)
    results.sort(key=lambda r: r.student)
    bugs = [b for r in results for b in r.grader_errors]
    if bugs:
        reports.atomic_write(out / GRADER_ERRORS, "\n\n".join(bugs) + "\n")
    reports.write_grades_csv(results, PARTS, out / "grades.csv")
    reports.write_class_report(results, PARTS, out, hints=catalogue.hints())
    return Batch(results, skipped, len(done), len(bugs))


def _finished(folder: Path) -> StudentResult | None:
    try:
        return StudentResult.from_json(json.loads((folder / REPORT).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _grade_all(todo: list[submission.Submission], out: Path, course: Course,
               jobs: int) -> Iterator[StudentResult]:
    if jobs <= 1 or len(todo) <= 1:
        for sub in todo:
            yield grade_one(sub, out, course)
        return
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["grader.batch"])  # job processes share these pages
    slots = context.Queue()
    for slot in range(jobs):
        slots.put(slot)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_take_slot,
                             initargs=(slots,)) as pool:
        # A few students in flight per job, not the whole class: a finished future holds
        # its full result (feedback, output), so memory would grow with the class size.
        queue, pending = iter(todo), {}
        for sub in itertools.islice(queue, jobs * 4):
            pending[pool.submit(grade_one, sub, out, course)] = sub
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                sub = pending.pop(future)
                if (following := next(queue, None)) is not None:
                    try:
                        pending[pool.submit(grade_one, following, out, course)] = following
                    except BrokenProcessPool as exc:  # a job process was killed: still report
                        yield _failed(following.student, out, f"{type(exc).__name__}: {exc}")
                try:
                    yield future.result()
                except Exception as exc:  # the job process itself died: still report the student
                    yield _failed(sub.student, out, f"{type(exc).__name__}: {exc}")


_tests: list[runner.HiddenTest] | None = None
_uid = sandbox.WORKER_UID


def _take_slot(slots) -> None:
    """Each grader process runs its submissions as its own uid (the process limit is per uid)."""
    global _uid
    _uid = sandbox.WORKER_UID - 1 - slots.get()


def grade_one(sub: submission.Submission, out: Path, course: Course) -> StudentResult:
    """Grade one student and write their reports (report.json last)."""
    global _tests
    if _tests is None:
        _tests = runner.collect(course.hidden_tests)
    staging = Path(tempfile.mkdtemp(prefix="grader-staging-"))
    os.chmod(staging, 0o755)  # the sandbox's unprivileged user must read the staged copy
    try:
        result = runner.grade(sub, course, _tests, staging, uid=_uid)
    except Exception as exc:  # a grader bug: this student is reported, the batch goes on
        return _failed(sub.student, out, f"{type(exc).__name__}: {exc}", traceback.format_exc())
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    write(result, out / sub.student)
    return result


def write(result: StudentResult, folder: Path) -> None:
    files = reports.render_student(result, catalogue.hints())
    folder.mkdir(parents=True, exist_ok=True)
    for name in sorted(files, key=lambda n: n == REPORT):
        reports.atomic_write(folder / name, files[name])


def _failed(student: str, out: Path, why: str, details: str = "") -> StudentResult:
    text = f"The grader failed on this submission ({why}). Please tell your instructor."
    tests = [TestResult(f"{e.part}: not graded", e.part, 0.0, e.max_points, "error", text) for e in ALL]
    result = StudentResult(student, tests, notes=[f"grader error: {why}"],
                           grader_errors=[f"{student}:\n{details or why}"])
    write(result, out / student)
    return result
