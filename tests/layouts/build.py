"""Build, in temp folders, the install layouts a course uses, and grade a small class in each.

A *layout* is where the clone, the interpreter and the environment holding the grader
live, who owns them, and where ``grader`` is run from. ``SPECS`` lists the ones
tests/test_layouts.py exercises; ``Lab`` builds them:

- **The clone** is a snapshot of the repository these tests live in (or
  ``$GRADER_LAYOUT_SOURCE``), taken once per session so every layout, and the wheelhouse,
  see the same files. By default (``GRADER_LAYOUT_METHOD=worktree``) it holds every file
  ``git ls-files --cached --others --exclude-standard`` lists, as the work tree has it
  (uncommitted changes included, no ``.git``): what a clone would hold once those changes
  are committed. ``GRADER_LAYOUT_METHOD=clone`` takes ``git clone`` of it instead
  (committed files only). Each layout gets its own copy, owned by the layout's user.
- **One wheelhouse per session**: ``pip wheel`` of the snapshot (the grader and its runtime
  dependencies only, not the ``test`` extra), plus setuptools and wheel for editable
  builds and pip itself. Every environment is installed from it with ``--no-index``.
- **Environments** are made with ``python -m venv --without-pip`` and filled by the
  wheelhouse's pip run from its wheel (``python pip-X.whl/pip install ...``): the same
  pip that ``ensurepip`` would put there, 6 s less per venv; pip itself is then absent from
  the venv, which grading never needs.
- **Who**: "root" layouts run as root. "user" layouts run, when the tests run as root, as a
  throwaway user (``useradd -m``; ``runuser``; removed at the end); when the tests run as a
  normal user, as that user, and what needs root is reported by ``Lab.unavailable``.
- Layouts are built ``GRADER_LAYOUT_JOBS`` (default 2) at a time in the background, in the
  order the tests will ask for them (``Lab.prefetch``); grading runs in the test itself.
- ``GRADER_LAYOUT_KEEP=1`` keeps every folder and throwaway user and prints where they are.
  A session killed before its clean-up (SIGTERM, a CI timeout) leaves them; the next
  session removes them (``sweep_stale``: what ``made`` lists, once the owner pid is gone).
- ``GRADER_LAYOUT_PYENV`` is the standalone CPython prefix behind the "pyenv" and
  "conda-like" layouts (default ``/root/.pyenv/versions/3.11.7``, this machine's).
"""
from __future__ import annotations

import contextlib
import csv
import functools
import getpass
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCE = Path(os.environ.get("GRADER_LAYOUT_SOURCE") or REPO).resolve()
METHOD = os.environ.get("GRADER_LAYOUT_METHOD", "worktree")  # worktree | clone
PYENV = Path(os.environ.get("GRADER_LAYOUT_PYENV", "/root/.pyenv/versions/3.11.7"))
DEBIAN_PYTHON = Path("/usr/bin/python3")
JOBS = max(1, int(os.environ.get("GRADER_LAYOUT_JOBS", "2")))
KEEP = os.environ.get("GRADER_LAYOUT_KEEP", "") not in ("", "0")
PACKAGE = "backprop-grader"

# The class graded in every layout: two students of examples/class and their scores.
# Points per part are written out (not read from the grader) so a grader that reports
# wrong maxima cannot pass; they must follow the assignment's declarations if its points
# change (every layer part has one "layer protocol" point besides its cases).
PART_MAX = {"MulLayer": 11, "AddLayer": 7, "Relu": 9, "Sigmoid": 9, "Affine": 19,
            "SoftmaxWithLoss": 13, "TwoLayerNet": 14, "ShoppingGraph": 12}
TOTAL = sum(PART_MAX.values())  # 94
EXPECTED = {
    "ada-book": dict(PART_MAX),                   # correct: full marks everywhere
    "db-mean": {**PART_MAX, "Affine": 16},        # db = mean instead of sum: Affine 16/19
}
# What a grader failure looks like on the terminal (grader/cli.py, grader/batch.py).
GRADER_FAILURE = re.compile(r"failed inside the grader|^\s*grader error:|Traceback \(most recent call last\)",
                            re.IGNORECASE | re.MULTILINE)


class Unavailable(Exception):
    """This layout cannot be built here; the message says why (the test skips with it)."""


class CommandFailed(RuntimeError):
    def __init__(self, run: Run, what: str = ""):
        self.run = run
        super().__init__(f"{what or 'command'} failed (exit status {run.returncode}): {run.describe()}")


# ---------------------------------------------------------------------------- specs

