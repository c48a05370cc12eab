"""The grader's pytest plugin: hidden tests are ordinary pytest tests.

Registered as the ``grader`` plugin (entry point ``pytest11``), so an instructor runs
an assignment's hidden tests against one hand-in from a plain command line::

    pytest solutions/backprop/hidden --handin examples/class/db-mean

and ``grader grade`` runs the very same tests, collected once per job process, for
every student (``grader.hidden.session``). What a hidden test can ask for:

- ``student``: the hand-in's modules, driven through proxies
  (``student.<module>.<Class>(...).forward(x)`` runs in the sandboxed worker);
- ``worker``, ``scorer``: for tests that plan several graded items (each always the current
  student's: ``_OfTheStudent``);
- ``notes`` (function scope): a list; each line a test appends goes into the student's
  report as a note, with no points (e.g. what an optional oracle said);
- ``assignment``, ``reference``, ``answers``, ``seed``, ``settings`` (session scope):
  the assignment, its reference modules, each case's inputs and reference answers
  (made once per session), the course seed and settings;
- ``rng``: a numpy Generator seeded from the course seed and the test's name;
- ``exercise``: each of the assignment's declared exercises (tests are parametrized).

A test marked ``@pytest.mark.graded(part=..., points=...)`` is one all-or-nothing item;
a test that takes ``exercise`` grades that exercise's items. Items are planned before
any test runs, so a test that crashes still counts in the maximum. Nothing here
imports numpy or the sandbox until a hidden test runs: the plugin is loaded in every
pytest session of the environment.
"""
from __future__ import annotations

import threading
import traceback
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

MARKER = "graded(part, points, name=None): one graded item of `part` worth `points` (all or nothing)"
_CONTEXT = pytest.StashKey["Context"]()
_PLANNED = pytest.StashKey[list]()


@dataclass
class Current:
    """The student being graded: their worker, their items, what went wrong on our side."""

    worker: object
    scorer: object
    bugs: list[str] = field(default_factory=list)      # hidden-test failures, for the instructor
    skipped: list[str] = field(default_factory=list)   # tests skipped at run time, with the reason
    notes: list[str] = field(default_factory=list)     # lines hidden tests added for the student


@dataclass
class Context:
    """One pytest session's grading state: set by the grading loop, or by ``--handin``."""

    assignment: object = None
    settings: object = None
    current: Current | None = None
    plain: bool = False   # a plain pytest run: a test fails when one of its items does
    answers: object = None  # the session's Answers, made at first use


def context(config: pytest.Config) -> Context:
    return config.stash.setdefault(_CONTEXT, Context())


# The session this thread runs (each grading session runs pytest in a thread of its own): the
# per-item fixtures read it here rather than take ``request`` - pytest builds a new fixture
# definition (and inspects a signature) every time ``request`` is asked for, ~2 ms a student.
# (A session-scoped fixture would do too, but pytest then keeps two finalizers per item on it.)
_running = threading.local()


