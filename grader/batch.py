"""Grade a whole class: one student at a time per job, reports as each one finishes.

Each student's ``report.json`` (in ``REPORTS/students/<id>/``, see ``reports``) is
written last and atomically, so its presence means that student is completely done
(atomic against a kill: renamed into place; against power loss, the files are synced
every ``CHECKPOINT`` students and before the class files, not one fsync per file);
``--resume`` skips exactly those (except the ones the grader itself failed on, which
are graded again). The class-level files
(grades.csv, class report) are rebuilt from every report.json at the end, so an
interrupted run loses nothing that was finished; the temporary files of writes a
kill cut short are removed first.

Before any student, the canary (``grader.canary``) grades the reference solution
through the same sandbox: if it does not score full marks, nobody is graded
(``CannotGrade``). Each grading process leases its own sandbox uid machine-wide and
locks its staging folders (``grader.host``); job processes end when the process that
started them ends.
"""
from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import re
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from grader import canary, host, intake, reports, sandbox, stages
from grader.course import ClusterSettings
from grader.grading import Grading
from grader.judging.misconceptions import hints
from grader.results import StudentResult, TestResult

REPORT = "report.json"
CHECKPOINT = 200  # students between two syncs of the reports' file system
GRADER_ERRORS = "grader-errors.log"  # for the instructor: hidden-test bugs, with tracebacks


@dataclass
class Batch:
    results: list[StudentResult]
    skipped: list[str]      # folders that are not submissions, with the reason
    resumed: int            # students taken from an earlier run
    grader_errors: int = 0  # checks that failed because of the grader, not the student
    canary: canary.Canary | None = None

    @property
    def failed_students(self) -> list[str]:
        """Students the grader itself failed on (not their doing): to regrade."""
        return [r.student for r in self.results if r.grader_errors]


@dataclass(frozen=True)
class Remote:
    """Grade on a Dask cluster (``grader.cluster``): a running scheduler's address, or a
    dask-jobqueue cluster started from the course's ``[cluster]``."""

    scheduler: str | None = None
    cluster: ClusterSettings | None = None

    @property
    def allow_reduced(self) -> bool:
        return bool(self.cluster and self.cluster.allow_reduced_isolation)


class NoStudents(ValueError):
    """The folder holds no hand-in; the message says what it holds and what was expected."""


class CannotGrade(RuntimeError):
    """The canary failed: this machine (or these hidden tests) cannot grade correctly."""

    def __init__(self, proof: canary.Canary):
        self.canary = proof
        super().__init__(proof.report())


def grade_class(root: Path, out: Path, grading: Grading, jobs: int = 1, resume: bool = False,
                on_start: Callable[[int], None] = lambda total: None,
                on_done: Callable[[StudentResult], None] = lambda result: None,
                check: bool = True, remote: Remote | None = None) -> Batch:
    """Grade every submission under ``root`` into ``out``; return all results.

    The returned results are slim (scores and statuses, no feedback or output): the
    full ones are on disk, and ``on_done`` sees each full result as it finishes.
    ``check``: run the canary first (raises CannotGrade when it fails); with ``remote``
    each cluster worker runs it instead, before it takes work.
    """
    stages.install()
    with stages.timed("discover"):
        subs, skipped = intake.discover(root)
    if not subs:
        raise NoStudents(_no_students(root, skipped, grading))
    proof = None
    reports.warm_templates()
    if check and remote is None:
        with stages.timed("canary"):
            proof = canary.run(grading)
        if not proof.ok:
            raise CannotGrade(proof)
    out.mkdir(parents=True, exist_ok=True)
    remove_partial_writes(out, [s.student for s in subs])
    host.sweep_staging()  # what killed runs left in the temp folder
    done = {s.student: r.slim() for s in subs
            if resume and (r := _finished(out, s.student)) is not None}
    todo = [s for s in subs if s.student not in done]
    on_start(len(todo))
    results = list(done.values())
    grading_ = _grade_remote(todo, out, grading, remote) if remote else _grade_all(todo, out, grading, jobs)
    for count, result in enumerate(grading_, 1):
        results.append(result.slim())  # the full result is on disk already
        on_done(result)
        if count % CHECKPOINT == 0:
            reports.sync(out)
    reports.sync(out)  # every student's files are durable before the class files say done
    results.sort(key=lambda r: r.student)
    bugs = [b for r in results for b in r.grader_errors]
    if bugs:
        reports.atomic_write(out / GRADER_ERRORS, "\n\n".join(bugs) + "\n")
    assignment = grading.assignment
    with stages.timed("class reports"):
        reports.write_grades_csv(results, assignment.parts, out / "grades.csv")
        reports.write_class_report(results, assignment.parts, out, hints=hints(assignment.exercises),
                                   title=assignment.title)
    return Batch(results, skipped, len(done), len(bugs), proof)