@dataclass(frozen=True)
class Spec:
    """One install layout. ``id`` names the test; ``doc`` says what a course does to get it."""
    id: str
    who: str                    # "root" or "user"
    place: str                  # parent of the layout's private 0700 folder: "home", "/tmp", ...
    python: str = "default"     # "default" (root: the tests' interpreter; a user: python3 on
                                #   their PATH), "pyenv" (GRADER_LAYOUT_PYENV), "debian"
    env: str = "venv"           # "venv" beside the clone, "venv-in-clone" (CLONE/.venv),
                                #   "prefix" (no venv: installed into the interpreter's prefix)
    editable: bool = True       # pip install -e CLONE, or the package (wheel) itself
    cwd: str = "clone"          # where grader runs: "clone", or "empty" (an unrelated folder)
    home_mode: int | None = None  # the user's home must have this mode (None: any; 0700 made)
    doc: str = ""


SPECS: list[Spec] = [
    Spec("root-venv-in-clone", "root", "home", env="venv-in-clone",
         doc="python3 -m venv CLONE/.venv && .venv/bin/pip install -e CLONE; the clone in a "
             "private 0700 folder of root's home"),
    Spec("root-tmp", "root", "/tmp", doc="clone and venv (editable) in a private folder under /tmp"),
    Spec("root-var-tmp", "root", "/var/tmp", doc="clone and venv (editable) under /var/tmp"),
    Spec("root-pyenv-home", "root", "home", python="pyenv",
         doc="pyenv in root's 0700 home, a venv from it elsewhere in the same home (editable)"),
    Spec("root-debian-python", "root", "/opt", python="debian",
         doc="a venv made with Debian's /usr/bin/python3 (editable), clone and venv under /opt"),
    Spec("root-conda-like", "root", "/opt", python="pyenv", env="prefix",
         doc="a standalone prefix used directly, conda-style (sys.prefix == sys.base_prefix, no "
             "venv): a copy of the pyenv prefix without its site-packages, RUNPATH "
             "$ORIGIN/../lib as conda ships it, the grader pip-installed (editable) into it; real "
             "conda cannot be downloaded here"),
    Spec("root-non-editable", "root", "/opt", editable=False, cwd="empty",
         doc="pip install CLONE (not -e) in a venv; grader run from an unrelated empty folder"),
    Spec("root-outside", "root", "/opt",
         doc="control: the developers' layout (venv beside the clone, editable, not under /tmp "
             "or a home)"),
    Spec("user-venv-in-clone", "user", "home", env="venv-in-clone",
         doc="a normal user: python3 -m venv CLONE/.venv (editable), clone in a private folder "
             "of their 0700 home"),
    Spec("user-tmp", "user", "/tmp", doc="a normal user: clone and venv (editable) under /tmp"),
    Spec("user-var-tmp", "user", "/var/tmp", doc="a normal user: clone and venv under /var/tmp"),
    Spec("user-pyenv-home", "user", "home", python="pyenv",
         doc="a normal user's own pyenv (~/.pyenv/versions/X, copied from GRADER_LAYOUT_PYENV "
             "without site-packages, RUNPATH its own lib/ as pyenv builds it), a venv from it "
             "elsewhere in the same 0700 home"),
    Spec("user-conda-like", "user", "home", python="pyenv", env="prefix",
         doc="a normal user's standalone prefix used directly, conda-style (as root-conda-like), "
             "in their 0700 home"),
    Spec("user-non-editable", "user", "home", editable=False, cwd="empty",
         doc="a normal user: pip install CLONE (not -e); grader run from an unrelated empty folder"),
    Spec("user-home-0700", "user", "home", python="debian", home_mode=0o700,
         doc="a normal user, home 0700, Debian's python3: venv beside the clone (editable)"),
    Spec("user-home-0750", "user", "home", python="debian", home_mode=0o750,
         doc="a normal user, home 0750, Debian's python3: venv beside the clone (editable)"),
]
SPEC_BY_ID = {s.id: s for s in SPECS}


# ---------------------------------------------------------------------------- running

@dataclass
class Run:
    argv: list[str]
    cwd: Path
    user: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def describe(self, lines: int = 30) -> str:
        def tail(text: str) -> str:
            kept = text.rstrip().splitlines()[-lines:]
            return "\n".join("    " + line for line in kept) or "    (nothing)"
        return (f"\n  $ {' '.join(map(str, self.argv))}\n  (as {self.user}, in {self.cwd}, "
                f"exit {self.returncode}, {self.seconds:.1f} s)\n  stdout:\n{tail(self.stdout)}"
                f"\n  stderr:\n{tail(self.stderr)}")


