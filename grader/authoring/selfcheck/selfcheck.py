"""Your self-check, message first: every failure starts with the sentence that matters.

PYTEST_DONT_REWRITE

pytest runs this file's hooks through conftest.py (``pytest`` in this folder). For each failed
check it prints the check's own message and none of the checker's code; when your code
raised an exception, it names your method and shows only the lines of *your* files the
call went through. At the end, "what to fix" lists every failure with its whole message.
``pytest --part NAME`` runs only the checks of one part.

In a notebook, ``import selfcheck; selfcheck.run("NAME")`` runs the same checks of part
NAME on the code defined in the notebook and prints one line per check (✓ or ✗ and the
message). It never changes your grade. `grader release` writes this file: do not edit it.
"""
from __future__ import annotations

import contextlib
import io
import linecache
import os
import re
import sys
import types
from pathlib import Path

try:
    import pytest
except ImportError:  # a notebook kernel without pytest: run() says how to get it
    pytest = None

__all__ = ["pytest_addoption", "pytest_configure", "pytest_collection_modifyitems", "pytest_runtest_makereport",
           "pytest_terminal_summary"]  # what conftest.py takes: the hooks

STUDENT_FILES: tuple = ()  # the files students write (conftest.py sets them)
HERE = Path(__file__).resolve().parent
_namespace: dict | None = None  # the notebook's globals while run() checks them
_AUTOLOAD = "PYTEST_DISABLE_PLUGIN_AUTOLOAD"


# ------------------------------------------------------------------ what a failure says

class Failure:
    """A failed check as pytest shows it: the message, then (if your code raised) your lines."""

    def __init__(self, text: str):
        self.text = text
        self.reprcrash = _Crash(text.split("\n", 1)[0])  # read by pytest's one-line summaries and JUnit

    def toterminal(self, tw) -> None:
        for line in self.text.split("\n"):
            tw.line(line)

    def __str__(self) -> str:
        return self.text


class _Crash:
    def __init__(self, message: str):
        self.message = message

    def __str__(self) -> str:
        return self.message


def explain(error: BaseException, tb: types.TracebackType | None) -> str:
    """The failure's text, its first line whole: the checker's message, or what your code raised and where."""
    frames = []
    while tb is not None:
        if _is_students(tb.tb_frame):
            frames.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    kind = type(error).__name__
    if isinstance(error, SyntaxError) and error.filename and _is_student_file(error.filename):
        text = (error.text or "").strip()
        return f"{_where(error.filename)} has a syntax error at line {error.lineno}: {error.msg}" + \
            (f"\n    {text}" if text else "")
    missing = _missing(error)
    if missing:
        return missing
    if not frames:
        if isinstance(error, AssertionError) or (pytest is not None and isinstance(error, pytest.fail.Exception)):
            return (getattr(error, "msg", None) or str(error)).strip() or f"{kind} (the check gave no message)"
        return f"{kind}: {error} (raised inside the self-check, by what your code returned)"
    outer, inner = _qualname(frames[0][0]), _qualname(frames[-1][0])
    who = inner if inner == outer else f"{inner} (called by {outer})"
    if isinstance(error, NotImplementedError):
        return f"{who} is not implemented yet"
    message = str(error).split("\n")
    lines = [f"{who} raised {kind}" + (f": {message[0]}" if message[0] else ""), *message[1:]]
    for frame, lineno in frames:
        lines.append(f"  {_where(frame.f_code.co_filename)}, line {lineno}, in {_qualname(frame)}")
        code = linecache.getline(frame.f_code.co_filename, lineno, frame.f_globals).strip()
        if code:
            lines.append(f"    {code}")
    return "\n".join(lines)


def _module_names() -> dict[str, str]:
    """module name -> file, for the files students write."""
    return {f[:-3].replace("/", "."): f for f in STUDENT_FILES}


def _student_paths() -> set[Path]:
    if STUDENT_FILES:
        return {(HERE / f).resolve() for f in STUDENT_FILES}
    ours = {"conftest.py", Path(__file__).name}  # no list given: every file here but the checker's
    return {p.resolve() for p in HERE.glob("*.py")
            if p.name not in ours and not p.name.startswith("test_") and not p.name.endswith("_test.py")}