def _no_students(root: Path, skipped: list[str], grading: Grading) -> str:
    """Why nothing was found, and what a submissions folder looks like."""
    files = set(grading.assignment.files)
    here = {p.name for p in Path(root).iterdir()}
    if files & here:
        hint = (f"{root} looks like ONE student's folder (it holds {', '.join(sorted(files & here))}): "
                f"pass the folder that holds one such folder per student")
    elif skipped:
        hint = "nothing in it is a hand-in:\n  " + "\n  ".join(skipped)
    else:
        hint = f"{root} is empty"
    return (f"no students found in {root}: {hint}. Expected one folder per student (named by the "
            f"student id) holding {', '.join(grading.assignment.files)}, or one STUDENT.ipynb per student.")


def _finished(out: Path, student: str) -> StudentResult | None:
    """The student's earlier result, unless there is none or the grader failed on them.

    The student is who the folder is named after, never what report.json says (its
    copy of the id may have been cut to fit the report's size cap). An empty report file
    is what a power loss between two checkpoints can leave (renamed, its data not yet
    written): that student is graded again."""
    folder = reports.student_folder(out, student)
    try:
        result = StudentResult.from_json(json.loads((folder / REPORT).read_text(encoding="utf-8")))
        if any(entry.name in _WRITTEN and entry.stat().st_size == 0 for entry in os.scandir(folder)):
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None
    if any(isinstance(note, str) and note.startswith(_FAILED_NOTE) for note in result.notes):
        return None  # not the student's doing (see _failed): grade them again
    result.student = student
    return result


# reports.atomic_write's temporary files for what a run writes: ".<name>.<random>.tmp"
_WRITTEN = ("report.json", "report.md", "report.html", "results.json", "grades.csv", "class.md",
            "class.html", GRADER_ERRORS)
_PARTIAL = re.compile(rf"^\.({'|'.join(map(re.escape, _WRITTEN))})\.[A-Za-z0-9_]+\.tmp$")


def remove_partial_writes(out: Path, students: list[str]) -> list[Path]:
    """Remove the temporary files of writes a kill cut short, in ``out`` and its student folders.

    atomic_write renames its temporary file over the report, so one left over is never
    a report, only an interrupted write (two runs are not meant to share ``out`` at the
    same time). Only the names a run writes are matched: ``out`` may be any folder.
    """
    removed = []
    for folder in [out, *(reports.student_folder(out, s) for s in students)]:
        try:
            entries = list(os.scandir(folder))
        except OSError:  # not graded yet, or not a folder
            continue
        for entry in entries:
            if _PARTIAL.match(entry.name) and not entry.is_dir(follow_symlinks=False):
                Path(entry.path).unlink(missing_ok=True)
                removed.append(Path(entry.path))
    return removed


def _grade_all(todo: list[intake.Submission], out: Path, grading: Grading,
               jobs: int) -> Iterator[StudentResult]:
    if jobs <= 1 or len(todo) <= 1:
        yield from _grade_here(todo, out, grading)
        return
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["grader.batch"])  # job processes share these pages
    _short_forkserver_dir()
    me = os.getpid()
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_take_slot,
                             initargs=(me, host.start_time(me))) as pool:
        # A few students in flight per job, not the whole class: a finished future holds
        # its full result (feedback, output), so memory would grow with the class size.
        queue, pending = iter(todo), {}
        for sub in itertools.islice(queue, jobs * 4):
            pending[pool.submit(grade_one, sub, out, grading)] = sub
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                sub = pending.pop(future)
                if (following := next(queue, None)) is not None:
                    try:
                        pending[pool.submit(grade_one, following, out, grading)] = following
                    except BrokenProcessPool as exc:  # a job process was killed: still report
                        yield _failed(following.student, out, grading, f"{type(exc).__name__}: {exc}")
                try:
                    yield future.result()
                except Exception as exc:  # the job process itself died: still report the student
                    yield _failed(sub.student, out, grading, f"{type(exc).__name__}: {exc}")