@dataclass
class Account:
    name: str
    uid: int
    gid: int
    home: Path
    switch: bool          # run commands through runuser: we are root, this is another user
    created: bool = False  # a throwaway user this Lab made (removed at the end)

    @property
    def label(self) -> str:
        mode = stat.S_IMODE(self.home.stat().st_mode)
        return f"{self.name} (uid {self.uid}, home {self.home} mode {mode:04o})"

    def env(self) -> dict[str, str]:
        path = "/usr/local/bin:/usr/bin:/bin"
        if self.uid == 0:
            path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        return {"HOME": str(self.home), "USER": self.name, "LOGNAME": self.name, "PATH": path,
                "LANG": "C.UTF-8", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}

    def run(self, argv, cwd: Path, timeout: float = 900, check: bool = True, what: str = "") -> Run:
        """``argv`` as this account, in ``cwd``, with a clean environment (no PYTHONPATH, no venv)."""
        argv = [str(a) for a in argv]
        env = self.env()
        if self.switch:
            cmd = ["runuser", "-u", self.name, "--", "env", "-i", "-C", str(cwd),
                   *(f"{k}={v}" for k, v in env.items()), *argv]
            kwargs = {"cwd": "/"}
        else:
            cmd, kwargs = argv, {"cwd": cwd, "env": env}
        start = time.monotonic()
        # its own process group, so a hung command ends whole (by that group's id) at the deadline
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL, start_new_session=True, **kwargs)
        try:
            out, err = proc.communicate(timeout=timeout)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            code, err = -1, err + f"\n[timed out after {timeout} s]"
        run = Run(argv, Path(cwd), self.name, code, out, err, time.monotonic() - start)
        if check and code != 0:
            raise CommandFailed(run, what)
        return run

    def own(self, path: Path) -> None:
        """Give ``path`` (recursively) to this account, as a clone it made itself would be."""
        if self.switch:
            subprocess.run(["chown", "-R", f"{self.uid}:{self.gid}", str(path)], check=True)

    def private_dir(self, parent: Path, prefix: str) -> Path:
        """A fresh folder of mode 0700 under ``parent``, owned by this account (mktemp -d)."""
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        if self.switch:
            os.chown(path, self.uid, self.gid)
        return path


def _sh(argv, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kwargs)


def _checked(argv, what: str, **kwargs) -> subprocess.CompletedProcess:
    proc = _sh(argv, **kwargs)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {proc.returncode}): {' '.join(map(str, argv))}\n"
                           f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


# ---------------------------------------------------------------------------- source

def worktree_files(repo: Path) -> list[str]:
    """What a clone would hold if the work tree were committed: tracked + untracked, not ignored."""
    proc = _checked(["git", "-c", "safe.directory=*", "-C", repo, "ls-files", "-z", "--cached",
                     "--others", "--exclude-standard"], "git ls-files")
    return sorted({p for p in proc.stdout.split("\0") if p})


def copy_worktree(repo: Path, dest: Path) -> int:
    """Copy the work tree's files (``worktree_files``) to ``dest``; a tracked file deleted is skipped."""
    count = 0
    for rel in worktree_files(repo):
        src = repo / rel
        if not os.path.lexists(src) or (src.is_dir() and not src.is_symlink()):
            continue  # deleted in the work tree, or a submodule
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)
        count += 1
    return count


# ---------------------------------------------------------------------------- prefixes

def _lib_dir(prefix: Path) -> Path:
    found = sorted(p for p in (prefix / "lib").glob("python3.*") if (p / "os.py").exists())
    if not found:
        raise RuntimeError(f"{prefix} has no lib/python3.*/os.py: not a CPython prefix")
    return found[-1]


def _rpath(path: Path) -> str | None:
    proc = _sh(["patchelf", "--print-rpath", path])
    return proc.stdout.strip() if proc.returncode == 0 else None