def _is_student_file(filename: str) -> bool:
    try:
        return Path(filename).resolve() in _student_paths()
    except (OSError, ValueError):
        return False


def _is_students(frame: types.FrameType) -> bool:
    if _namespace is not None and frame.f_globals is _namespace:  # a notebook cell's code
        return True
    return _is_student_file(frame.f_code.co_filename)


def _qualname(frame: types.FrameType) -> str:
    code = frame.f_code
    if code.co_name == "<module>":
        return f"importing {_where(code.co_filename)}"
    name = getattr(code, "co_qualname", None)  # Python 3.11+
    if name is None:
        owner = frame.f_locals.get("self")
        name = f"{type(owner).__name__}.{code.co_name}" if owner is not None else code.co_name
    return name.replace(".<locals>.", ".")


def _where(filename: str) -> str:
    """``layer.py`` for a file here, ``Cell In[7]`` for a notebook cell."""
    with contextlib.suppress(Exception):
        cell = sys.modules["IPython"].get_ipython().compile.format_code_name(filename)
        if cell:
            return " ".join(cell)
    path = Path(filename)
    with contextlib.suppress(ValueError, OSError):
        return path.resolve().relative_to(HERE).as_posix()
    return path.name


def _missing(error: BaseException) -> str | None:
    """A name of your files the check needs but cannot find: say which, and what to do."""
    modules = _module_names()
    thing = module = None
    if isinstance(error, ImportError) and error.name in modules:
        module = error.name
        found = re.match(r"cannot import name '(\w+)'", str(error))
        if found:
            thing = found.group(1)
        elif isinstance(error, ModuleNotFoundError):
            return f"{modules[module]} is missing from this folder: the self-check imports it"
    elif isinstance(error, AttributeError) and isinstance(getattr(error, "obj", None), types.ModuleType) \
            and error.obj.__name__ in modules:
        module, thing = error.obj.__name__, error.name
    if thing is None:
        return None
    if _namespace is not None:
        return f"{thing} is not defined yet: run the cell that defines it (and the cells above it) first"
    return f"{modules[module]} has no {thing}: keep the names the assignment gives"


# ------------------------------------------------------------------ the pytest plugin

def _hookwrapper(function):
    return pytest.hookimpl(hookwrapper=True)(function) if pytest is not None else function


def pytest_addoption(parser) -> None:
    parser.addoption("--part", action="append", default=[], metavar="NAME",
                     help="run only the checks of this part (the tests marked part(NAME))")


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "part(name): the part of the assignment this test checks")


def pytest_collection_modifyitems(config, items: list) -> None:
    """``--part NAME``: the tests marked ``part(NAME)``; every test if none declares a part."""
    wanted = config.getoption("part", None)  # not an option if pytest found conftest.py late
    if not wanted or not any(item.get_closest_marker("part") for item in items):
        return
    keep = [item for item in items if any(name in mark.args for mark in item.iter_markers("part")
                                          for name in wanted)]
    if not keep:
        parts = sorted({a for item in items for mark in item.iter_markers("part") for a in mark.args})
        raise pytest.UsageError(f"no check is marked part({', '.join(wanted)}); the parts: {', '.join(parts)}")
    config.hook.pytest_deselected(items=[item for item in items if item not in keep])
    items[:] = keep


@_hookwrapper
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.when == "call" and call.excinfo is not None:
        report.longrepr = Failure(explain(call.excinfo.value, call.excinfo.tb))


def pytest_terminal_summary(terminalreporter) -> None:
    """"what to fix" instead of pytest's short summary of failures, which cuts messages to the width."""
    failed = terminalreporter.stats.get("failed", [])
    if not failed or "f" not in terminalreporter.reportchars:
        return
    terminalreporter.reportchars = terminalreporter.reportchars.replace("f", "")
    terminalreporter.write_sep("=", "what to fix")
    for report in failed:
        terminalreporter.write_line(f"FAILED {report.nodeid} - {_first_line(report)}")


def _first_line(report) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    return crash.message.split("\n")[0] if crash is not None else str(report.longrepr).split("\n")[0]


# ------------------------------------------------------------------ in a notebook