def _grade_remote(todo: list[intake.Submission], out: Path, grading: Grading,
                  remote: Remote) -> Iterator[StudentResult]:
    """Grade on the cluster; this process only writes the reports (grader.cluster)."""
    from grader import cluster

    client = cluster.connect(remote.scheduler, remote.cluster, remote.cluster.connect_timeout)
    try:
        for student, result, files in cluster.grade_all(todo, grading, client, remote.allow_reduced):
            if isinstance(result, str):
                yield _failed(student, out, grading, result)
                continue
            write(result, reports.student_folder(out, student), grading, files)
            yield result
    finally:
        client.close()


def _short_forkserver_dir() -> None:
    """Put multiprocessing's own folder (the forkserver's socket, ``pymp-*/listener-*``) in
    /tmp when the temp folder is too deep for an AF_UNIX path (107 bytes): a deep $TMPDIR
    (pytest's under a long user name, a batch system's) made Python < 3.14 fail with
    "OSError: AF_UNIX path too long" before anyone was graded (python/cpython#132124).
    The staging folders stay in $TMPDIR."""
    import tempfile
    from multiprocessing import util

    if len(os.path.join(tempfile.gettempdir(), "pymp-xxxxxxxx", "listener-xxxxxxxx")) <= 107:
        return
    saved, tempfile.tempdir = tempfile.tempdir, "/tmp"
    try:
        util.get_temp_dir()  # made once per process, then reused
    except OSError:
        pass  # no /tmp: the forkserver says why
    finally:
        tempfile.tempdir = saved


def _grade_here(todo: list[intake.Submission], out: Path, grading: Grading) -> Iterator[StudentResult]:
    """Grade in this process, as its leased uid (the canary's zygote is reused)."""
    for sub in todo:
        yield grade_one(sub, out, grading, uid=host.process_uid())


_lease: host.Lease | None = None  # a job process's uid, held until the process ends


def _take_slot(cli: int, started: int | None) -> None:
    """Set up a job process: its own sandbox uid (the process limit counts per uid, across
    every grader on the machine), and its end when the process that started it ends."""
    global _lease
    host.exit_with(cli, started)
    _lease = host.lease_uid()
    stages.install()


def grade_one(sub: intake.Submission, out: Path, grading: Grading, uid: int | None = None) -> StudentResult:
    """Grade one student and write their reports (report.json last).

    ``uid``: the sandbox uid; by default the one this job process leased.
    """
    if uid is None:
        uid = _lease.uid if _lease is not None else sandbox.WORKER_UID
    try:
        with stages.timed("grade"), host.staging() as staging:  # locked while in use: swept if killed
            result = grading.grade(sub, staging, uid)
    except Exception as exc:  # a grader bug: this student is reported, the batch goes on
        return _failed(sub.student, out, grading, f"{type(exc).__name__}: {exc}", traceback.format_exc())
    write(result, reports.student_folder(out, sub.student), grading)
    return result


def write(result: StudentResult, folder: Path, grading: Grading, files: dict[str, str] | None = None) -> None:
    """The student's report files (``files``: already rendered, e.g. by a cluster worker),
    report.json last; none is started once the CLI is gone."""
    with stages.timed("render reports"):
        files = files or render(result, grading)
    with stages.timed("write reports"), host.writing():
        folder.mkdir(parents=True, exist_ok=True)
        for name in sorted(files, key=lambda n: n == REPORT):
            reports.atomic_write(folder / name, files[name], durable=False)


def render(result: StudentResult, grading: Grading) -> dict[str, str]:
    """file name -> text of every report file of one student."""
    return reports.render_student(result, hints(grading.assignment.exercises), title=grading.assignment.title)


_FAILED_NOTE = "grader error: "


def _failed(student: str, out: Path, grading: Grading, why: str, details: str = "") -> StudentResult:
    text = f"The grader failed on this submission ({why}). Please tell your instructor."
    tests = [TestResult(f"{e.part}: not graded", e.part, 0.0, e.max_points, "error", text)
             for e in grading.assignment.exercises]
    result = StudentResult(student, tests, notes=[f"{_FAILED_NOTE}{why}"],
                           grader_errors=[f"{student}:\n{details or why}"])
    write(result, reports.student_folder(out, student), grading)
    return result