def copy_prefix(src: Path, dest: Path, rpath: str) -> None:
    """A copy of the standalone CPython prefix ``src`` at ``dest``, standing on its own.

    Without its site-packages (the folder is kept, empty) and the stdlib's test suite,
    without console scripts of packages that are not copied (their shebangs name ``src``),
    with sysconfig's record of the prefix rewritten, and with every RUNPATH into ``src``
    (pyenv builds with --enable-shared set ``RUNPATH=src/lib``) pointed at the copy, so it
    loads its own libpython even where ``src`` cannot be read. ``rpath``: "absolute"
    (``dest/lib``: what pyenv gives a Python it builds in place) or "origin"
    (``$ORIGIN/../lib``: relocatable, as conda's packages and python-build-standalone, uv's
    Pythons, ship it). The two differ where the loader runs in secure-execution mode (real
    uid != effective uid, e.g. ``setpriv --ruid A --euid B``): glibc then ignores ``$ORIGIN``.
    """
    if rpath not in ("absolute", "origin"):
        raise ValueError(f"rpath={rpath!r}: absolute or origin")
    lib = _lib_dir(src)
    rel = f"./lib/{lib.name}"
    dest.mkdir(parents=True, exist_ok=False)
    pack = subprocess.Popen(["tar", "-C", str(src), f"--exclude={rel}/site-packages/*",
                             f"--exclude={rel}/test", "-cf", "-", "."], stdout=subprocess.PIPE)
    unpack = subprocess.run(["tar", "-C", str(dest), "-xf", "-"], stdin=pack.stdout,
                            capture_output=True, text=True)
    pack.stdout.close()
    if pack.wait() != 0 or unpack.returncode != 0:
        raise RuntimeError(f"copying {src} to {dest} failed: {unpack.stderr}")
    for script in (dest / "bin").iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        with open(script, "rb") as fh:
            first = fh.readline(4096)
        if first.startswith(b"#!") and str(src).encode() in first:
            script.unlink()
    # The build's own record of where it lives (sysconfig's LIBDIR, prefix, ...) follows it,
    # as conda's prefix replacement and a pyenv built in place would have it.
    lib_copy = dest / "lib" / lib.name
    for path in [*lib_copy.glob("_sysconfigdata*.py"), *lib_copy.glob("config-*/Makefile"),
                 *(dest / "lib" / "pkgconfig").glob("*.pc"), *(dest / "bin").glob("python3*-config")]:
        if path.is_file() and not path.is_symlink():
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
            path.write_text(text.replace(str(src), str(dest)), encoding="utf-8", errors="surrogateescape")
    for stale in (lib_copy / "__pycache__").glob("_sysconfigdata*.pyc"):
        stale.unlink()
    elves = [*(dest / "bin").iterdir(), *(dest / "lib").glob("*.so*"),
             *(dest / "lib" / lib.name / "lib-dynload").glob("*.so")]
    for path in elves:
        if path.is_symlink() or not path.is_file():
            continue
        current = _rpath(path)
        if not current or str(src) not in current:
            continue
        parts = []
        for entry in current.split(":"):
            if entry == str(src) or entry.startswith(str(src) + "/"):
                inside = dest / os.path.relpath(entry, src)
                entry = (str(inside) if rpath == "absolute"
                         else "$ORIGIN/" + os.path.relpath(inside, path.parent))
            parts.append(entry)
        _checked(["patchelf", "--set-rpath", ":".join(parts), path], "patchelf --set-rpath")


def ensure_patchelf() -> None:
    if shutil.which("patchelf"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise Unavailable("needs root: patchelf is missing (apt-get install patchelf), and the "
                          "copied interpreter's RUNPATH points into the original prefix")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "patchelf"]
    if _sh(install, env=env).returncode != 0:
        _sh(["apt-get", "update", "-qq"], env=env)
        _checked(install, "apt-get install patchelf", env=env)


# ---------------------------------------------------------------------------- layouts

@dataclass
class Layout:
    spec: Spec
    account: Account
    base: Path          # the layout's private folder (clone, venv, subs, out live here)
    clone: Path
    env_dir: Path       # the venv, or the conda-like prefix
    python: Path
    subs: Path
    out: Path
    cwd: Path
    facts: dict
    build_seconds: float
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _grade: Run | None = field(default=None, repr=False)
    _doctor: Run | None = field(default=None, repr=False)

    @property
    def grader(self) -> Path:
        return self.env_dir / "bin" / "grader"

    def grade(self) -> Run:
        """``grader grade SUBS --out OUT`` from the layout's environment (once; cached)."""
        with self._lock:
            if self._grade is None:
                self._grade = self.account.run([self.grader, "grade", self.subs, "--out", self.out],
                                               cwd=self.cwd, timeout=600, check=False)
            return self._grade

    def doctor(self) -> Run:
        with self._lock:
            if self._doctor is None:
                self._doctor = self.account.run([self.grader, "doctor"], cwd=self.cwd, timeout=300,
                                                check=False)
            return self._doctor

    def describe(self) -> str:
        s = self.spec
        return (f"layout {s.id}: {s.doc}\n  user: {self.account.label}\n"
                f"  python: {self.facts.get('executable')} (sys.prefix {self.facts.get('prefix')}, "
                f"base {self.facts.get('base_prefix')}, {self.facts.get('version')})\n"
                f"  environment: {self.env_dir} ({'editable' if s.editable else 'non-editable'})\n"
                f"  clone: {self.clone}\n  grader run in: {self.cwd}\n"
                f"  built in {self.build_seconds:.1f} s")