# --- hooks ---------------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("grader", "the grader's hidden tests")
    group.addoption("--handin", metavar="FOLDER", default=None,
                    help="grade this hand-in (a student's folder or notebook) with the hidden tests collected")
    group.addoption("--course", dest="grader_course", metavar="DIR", default=None,
                    help="the course whose settings (seed, limits) apply (default: found from the tests' folder)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)
    _running.configs = [*getattr(_running, "configs", []), config]


def pytest_unconfigure(config: pytest.Config) -> None:
    configs = getattr(_running, "configs", [])
    if config in configs:
        configs.remove(config)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``exercise``: each declared exercise; ``protocol``: each one's protocol (layers have one)."""
    for name, of in (("exercise", lambda e: e), ("protocol", lambda e: getattr(e, "protocol", None))):
        if name in metafunc.fixturenames:
            assignment = _assignment_of(metafunc.config, Path(str(metafunc.definition.path)))
            found = [p for p in map(of, assignment.exercises) if p is not None]
            metafunc.parametrize(name, found, ids=[p.part for p in found])


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    """A plain run with ``--handin``: grade that hand-in, once for the whole session."""
    handin = config.getoption("handin", None)
    ctx = context(config)
    if handin and items and ctx.current is None:
        ctx.plain = True
        ctx.assignment = _assignment_of(config, Path(str(items[0].path)))
        from grader import course

        found = course.find(Path(config.getoption("grader_course")) if config.getoption("grader_course")
                            else None, cwd=ctx.assignment.folder)
        ctx.settings = found.settings
        _PlainRun(config, Path(handin), found).start()


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    """A plain ``--handin`` run ends with the hand-in's points, part by part."""
    ctx = context(config)
    if not ctx.plain or ctx.current is None:
        return
    results = ctx.current.scorer.results()
    terminalreporter.section(f"grader: {config.getoption('handin')}")
    parts: dict[str, list[float]] = {}
    for r in results:
        got = parts.setdefault(r.part, [0.0, 0.0])
        got[0] += r.score
        got[1] += r.max_score
    for part, (score, top) in parts.items():
        terminalreporter.write_line(f"{part}: {score:g} / {top:g}")
    total = sum(r.score for r in results), sum(r.max_score for r in results)
    terminalreporter.write_line(f"total: {total[0]:g} / {total[1]:g} ({ctx.current.worker.isolation})")
    for note in [*ctx.current.notes, *(f"not graded (skipped): {why}" for why in ctx.current.skipped)]:
        terminalreporter.write_line(f"note: {note}")


def problems(session: pytest.Session, items: list) -> list[str]:
    """What would make a collected hidden test fail for every student: an unknown fixture,
    a ``graded`` mark without its part and points. Said once, before anyone is graded."""
    found = []
    manager = session._fixturemanager
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        for name in info.names_closure if info else ():
            if name != "request" and name not in getattr(item, "callspec", _NoParams).params \
                    and not manager.getfixturedefs(name, item):
                found.append(f"{item.nodeid}: fixture {name!r} not found (the grader's: assignment, "
                             "settings, seed, reference, answers, worker, scorer, student, rng, notes, "
                             "exercise, protocol)")
        try:
            _marked(item)
        except pytest.UsageError as exc:
            found.append(str(exc))
    return found


class _NoParams:
    params: dict = {}


def _marked(item: pytest.Item) -> tuple[str, float, str] | None:
    """(part, points, name) of the item's ``graded`` mark, if it has one."""
    mark = item.get_closest_marker("graded")
    if mark is None:
        return None
    part = mark.kwargs.get("part", mark.args[0] if mark.args else None)
    points = mark.kwargs.get("points", mark.args[1] if len(mark.args) > 1 else None)
    if not isinstance(part, str) or isinstance(points, bool) or not isinstance(points, int | float) or points < 0:
        raise pytest.UsageError(f"{item.nodeid}: write @pytest.mark.graded(part=\"...\", points=N) "
                                "(a part name and a number of points)")
    return part, float(points), mark.kwargs.get("name") or item.name


def plan(item: pytest.Item, scorer) -> list:
    """The items ``item`` grades, planned in ``scorer``: its ``graded`` marker, or its
    exercise's items. Unmarked tests that grade nothing plan nothing."""
    planned = []
    marked = _marked(item)
    if marked is not None:
        part, points, name = marked
        planned.append(scorer.plan(part, name, points))
    callspec = getattr(item, "callspec", None)
    for value in (callspec.params.values() if callspec else ()):
        if hasattr(value, "items_of"):  # an exercise, or a protocol: it plans its own items
            planned += value.items_of(scorer)
    item.stash[_PLANNED] = planned
    return planned


def gradeable(item: pytest.Item) -> bool:
    """Skipped and xfail tests are not graded (they count in no maximum)."""
    return item.get_closest_marker("skip") is None and item.get_closest_marker("xfail") is None \
        and not any(m.args and m.args[0] is True for m in item.iter_markers("skipif"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    ctx = context(item.config)
    if ctx.current is None or (call.when != "call" and not report.failed):
        return report
    planned = item.stash.get(_PLANNED, None)
    if planned is None:
        planned = plan(item, ctx.current.scorer)
    settle(item, call, report, planned, ctx.current)
    if ctx.plain and call.when == "call":
        bad = [i.result for i in planned if i.result.status != "passed"]
        if bad and report.passed:
            report.outcome = "failed"
            report.longrepr = "\n\n".join(f"{r.name}: {r.status}\n{r.feedback}" for r in bad)
    return report


def settle(item: pytest.Item, call: pytest.CallInfo, report, planned: list, current: Current) -> None:
    """Turn the test's outcome into its items' verdicts; what the items already hold stays."""
    from grader.judging.misconceptions import format_error
    from grader.worker.client import StudentError, WorkerError

    open_items = [i for i in planned if not i.settled]
    excinfo = call.excinfo
    if report.skipped:
        current.scorer.drop(open_items)
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr or "")
        current.skipped.append(f"{item.name}: {reason.removeprefix('Skipped: ')}")
        return
    if excinfo is None:
        for i in open_items:
            if item.get_closest_marker("graded") is not None:
                i.passed("passed")
        return
    error = excinfo.value
    if isinstance(error, AssertionError) and call.when == "call":
        said = _student_message(error, item.name)
        for i in open_items:
            i.failed(said)
            i.result.instructor = str(error)
    elif isinstance(error, StudentError):
        for i in open_items:
            i.error(format_error("your code", error.error))
    elif isinstance(error, WorkerError):
        for i in open_items:
            i.error(str(error), status=error.status)
    else:  # the hidden test itself (or its setup) failed: never the student's doing
        for i in open_items:
            i.error(f"The grader failed on this check ({type(error).__name__}); your instructor has "
                    "been told. It scores 0 until regraded.")
        where = "setting up" if call.when == "setup" else "running"
        current.bugs.append(f"{item.nodeid} ({where}): {type(error).__name__}: {error}\n{_own_frames(error)}")


def _own_frames(error: BaseException) -> str:
    """The traceback without pytest's and pluggy's frames: what the test's author wrote."""
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if not any(part in f.filename for part in ("/_pytest/", "/pluggy/", "/grader/hidden/"))]
    return "".join(traceback.format_list(frames))


def _student_message(error: AssertionError, name: str) -> str:
    """What a student reads for a failed assert: the test author's message, never the
    assert's source or pytest's explanation (they may hold the reference's formula)."""
    text = str(error)
    said = text.split("\nassert ", 1)[0].strip() if "\nassert " in text else \
        ("" if text.startswith("assert ") else text.strip())
    return said or f"The check {name} failed."


# --- fixtures ------------------------------------------------------------------------------
def _config() -> pytest.Config:
    configs = getattr(_running, "configs", None)
    if not configs:
        raise pytest.UsageError("the grader's fixtures are used outside a pytest run of this thread")
    return configs[-1]


def _current() -> Current:
    ctx = context(_config())
    if ctx.current is None:
        raise pytest.UsageError("hidden tests grade a hand-in: run them with --handin FOLDER "
                                "(or through `grader grade`)")
    return ctx.current


def _ctx() -> Context:
    ctx = context(_config())
    if ctx.assignment is None:
        _current()
    return ctx


@pytest.fixture(scope="session")
def assignment():
    return _ctx().assignment


@pytest.fixture(scope="session")
def settings():
    return _ctx().settings


@pytest.fixture(scope="session")
def seed() -> int:
    return _ctx().settings.seed


@pytest.fixture(scope="session")
def reference() -> dict:
    return _ctx().assignment.reference


@pytest.fixture(scope="session")
def answers():
    """Each case's inputs and the reference's answers, made once per session. Like every
    fixture here it asks for no other: pytest resolves an item's whole fixture closure for
    each item, cached or not (8 fixtures a test was ~1 ms of each of 14 items a student)."""
    ctx = _ctx()
    if ctx.answers is None:
        from grader.exercises.base import Answers

        ctx.answers = Answers(ctx.assignment.reference, ctx.settings.seed)
    return ctx.answers


class _OfTheStudent:
    """The ``worker`` or ``scorer`` of whichever student is being graded when it is used.

    Session-scoped stand-ins: pytest sets a function-scoped fixture up and tears it down for
    every item (two hook calls and a finalizer each), twice an item for these two. Attributes
    and methods are the current student's object's; ``student`` and ``notes`` are still made
    per item."""

    __slots__ = ("_of",)

    def __init__(self, of: str):
        object.__setattr__(self, "_of", of)

    def __getattr__(self, name: str):
        return getattr(getattr(_current(), self._of), name)

    def __setattr__(self, name: str, value) -> None:
        setattr(getattr(_current(), self._of), name, value)

    def __repr__(self) -> str:
        return f"<the current student's {self._of}>"


@pytest.fixture(scope="session")
def worker():
    return _OfTheStudent("worker")


@pytest.fixture(scope="session")
def scorer():
    return _OfTheStudent("scorer")


@pytest.fixture
def notes() -> list[str]:
    """Lines for the student's report: what a test says without points (never a score)."""
    return _current().notes


@pytest.fixture
def student():
    from grader.worker.client import Student

    return Student(_current().worker, _ctx().assignment.modules)


@pytest.fixture
def rng(request):
    import numpy as np

    return np.random.default_rng([_ctx().settings.seed, zlib.crc32(request.node.name.encode())])


# --- helpers -------------------------------------------------------------------------------
def _assignment_of(config: pytest.Config, path: Path):
    """The assignment a hidden test belongs to: the loop's, else the folder above it with a manifest."""
    ctx = context(config)
    if ctx.assignment is not None:
        return ctx.assignment
    from grader.assignment import MANIFEST, Assignment

    for folder in Path(path).resolve().parents:
        if (folder / MANIFEST).is_file():
            ctx.assignment = Assignment.load(folder)
            return ctx.assignment
    raise pytest.UsageError(f"{path}: not inside an assignment folder (none above it has {MANIFEST})")


class _PlainRun:
    """``--handin``: stage that one hand-in, start its worker, grade every test of the session."""

    def __init__(self, config: pytest.Config, handin: Path, course):
        self.config, self.handin, self.course = config, handin, course

    def start(self) -> None:
        import contextlib

        from grader import host, intake
        from grader.judging.scoring import Scorer
        from grader.worker.client import Worker

        ctx = context(self.config)
        stack = contextlib.ExitStack()
        self.config.add_cleanup(stack.close)
        if not self.handin.exists():
            raise pytest.UsageError(f"--handin {self.handin}: no such folder or notebook")
        sub = intake.Submission.of(self.handin)
        staging = stack.enter_context(host.staging())
        staged = intake.stage(sub, staging / sub.student, ctx.assignment)
        for note in staged.notes:
            print(f"hand-in: {note}")
        worker = stack.enter_context(Worker(staged.folder, ctx.settings.limits, ctx.settings.sandbox,
                                            uid=host.process_uid(), hide=self.course.secrets(),
                                            modules=ctx.assignment.modules))
        worker.start()
        ctx.current = Current(worker, Scorer())