def run(part: str | None = None, namespace: dict | None = None) -> None:
    """Run the self-check of ``part`` (all of it if None) on the code defined in this notebook.

    The classes are the notebook's (``namespace``, default: the caller's globals), seen by
    the checks as modules named after the files students write. Prints ✓/✗ per check; never
    raises and never writes to stderr (it runs in a graded cell). Under nbgrader's autograde
    it does nothing: the grader's own checks run in that cell.
    """
    if os.environ.get("NBGRADER_EXECUTION") == "autograde":
        return
    try:
        text = _run(part, namespace if namespace is not None else sys._getframe(1).f_globals)
    except Exception as error:  # noqa: BLE001 - a broken self-check must not break the cell
        text = f"The self-check could not run ({type(error).__name__}: {error})."
    print(text)


def _run(part: str | None, namespace: dict) -> str:
    global _namespace
    if pytest is None:
        return "The self-check needs pytest: run `%pip install pytest` in a cell, then restart the kernel."
    tests = sorted({*HERE.glob("test_*.py"), *HERE.glob("*_test.py")})
    if not tests:
        return f"No self-check in {HERE}."
    checks = _Checks(namespace)
    args = [*map(str, tests), "-p", "no:cacheprovider", "-p", "no:faulthandler", "--capture=sys"]
    args += ["--part", part] if part else []
    before, autoload = set(sys.modules), os.environ.get(_AUTOLOAD)
    out, _namespace = io.StringIO(), namespace
    os.environ[_AUTOLOAD] = "1"  # other installed pytest plugins have no say here, and cost seconds
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = pytest.main(args, plugins=[checks])
    finally:
        _namespace = None
        if autoload is None:
            del os.environ[_AUTOLOAD]
        else:
            os.environ[_AUTOLOAD] = autoload
        for name in set(sys.modules) - before:  # the next run imports the checks afresh
            if name != __name__ and _inside(getattr(sys.modules[name], "__file__", None)):
                del sys.modules[name]
    title = f"Self-check of {part}" if part else "Self-check"
    if not checks.results:
        said = [line.removeprefix("ERROR").lstrip(": ") for line in out.getvalue().splitlines()
                if line.startswith("ERROR")]  # a usage error, or a check that could not be collected
        return f"{title}: no check ran ({'; '.join(said) or f'pytest exit code {int(code)}'})."
    lines = [f"{title} (it does not change your grade):"]
    for name, (status, text) in checks.results.items():
        first, *rest = text.split("\n") if text else [""]
        mark = {"passed": "✓", "failed": "✗"}.get(status, "-")
        lines.append(f"{mark} {name}" + (f": {first}" if first else ""))
        lines += [f"    {line}" for line in rest]
    failed = sum(status == "failed" for status, _ in checks.results.values())
    total = len(checks.results)
    lines.append(f"{failed} of {total} check{'s' * (total != 1)} failed." if failed else
                 "It passes." if total == 1 else f"All {total} pass.")
    return "\n".join(lines)


def _inside(filename: str | None) -> bool:
    with contextlib.suppress(TypeError, ValueError, OSError):
        return Path(filename).resolve().is_relative_to(HERE)
    return False


class _Checks:
    """pytest plugin for one notebook run: the notebook's code as the student's modules; each check's outcome."""

    def __init__(self, namespace: dict):
        self.namespace = namespace
        self.results: dict[str, tuple[str, str]] = {}  # check -> (passed | failed | skipped, what it said)
        self.saved: dict[str, types.ModuleType | None] = {}

    def pytest_configure(self, config) -> None:  # after conftest.py named the files
        names = {k: v for k, v in self.namespace.items() if not (k.startswith("__") and k.endswith("__"))}
        for name in _module_names():  # every file sees every name: a notebook shares one namespace
            self.saved[name] = sys.modules.get(name)
            module = types.ModuleType(name, "the notebook's code, as this file")
            module.__dict__.update(names)
            sys.modules[name] = module

    def pytest_unconfigure(self, config) -> None:
        for name, module in self.saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module

    def pytest_runtest_logreport(self, report) -> None:
        name = report.nodeid.split("::", 1)[-1]
        if report.failed:
            said = report.longrepr.text if isinstance(report.longrepr, Failure) else report.longreprtext
            self.results[name] = ("failed", said)
        elif report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
            self.results[name] = ("skipped", f"skipped ({reason.removeprefix('Skipped: ')})")
        elif report.when == "call":
            self.results.setdefault(name, ("passed", ""))