def grade_problems(layout: Layout) -> list[str]:
    """Everything wrong with the layout's ``grader grade`` run; empty when it graded correctly."""
    run = layout.grade()
    problems = []
    if run.returncode != 0:
        problems.append(f"grader grade exited {run.returncode} (expected 0)")
    if GRADER_FAILURE.search(run.output):
        line = next(ln for ln in run.output.splitlines() if GRADER_FAILURE.search(ln))
        problems.append(f"the terminal reports a grader failure: {line.strip()!r}")
    errors = layout.out / "grader-errors.log"
    if errors.exists() and errors.read_text(errors="replace").strip():
        text = errors.read_text(errors="replace").strip().splitlines()
        last = [ln for ln in text if ln and not ln.startswith(" ")][-1:]  # the exception line
        problems.append(f"{errors} is not empty: {'; '.join(text[:1] + last)}")
    grades = layout.out / "grades.csv"
    if not grades.exists():
        problems.append(f"{grades} was not written")
        return problems
    with open(grades, newline="", encoding="utf-8") as fh:
        rows = {row.get("student"): row for row in csv.DictReader(fh)}
    for student, parts in EXPECTED.items():
        row = rows.get(student)
        if row is None:
            problems.append(f"{student}: no row in grades.csv (students: {sorted(rows)})")
            continue
        wrong = []
        for column, want in [("score", sum(parts.values())), ("max_score", TOTAL), *parts.items()]:
            got = row.get(column)
            try:
                ok = abs(float(got) - want) < 1e-6
            except (TypeError, ValueError):
                ok = False
            if not ok:
                wrong.append(f"{column} {got} (expected {want})")
        if wrong:
            why = _why(layout.out / "students" / student / "report.json")
            problems.append(f"{student}: {', '.join(wrong)}{why}")
    return problems


def check_expected(class_dir: Path) -> None:
    """``EXPECTED`` agrees with the class's EXPECTED.json: "full" parts at their maximum, others below."""
    verdicts = json.loads((class_dir / "EXPECTED.json").read_text(encoding="utf-8"))
    for student, parts in EXPECTED.items():
        if not (class_dir / student).is_dir() or student not in verdicts:
            raise RuntimeError(f"{class_dir} has no student {student} (or no EXPECTED.json entry)")
        for part, points in parts.items():
            verdict = verdicts[student].get(part)
            verdict = verdict[0] if isinstance(verdict, list) else verdict
            if (verdict == "full") != (points == PART_MAX[part]):
                raise RuntimeError(f"layouts.build.EXPECTED gives {student} {points}/{PART_MAX[part]} "
                                   f"for {part}, {class_dir}/EXPECTED.json says {verdict!r}")


def _why(report: Path) -> str:
    """The grader's own notes and first failing feedback for a student, to explain a wrong score."""
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"\n    ({report} unreadable)"
    notes = [str(n) for n in data.get("notes") or []]
    bad = [t for t in data.get("tests") or [] if t.get("status") != "passed"]
    feedback = [f"{t.get('name')}: {t.get('status')}: {str(t.get('feedback', ''))[:300]}" for t in bad[:2]]
    lines = [f"report.json: {data.get('isolation')}", *notes[:3], *feedback]
    return "".join(f"\n    {line}" for line in lines)


# ---------------------------------------------------------------------------- the lab

def _usable(program: Path) -> bool:
    """``program`` exists and this user may run it (False, not PermissionError, under a 0700 home)."""
    return os.access(program, os.R_OK | os.X_OK)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@functools.cache
def _python_version(python: Path) -> str | None:
    proc = _sh([python, "-c", "import sys; print('{}.{}'.format(*sys.version_info[:2]))"], timeout=60)
    return proc.stdout.strip() if proc.returncode == 0 else None


