"""Grade students with an assignment's hidden tests, run by pytest itself.

A ``Session`` collects the hidden tests once (``pytest.main`` in a thread of this
process, with the grader's plugin) and keeps pytest's session open: its test loop
(``pytest_runtestloop``, as pytest-xdist's workers own theirs) takes one student at a
time from a queue and runs every collected item for them through pytest's own
``pytest_runtest_protocol`` - fixtures with their scopes (cases and reference answers
live for the whole session), marks, ids, conftest.py, rewritten asserts, skip/xfail.
Only the student's worker and scorer change between students.

A collection error (a broken hidden test, an unknown marker) is a ``HiddenTestsError``
before any student is graded. A worker that cannot be started at all (the sandbox
failed before any of the student's code ran) is retried, then ``WorkerUnavailable``:
the machine's fault, never the student's.
"""
from __future__ import annotations

import gc
import io
import os
import queue
import re
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import pytest

from grader import intake, stages
from grader.hidden import plugin
from grader.judging.misconceptions import format_error
from grader.judging.scoring import Scorer
from grader.results import StudentResult
from grader.worker.client import Worker, WorkerError

START_RETRIES = (0.25, 0.5, 1.0, 2.0)  # seconds before each new attempt to start the worker


class HiddenTestsError(RuntimeError):
    """The hidden tests cannot be collected; the message is pytest's own."""


class WorkerUnavailable(RuntimeError):
    """No worker could be started for this student: the machine's fault, not the student's
    (e.g. fork failing with EAGAIN because the sandbox uid is out of processes)."""


@dataclass(frozen=True)
class Job:
    staged: intake.Staged
    student: str
    uid: int


class _Loop:
    """The pytest plugin object that owns the test loop of a grading session."""

    def __init__(self, session: Session):
        self.owner = session
        self.items: list[pytest.Item] = []
        self.errors: list[str] = []
        self.deselected: list[str] = []
        self.jobs: queue.Queue = queue.Queue()

    @pytest.hookimpl(trylast=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        ctx = plugin.context(config)
        ctx.assignment, ctx.settings = self.owner.assignment, self.owner.settings
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:  # pytest's own progress output is not the grader's
            reporter._tw._file = io.StringIO() if os.name != "posix" else open(os.devnull, "w")  # noqa: SIM115
            config.pluginmanager.unregister(reporter)
            config.pluginmanager.register(_Quiet(reporter._tw), "terminalreporter")

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            self.errors.append(f"{report.nodeid or 'collection'}:\n{report.longreprtext}")

    def pytest_deselected(self, items) -> None:
        self.deselected += [i.name for i in items]

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.items = [i for i in session.items if plugin.gradeable(i)]
        _settled(session, self.items)
        self.errors += plugin.problems(session, self.items)
        if self.owner.select and not self.items:
            names = ", ".join(sorted(set(self.deselected))[:12]) or "none"
            self.errors.append(f"--select {self.owner.select!r} matches none of the hidden tests "
                               f"(a pytest -k expression over their names: {names})")

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        if self.errors:
            return True
        gc.collect()
        gc.freeze()  # what lives for the whole session (pytest, the tests, answers): never walked again
        self.owner.ready.set_result(self.items)
        while (job := self.jobs.get()) is not None:
            done: Future = job[1]
            try:
                done.set_result(self.grade(session, job[0]))
            except BaseException as exc:  # noqa: B036 - handed to the waiting caller
                done.set_exception(exc)
        return True

    def grade(self, session: pytest.Session, job: Job) -> StudentResult:
        owner, config = self.owner, session.config
        ctx = plugin.context(config)
        scorer = Scorer()
        notes = list(job.staged.notes)
        with Worker(job.staged.folder, owner.settings.limits, owner.settings.sandbox, uid=job.uid,
                    hide=owner.secrets, modules=owner.assignment.modules) as worker:
            started = _start(worker, notes)
            ctx.current = current = plugin.Current(worker, scorer)
            try:
                for item in self.items:
                    plugin.plan(item, scorer)
                with stages.timed("hidden tests"):
                    for i, item in enumerate(self.items):
                        if started and not worker.alive:
                            _start(worker, [])
                        # the next student's first item: session fixtures stay up between students
                        # (never the item itself: pytest would keep its function scope too)
                        following = self.items[(i + 1) % len(self.items)] if len(self.items) > 1 else None
                        config.hook.pytest_runtest_protocol(item=item, nextitem=following)
            finally:
                ctx.current = None
            output = worker.output.text()
            isolation = str(worker.isolation) if worker.isolation else "isolation: unknown"
        results = scorer.results()
        _attribute(results, job.staged)
        notes += current.notes
        notes += [f"Not graded (skipped): {why}" for why in current.skipped]
        bugs = [f"{job.student} / {bug}" for bug in current.bugs]
        return StudentResult(job.student, results, isolation=isolation, notes=notes, output=output,
                             grader_errors=bugs)


class _Quiet:
    """Stands in for pytest's terminal reporter in a grading session: pytest explains a failed
    ``assert a == b`` with the reporter's writer (``config.get_terminal_writer``), and that is
    all a grading session needs of it. The reporter itself wrote progress nobody reads, three
    times an item, and kept every report of the session (450 MB of a class of 5,000)."""

    def __init__(self, writer):
        self._tw = writer


def _settled(session: pytest.Session, items: list[pytest.Item]) -> None:
    """Work pytest redoes for every report of every student, done once: collection is over,
    so neither an item's keywords nor which conftest.py files apply to its path change."""
    for item in items:  # each report copies them: ~45 names, walked up the node tree every time
        item.keywords = {name: item.keywords[name] for name in item.keywords}
    proxies: dict = {}
    find = session.gethookproxy

    def gethookproxy(path):  # ``item.ihook``, ~13 times an item
        found = proxies.get(path)
        if found is None:
            found = proxies[path] = find(path)
        return found

    session.gethookproxy = gethookproxy


class Session:
    """The hidden tests of one assignment, collected once, grading one student at a time."""

    def __init__(self, assignment, settings, secrets: tuple[Path, ...] = (), select: str | None = None):
        self.assignment, self.settings, self.secrets, self.select = assignment, settings, secrets, select
        self.ready: Future = Future()
        self._loop = _Loop(self)
        self._thread = threading.Thread(target=self._main, name=f"hidden-tests-{assignment.name}", daemon=True)
        self._thread.start()
        try:
            self.items = self.ready.result()
        except HiddenTestsError:
            self._thread.join()
            raise

    def _main(self) -> None:
        hidden = self.assignment.hidden
        args = [str(hidden), "--rootdir", str(hidden), "--disable-plugin-autoload", "-p", "grader.hidden.plugin",
                "-c", str(hidden / "pytest.ini") if (hidden / "pytest.ini").is_file() else os.devnull,
                "--import-mode=importlib", "-p", "no:cacheprovider", "-p", "no:logging", "-p", "no:faulthandler",
                "-p", "no:junitxml", "-p", "no:pastebin", "-p", "no:doctest", "-s", "--tb=native", "-q",
                # they wrap each of the three phases of every item and only ever warn; they have no
                # options an author's pytest.ini could name (the terminal reporter stays: pytest
                # explains a failed ``assert a == b`` with its writer)
                "-p", "no:unraisableexception", "-p", "no:threadexception"]
        if self.select:
            args += ["-k", self.select]
        try:
            code = pytest.main(args, plugins=[self._loop])
        except BaseException as exc:  # noqa: B036 - reported to whoever waits
            code, self._loop.errors = -1, [*self._loop.errors, f"{type(exc).__name__}: {exc}"]
        if not self.ready.done():
            errors = self._loop.errors or [f"pytest stopped with exit code {code} before any test ran"
                                           + (" (no test collected)" if code == 5 else "")]
            self.ready.set_exception(HiddenTestsError(
                f"the hidden tests in {hidden} cannot be run:\n" + "\n".join(errors)))

    def grade(self, sub: intake.Submission, staging: Path, uid: int) -> StudentResult:
        """Everything for one student; never raises for anything the submission does."""
        with stages.timed("staging"):
            staged = intake.stage(sub, staging / sub.student, self.assignment)
        done: Future = Future()
        self._loop.jobs.put((Job(staged, sub.student, uid), done))
        return done.result()

    def close(self) -> None:
        if self._thread.is_alive():
            self._loop.jobs.put(None)
            self._thread.join(timeout=10)


_open: dict[tuple, Session] = {}
_open_lock = threading.Lock()


def session_for(assignment, settings, secrets: tuple[Path, ...] = (), select: str | None = None) -> Session:
    """This process's session for these hidden tests (one pytest session at a time)."""
    key = (assignment.folder, settings, secrets, select)
    with _open_lock:
        if key not in _open:
            for other in list(_open):
                _open.pop(other).close()
            _open[key] = Session(assignment, settings, secrets, select)
        return _open[key]


def close_all() -> None:
    with _open_lock:
        for key in list(_open):
            _open.pop(key).close()


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
            notes.append(format_error(f"Importing {name}.py", error))
    return True


_MISSING = re.compile(r"module '([\w.]+)' has no attribute '(\w+)'")


def _attribute(results, staged: intake.Staged) -> None:
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