class Lab:
    """Builds layouts on demand (or ahead, ``prefetch``) and removes everything in ``close``."""

    def __init__(self) -> None:
        self.is_root = os.geteuid() == 0
        self.swept = sweep_stale()  # what sessions killed before their clean-up left behind
        self.id = secrets.token_hex(3)
        self.root = Path(tempfile.mkdtemp(prefix=f"grader-layouts-{self.id}-"))
        self.root.chmod(0o755)  # the wheelhouse must be readable by the throwaway users
        (self.root / OWNER).write_text(json.dumps({"pid": os.getpid(), "started": _started(os.getpid())}))
        self.snapshot = self.root / "source"
        self.wheels = self.root / "wheels"
        self.wheel_python = sys.version_info[:2]
        self._prepared: BaseException | bool = False
        self._lock = threading.RLock()
        self._prepare_lock = threading.Lock()
        self._user_lock = threading.Lock()
        self._pyenv_lock = threading.Lock()
        self._accounts: dict[str, Account] = {}
        self._user_pyenv: dict[str, Path] = {}
        self._dirs: list[Path] = []
        self._futures: dict[str, Future] = {}
        self._pool = ThreadPoolExecutor(JOBS, thread_name_prefix="layout")
        self.prepare_seconds = 0.0

    # -- what cannot be built here, and why
    def unavailable(self, spec: Spec) -> str | None:
        if spec.who == "root" and not self.is_root:
            return f"needs root: {spec.id} is a layout of root's own"
        if spec.who == "user" and self.is_root and not (shutil.which("useradd") and shutil.which("runuser")):
            return "needs useradd and runuser to make a throwaway user"
        if spec.who == "user" and not self.is_root and spec.home_mode is not None:
            home = Path.home()
            if _mode(home) != spec.home_mode:
                return (f"needs root: a throwaway user whose home has mode {spec.home_mode:04o} "
                        f"(this user's home {home} has {_mode(home):04o})")
        if spec.python == "debian":
            if not _usable(DEBIAN_PYTHON):
                return f"Debian's {DEBIAN_PYTHON} is not installed"
            version, wanted = _python_version(DEBIAN_PYTHON), "{}.{}".format(*self.wheel_python)
            if version != wanted:
                return f"{DEBIAN_PYTHON} is Python {version}; the wheelhouse is built for {wanted}"
        if spec.python == "pyenv":
            copying = spec.env == "prefix" or (spec.who == "user" and self.is_root)
            if (copying or spec.who == "root") and not _usable(PYENV / "bin" / "python3"):
                if self.is_root:
                    return f"no pyenv interpreter at {PYENV} (set GRADER_LAYOUT_PYENV)"
                return (f"needs root: copies {PYENV} (not readable by this user, or absent; "
                        "set GRADER_LAYOUT_PYENV) into a prefix of its own")
            if copying and not shutil.which("patchelf") and not self.is_root:
                return ("needs root: patchelf is missing (apt-get install patchelf) to copy "
                        f"{PYENV} into a prefix of its own")
            if spec.who == "user" and not self.is_root and spec.env != "prefix" and not self._own_pyenv():
                return (f"needs root: copies {PYENV} into a throwaway user's ~/.pyenv; this user "
                        f"has no ~/.pyenv/versions/{PYENV.name}")
        return None

    def _own_pyenv(self) -> Path | None:
        candidate = Path.home() / ".pyenv" / "versions" / PYENV.name
        return candidate if _usable(candidate / "bin" / "python3") else None

    # -- building
    def prefetch(self, specs: list[Spec]) -> None:
        """Start building, in the background, every spec that can be built here, in this order."""
        for spec in specs:
            if self.unavailable(spec) is None:
                self._submit(spec)

    def _submit(self, spec: Spec) -> Future:
        with self._lock:
            if spec.id not in self._futures:
                self._futures[spec.id] = self._pool.submit(self._build, spec)
            return self._futures[spec.id]

    def layout(self, spec: Spec) -> Layout:
        """The built layout (waits for it); ``Unavailable`` with the reason when it cannot be built."""
        reason = self.unavailable(spec)
        if reason:
            raise Unavailable(reason)
        return self._submit(spec).result()

    def prepare(self) -> None:
        """Snapshot the source and build the wheelhouse, once for the session."""
        with self._prepare_lock:
            if isinstance(self._prepared, BaseException):
                raise RuntimeError("preparing the layouts failed earlier") from self._prepared
            if self._prepared:
                return
            start = time.monotonic()
            try:
                self._prepare()
            except BaseException as exc:
                self._prepared = exc
                raise
            self._prepared = True
            self.prepare_seconds = time.monotonic() - start

    def _prepare(self) -> None:
        if METHOD == "clone":
            # a repository of another user: git's upload-pack honours safe.directory only from
            # a system or global config, so give this one command a global config of its own
            trust = self.root / "gitconfig"
            trust.write_text("[safe]\n\tdirectory = *\n", encoding="utf-8")
            _checked(["git", "clone", "--quiet", "--no-hardlinks", SOURCE, self.snapshot], "git clone",
                     env={**os.environ, "GIT_CONFIG_GLOBAL": str(trust)})
        elif METHOD == "worktree":
            copy_worktree(SOURCE, self.snapshot)
        else:
            raise ValueError(f"GRADER_LAYOUT_METHOD={METHOD!r}: use worktree or clone")
        check_expected(self.snapshot / "examples" / "class")
        source = self.root / "wheel-source"  # pip wheel builds in the tree: keep the snapshot clean
        shutil.copytree(self.snapshot, source, symlinks=True)
        extras = ["setuptools", "wheel"]
        try:
            import pip
            extras.append(f"pip=={pip.__version__}")
        except ImportError:
            extras.append("pip")
        env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        env.pop("PYTHONPATH", None)
        _checked([sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", self.wheels,
                  source, *extras], "pip wheel (the session's wheelhouse)", env=env)
        shutil.rmtree(source)
        _checked(["chmod", "-R", "a+rX", self.root], "chmod")
        if not self.pip_wheel.exists():
            raise RuntimeError(f"no pip wheel in {self.wheels}")

    @property
    def pip_wheel(self) -> Path:
        found = sorted(self.wheels.glob("pip-*.whl"))
        return found[-1] if found else self.wheels / "pip-missing.whl"

    def account(self, spec: Spec) -> Account:
        if spec.who == "root":
            key = "root"
        elif not self.is_root:
            key = "self"
        else:
            key = f"user{spec.home_mode or 0o700:o}"
        with self._user_lock:
            if key not in self._accounts:
                self._accounts[key] = self._make_account(key, spec.home_mode or 0o700)
            return self._accounts[key]

    def _make_account(self, key: str, mode: int) -> Account:
        if key == "root":
            return Account("root", 0, 0, Path(pwd.getpwuid(0).pw_dir), switch=False)
        if key == "self":
            pw = pwd.getpwuid(os.getuid())
            return Account(getpass.getuser(), pw.pw_uid, pw.pw_gid, Path.home(), switch=False)
        name = f"grl{self.id}{mode:o}"
        self._record("user", name)
        _checked(["useradd", "-m", "-s", "/bin/bash", name], f"useradd {name}")
        pw = pwd.getpwnam(name)
        home = Path(pw.pw_dir)
        home.chmod(mode)
        return Account(name, pw.pw_uid, pw.pw_gid, home, switch=True, created=True)

    def _place(self, spec: Spec, account: Account) -> Path:
        return account.home if spec.place == "home" else Path(spec.place)

    def _base_python(self, spec: Spec, account: Account) -> Path:
        if spec.python == "debian":
            return DEBIAN_PYTHON
        if spec.python == "pyenv":
            if account.uid == 0:
                return PYENV / "bin" / "python3"
            if not account.switch:
                return self._own_pyenv() / "bin" / "python3"
            return self._user_pyenv_copy(account) / "bin" / "python3"
        if account.switch:  # a throwaway user: python3 on their PATH
            found = shutil.which("python3", path=account.env()["PATH"])
            if not found:
                raise Unavailable("no python3 on a normal user's PATH")
            return Path(found)
        return Path(getattr(sys, "_base_executable", sys.executable))

    def _user_pyenv_copy(self, account: Account) -> Path:
        """The user's own pyenv: ~/.pyenv/versions/X, a copy of GRADER_LAYOUT_PYENV (once per user)."""
        with self._pyenv_lock:
            if account.name not in self._user_pyenv:
                ensure_patchelf()
                dest = account.home / ".pyenv" / "versions" / PYENV.name
                dest.parent.mkdir(parents=True)
                copy_prefix(PYENV, dest, rpath="absolute")  # as pyenv builds it in place
                account.own(account.home / ".pyenv")
                self._user_pyenv[account.name] = dest
            return self._user_pyenv[account.name]

    def _build(self, spec: Spec) -> Layout:
        self.prepare()
        start = time.monotonic()
        account = self.account(spec)
        base = account.private_dir(self._place(spec, account), f"grader-layout-{self.id}-")
        with self._lock:
            self._dirs.append(base)
            self._record("dir", str(base))
        clone, subs = base / "clone", base / "subs"
        shutil.copytree(self.snapshot, clone, symlinks=True)
        for student in EXPECTED:
            shutil.copytree(self.snapshot / "examples" / "class" / student, subs / student)
        if spec.cwd == "empty":
            (base / "empty").mkdir()
        account.own(base)
        if spec.env == "prefix":
            ensure_patchelf()
            env_dir = base / "miniconda3"
            copy_prefix(PYENV, env_dir, rpath="origin")  # relocatable, as conda ships it
            account.own(env_dir)
            python = env_dir / "bin" / "python3"
        else:
            env_dir = clone / ".venv" if spec.env == "venv-in-clone" else base / "venv"
            account.run([self._base_python(spec, account), "-m", "venv", "--without-pip", env_dir],
                        cwd=base, what="python -m venv")
            python = env_dir / "bin" / "python"
        target = ["-e", clone] if spec.editable else [PACKAGE]
        account.run([python, self.pip_wheel / "pip", "install", "--quiet", "--no-index",
                     "--find-links", self.wheels, *target], cwd=base, what="pip install")
        probe = account.run([python, "-c", _PROBE], cwd=base, what="the environment's python")
        facts = json.loads(probe.stdout)
        if spec.env == "prefix":
            if facts["prefix"] != facts["base_prefix"] or Path(facts["prefix"]) != env_dir:
                raise RuntimeError(f"{env_dir} is not a standalone prefix: {facts}")
            if f"{env_dir}/lib/libpython" not in facts["maps"]:
                raise RuntimeError(f"{python} does not load its own libpython: {facts['maps']}")
        elif facts["prefix"] == facts["base_prefix"]:
            raise RuntimeError(f"{env_dir} is not a venv: {facts}")
        return Layout(spec, account, base, clone, env_dir, python, subs, base / "out",
                      base / "empty" if spec.cwd == "empty" else clone, facts,
                      time.monotonic() - start)

    def _record(self, kind: str, value: str) -> None:
        """Note what this session made, for ``sweep_stale`` should it be killed before ``close``."""
        with self._lock, open(self.root / MADE, "a", encoding="utf-8") as fh:
            fh.write(f"{kind} {value}\n")

    # -- the end
    def close(self) -> list[str]:
        """Remove every folder and throwaway user (or keep them: GRADER_LAYOUT_KEEP=1); say what."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        said = []
        users = [a for a in self._accounts.values() if a.created]
        if KEEP:
            (self.root / KEPT).touch()
            said.append(f"kept (GRADER_LAYOUT_KEEP): {self.root}, "
                        + ", ".join(map(str, self._dirs)) + "".join(f"; user {a.label}" for a in users))
            return said
        for path in [*self._dirs, self.root]:
            shutil.rmtree(path, ignore_errors=True)
        for account in users:
            said += _remove_user(account)
        return said


OWNER, MADE, KEPT = "owner.json", "made", "kept"


def _started(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot), to tell it from a later one with its pid."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def sweep_stale() -> list[str]:
    """Remove what earlier sessions, killed before their clean-up, left: folders, throwaway users."""
    said = []
    for session in Path(tempfile.gettempdir()).glob("grader-layouts-*"):
        try:
            owner = json.loads((session / OWNER).read_text())
            made = (session / MADE).read_text().splitlines() if (session / MADE).exists() else []
        except (OSError, ValueError):
            continue  # not ours to judge (another user's, or half made)
        pid, started = int(owner.get("pid", 0)), owner.get("started", "")
        alive = _started(pid) == started if started else Path(f"/proc/{pid}").exists()
        if (session / KEPT).exists() or alive:
            continue  # kept on purpose, or its session is still running
        for line in made:
            kind, _, value = line.partition(" ")
            if kind == "dir" and Path(value).name.startswith("grader-layout-"):
                shutil.rmtree(value, ignore_errors=True)
            elif kind == "user" and value.startswith("grl") and os.geteuid() == 0:
                with contextlib.suppress(KeyError):
                    pw = pwd.getpwnam(value)
                    said += _remove_user(Account(value, pw.pw_uid, pw.pw_gid, Path(pw.pw_dir), True, True))
        shutil.rmtree(session, ignore_errors=True)
        said.append(f"removed what a killed session left: {session} ({len(made)} folders and users)")
    return said


def _remove_user(account: Account) -> list[str]:
    """userdel -r, after ending (by pid) any process the tests left running as that user."""
    for _ in range(3):
        proc = _sh(["userdel", "-r", account.name])
        if proc.returncode in (0, 12):  # 12: the home could not be removed (already gone)
            return []
        for pid in _pids_of(account.uid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
    return [f"could not remove user {account.name}: {proc.stderr.strip()}"]


def _pids_of(uid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat().st_uid == uid:
                    pids.append(int(entry.name))
    return pids


_PROBE = """
import json, sys
maps = open('/proc/self/maps').read()
libs = sorted({l.split()[-1] for l in maps.splitlines() if 'libpython' in l})
print(json.dumps({'executable': sys.executable, 'prefix': sys.prefix, 'base_prefix': sys.base_prefix,
                  'version': sys.version.split()[0], 'maps': ' '.join(libs)}))
"""
