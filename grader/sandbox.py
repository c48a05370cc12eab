"""The OS sandbox around a worker: what the student's code can see, touch and use.

Full isolation is bubblewrap with whitelist binds only. Inside, the sandbox holds
``/usr`` (read-only), the interpreter's prefix (read-only) with every site-packages
folder replaced by an empty tmpfs into which only the whitelisted distributions
(numpy) are bound, the worker code at ``/worker`` and the submission at
``/submission`` (both read-only), a private size-capped ``/tmp``, and its own
``/proc`` and ``/dev``. The grader package, the repository, the editable-install
finder and ``.pth`` files, ``/etc``, ``/home`` and the rest of ``/root`` are simply
not there. Namespaces: PID, network (no loopback either), IPC, UTS, cgroup.

Who the submission runs as:

* Grader running as root (this machine): bubblewrap runs privileged (it needs root to
  read an interpreter under a 0700 ``/root``), *without* a user namespace, because a
  privileged ``--unshare-all`` maps the sandbox uid to host uid 0 - the submission
  would still be root on the host and ``RLIMIT_NPROC`` would not apply. Instead all
  capabilities are dropped except SETUID/SETGID/SETPCAP, and ``setpriv`` (util-linux)
  inside the sandbox switches to ``uid`` (65534 by default), clears the groups and
  the bounding set and sets no_new_privs before exec'ing Python. The submission is an
  ordinary unprivileged host uid with no capabilities at all.
* Grader not root: bubblewrap runs unprivileged with ``--unshare-all`` (a user
  namespace, ``--disable-userns``); the submission keeps the grader's own uid.

Without bubblewrap (or where it cannot create namespaces), ``auto`` degrades and says
so: ``unshare(1)`` gives own PID/network/IPC/UTS namespaces if the kernel allows, the
uid is dropped when the interpreter is reachable by it, and rlimits always apply; the
filesystem is then *not* hidden. ``off`` is a plain subprocess with rlimits.

Limits are set by ``prlimit(1)`` in front of the command (soft = hard), not by a
``preexec_fn``: ``Launch.preexec_fn`` is None whenever util-linux is present, so the
caller's Popen can vfork and is safe with threads. The wall-clock deadline and the
output cap are the caller's; ``kill()`` ends a worker and everything it started.

Use a distinct ``uid`` per concurrent worker slot if several run at once: the
process limit counts per uid, so a fork bomb in one slot would otherwise stop the
others from starting.
"""
from __future__ import annotations

import csv
import ctypes
import functools
import math
import os
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from importlib import metadata
from pathlib import Path
from typing import Literal

Mode = Literal["auto", "required", "off"]

SUBMISSION_PATH = "/submission"
WORKER_PATH = "/worker"
WORKER_UID = 65534              # "nobody"; pass uid= for one uid per worker slot
# a zygote's real uid is its slot uid + this: far from login, system and the usual
# subordinate uids (100000 + 65536 n), and no submission ever runs as it
ZYGOTE_UID_OFFSET = 1 << 30
PACKAGES = ("numpy",)           # distributions visible inside the sandbox (plus stdlib)
INSTALL_HINT = "apt-get install -y bubblewrap"
_SYSTEM_PATH = "/usr/bin:/bin"
_PROBE_TIMEOUT = 10.0


# --- limits and the isolation level --------------------------------------------------
@dataclass(frozen=True)
class Limits:
    call_seconds: float = 5.0         # wall clock per worker request: 1000x what a correct call needs
    memory_mb: int = 1024             # RLIMIT_AS per process; a zygote also caps all of a child's together
    cpu_seconds: int = 60             # RLIMIT_CPU for the worker process (soft = hard)
    output_bytes: int = 65536         # captured output kept per student (enforced by the caller)
    file_size_mb: int = 8             # RLIMIT_FSIZE
    open_files: int = 64              # RLIMIT_NOFILE
    processes: int = 32               # RLIMIT_NPROC (meaningful only for a non-root uid)
    tmp_mb: int = 64                  # size of the sandbox's private /tmp (tmpfs, host RAM)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"limit {f.name} must be a positive number, got {value!r}")


@dataclass(frozen=True)
class Isolation:
    full: bool
    reason: str | None = None         # why it is reduced
    method: str = ""                  # "bwrap", "unshare", "plain" or "off"

    def __str__(self) -> str:
        return "isolation: full" if self.full else f"isolation: reduced ({self.reason})"


@dataclass
class Launch:
    argv: list[str]
    env: dict[str, str]
    preexec_fn: Callable[[], None] | None
    cwd: str
    isolation: Isolation
    submission_path: str   # where the submission folder appears inside the sandbox
    worker_path: str       # where worker_dir appears inside
    uid: int | None = None  # host uid the submission runs as; None: the grader's own


class SandboxUnavailable(RuntimeError):
    """``mode="required"`` but this machine cannot give full isolation."""


# --- what this machine supports --------------------------------------------------------
def find_bwrap() -> str | None:
    """bubblewrap from the system directories first, then PATH; ``$GRADER_BWRAP`` names another
    (a path that does not exist: a machine without it, as the tests simulate one)."""
    if os.environ.get("GRADER_BWRAP"):
        return os.environ["GRADER_BWRAP"]
    return shutil.which("bwrap", path=f"{_SYSTEM_PATH}:/usr/local/bin") or shutil.which("bwrap")


def _tool(name: str) -> str | None:
    return shutil.which(name, path=f"{_SYSTEM_PATH}:/usr/sbin:/sbin")


def _is_root() -> bool:
    return os.geteuid() == 0


def probe(bwrap: str | None = None) -> Isolation:
    """What this machine supports for ``mode="auto"``; cached after the first call.

    ``bwrap`` overrides where bubblewrap is looked for (a path that does not exist
    simulates a machine without it).
    """
    return _plan(bwrap or find_bwrap(), WORKER_UID).isolation


@dataclass(frozen=True)
class _Plan:
    isolation: Isolation
    run_as: int | None         # uid to switch to; None = keep the grader's
    unshare: tuple[str, ...]   # unshare(1) prefix for the reduced mode, or ()


@functools.cache
def _plan(bwrap: str | None, uid: int) -> _Plan:
    broken = _bwrap_broken(bwrap)
    if broken is None:
        assert bwrap is not None
        return _Plan(Isolation(True, method="bwrap"), uid if _is_root() else None, ())
    parts = [broken]
    prefix = _unshare_prefix()
    if prefix:
        parts.append("fallback: own PID and network namespaces, host files visible")
        method = "unshare"
    else:
        parts.append("fallback: no namespaces (network and other processes reachable), "
                     "host files visible")
        method = "plain"
    run_as = None
    if _is_root():
        blocked = _unreachable(_interpreter_paths(), uid, uid)
        if blocked is None and (not prefix or _tool("setpriv")):  # plain: setpriv or preexec
            run_as = uid
            parts.append(f"runs as uid {uid}")
        else:
            why = f"uid {uid} cannot read {blocked}" if blocked else "setpriv not found"
            parts.append(f"runs as root ({why})")
    if not prefix and not (run_as is not None and _sweepable(run_as)):
        parts.append("processes it starts in a new session can outlive it")
    return _Plan(Isolation(False, "; ".join(parts), method), run_as, prefix)


def _namespace_args() -> list[str]:
    if _is_root():
        # no user namespace: a privileged --unshare-all would map the sandbox uid to
        # host uid 0; setpriv drops to an unprivileged host uid instead
        return ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
                "--unshare-cgroup-try"]
    return ["--unshare-all", "--unshare-user", "--disable-userns"]


def _root_links() -> list[str]:
    """/bin, /lib, ... as on the host: symlinks into /usr (merged /usr) or read-only binds."""
    args: list[str] = []
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = "/" + name
        if os.path.islink(path):
            target = os.readlink(path)
            if target.lstrip("/").startswith("usr/"):
                args += ["--symlink", target, path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


@functools.cache
def _bwrap_broken(bwrap: str | None) -> str | None:
    """None if bubblewrap can start a sandbox of our shape here, else why not."""
    if sys.platform != "linux":
        return f"bubblewrap needs Linux (this is {sys.platform})"
    if not bwrap:
        return f"bubblewrap not found ({INSTALL_HINT})"
    if not os.access(bwrap, os.X_OK):
        return f"bubblewrap not found at {bwrap} ({INSTALL_HINT})"
    true = _tool("true") or "/usr/bin/true"
    argv = [bwrap, *_namespace_args(), "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--clearenv", "--ro-bind", "/usr", "/usr", *_root_links(), "--proc", "/proc",
            "--dev", "/dev"]
    if _is_root():
        setpriv = _tool("setpriv")
        if not setpriv:
            return "setpriv (util-linux) not found: cannot drop to an unprivileged uid"
        argv += [*_root_caps(), *_setpriv(setpriv, WORKER_UID)]
    argv.append(true)
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=_PROBE_TIMEOUT, env={"PATH": _SYSTEM_PATH})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap at {bwrap} failed: {exc}"
    if done.returncode:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        return (f"bubblewrap at {bwrap} cannot create a sandbox here: "
                f"{message[-1] if message else f'exit code {done.returncode}'}")
    return None


def _root_caps() -> list[str]:
    return ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]


def zygote_uid(uid: int) -> int:
    """The real uid of a zygote whose children run as ``uid`` (see ``prepare(zygote=True)``)."""
    return uid + ZYGOTE_UID_OFFSET


def _setpriv(setpriv: str, uid: int | None, pdeathsig: bool = False,
             real_uid: int | None = None) -> list[str]:
    """setpriv(1): drop to ``uid`` for good; ``pdeathsig``: die with the parent (set last,
    after the uid change that would clear it).

    With ``real_uid`` (a zygote): the process starts as ``uid`` holding only CAP_SETUID and
    CAP_SETGID as *ambient* capabilities, and the worker itself (``--zygote-uid``) moves
    its real and saved uid to ``real_uid`` and drops every capability before any student
    code exists. Not ``--ruid``/``--euid`` at exec: a real uid that differs from the
    effective one makes the exec "secure", and glibc then ignores ``$ORIGIN`` in RUNPATH -
    the interpreters of conda and uv find their libpython that way.
    """
    argv = [setpriv]
    if uid is not None:
        argv += [f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
        if real_uid is None:
            argv += ["--inh-caps=-all", "--bounding-set=-all"]
        else:
            argv += ["--inh-caps=-all,+setuid,+setgid", "--ambient-caps=+setuid,+setgid",
                     "--bounding-set=-all,+setuid,+setgid"]
        argv.append("--no-new-privs")
    return argv + (["--pdeathsig=KILL"] if pdeathsig else []) + ["--"]


@functools.cache
def _unshare_prefix() -> tuple[str, ...]:
    """unshare(1) argv prefix for own PID/net/IPC/UTS namespaces, or () if not possible."""
    unshare, true = _tool("unshare"), _tool("true")
    if sys.platform != "linux" or not unshare or not true:
        return ()
    prefix = [unshare, "--fork", "--kill-child", "--pid", "--mount-proc", "--net", "--ipc",
              "--uts"]
    if not _is_root():
        prefix.append("--user")
    try:
        done = subprocess.run([*prefix, "--", true], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=_PROBE_TIMEOUT,
                              env={"PATH": _SYSTEM_PATH})
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return (*prefix, "--") if done.returncode == 0 else ()


# --- what goes into the sandbox ----------------------------------------------------------
def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _interpreter_paths() -> list[str]:
    """Files and folders the interpreter needs, for the reachability check."""
    paths = [sys.executable, os.path.realpath(sys.executable), sysconfig.get_paths()["stdlib"]]
    return [p for p in paths if p]


def _python_roots() -> list[str]:
    """Host folders holding the interpreter (prefix, base prefix), bound at the same path."""
    roots: list[str] = []
    candidates = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                  os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))),
                  sysconfig.get_config_var("LIBDIR") or ""]
    for path in candidates:
        path = os.path.realpath(path) if path else ""
        if not path or path == "/" or _under(path, "/usr") or not os.path.isdir(path):
            continue
        if any(_under(path, r) for r in roots):
            continue
        roots = [r for r in roots if not _under(r, path)] + [path]
    return roots


def _site_dirs() -> list[str]:
    """Every site-packages folder of this interpreter (and its base), venv or not."""
    import site

    found = list(site.getsitepackages()) if hasattr(site, "getsitepackages") else []
    for base in {sys.prefix, sys.base_prefix}:
        scheme = sysconfig.get_paths(vars={"base": base, "platbase": base})
        found += [scheme["purelib"], scheme["platlib"]]
    found += [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    out: list[str] = []
    for path in found:
        path = os.path.realpath(path)
        if os.path.isdir(path) and path not in out:
            out.append(path)
    return out


_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@functools.cache
def _package_entries(packages: tuple[str, ...]) -> tuple[str, ...]:
    """Top-level files/folders of the whitelisted distributions and their requirements."""
    grader_dists = {"backprop-grader", "backprop_grader", "grader"}
    entries: list[str] = []
    seen: set[str] = set()
    todo = list(packages)
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        if key in grader_dists:
            raise ValueError("the grader itself cannot be made visible inside the sandbox")
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise ValueError(f"package {name!r} for the sandbox is not installed") from None
        for top in sorted(_top_levels(dist)):
            path = os.path.realpath(str(dist.locate_file(top)))
            if os.path.exists(path) and not path.endswith(".pth") and path not in entries:
                entries.append(path)
        for req in dist.requires or []:
            match = _REQ_NAME.match(req)
            if match and "extra ==" not in req:
                todo.append(match.group(1))
    return tuple(entries)


def _top_levels(dist: metadata.Distribution) -> set[str]:
    """The first path component of each file the distribution installed, none with "..".

    Read from RECORD as text where there is one: ``dist.files`` makes a path object per
    file (numpy: 1,500), a third of every grading run's start-up before the sandbox."""
    record = dist.read_text("RECORD")
    if record is None:
        names = [str(f) for f in dist.files or []]
    else:
        names = [row[0] for row in csv.reader(record.splitlines()) if row]
    tops = set()
    for name in names:
        parts = name.replace("\\", "/").split("/")
        if ".." not in parts and parts[0]:
            tops.add(parts[0])
    return tops


def _grader_paths() -> list[str]:
    """The grader package itself: never inside the sandbox, wherever it is installed.

    Only the package, not "its repository": a venv, a build or a data folder can live in
    a clone. Course material (solutions, hidden tests, configuration) is hidden by its
    own paths, which the caller passes as ``hide``.
    """
    return [str(Path(__file__).resolve().parent)]


class _Mounts:
    """bubblewrap mount arguments, in order, creating every missing parent itself.

    bubblewrap applies mounts in argument order, and folders it creates implicitly for a
    bind's destination need not be traversable by the sandbox uid. So each mount records
    what it puts at its path: ``"host"`` (a bind: the host's folders below it exist, with
    the host's modes) or ``"empty"`` (a tmpfs or a created folder: nothing below it exists
    until made here). A missing parent is made with mode 0711, for each mount separately.
    """

    def __init__(self) -> None:
        self.args: list[str] = []
        self.kinds: dict[str, str] = {"/": "empty"}

    def _covering(self, path: str) -> tuple[str, str]:
        """The deepest mount at or above ``path``, and what it holds."""
        best = "/"
        for mount in self.kinds:
            if _under(path, mount) and len(mount) > len(best):
                best = mount
        return best, self.kinds[best]

    def _exists(self, path: str) -> bool:
        mount, kind = self._covering(path)
        return mount == path or kind == "host"

    def _parents(self, path: str) -> None:
        parent = os.path.dirname(path)
        if self._exists(parent):
            return
        self._parents(parent)
        self.args += ["--perms", "0711", "--dir", parent]
        self.kinds[parent] = "empty"

    def bind(self, src: str, dest: str) -> None:
        self._parents(dest)
        self.args += ["--ro-bind", src, dest]
        self.kinds[dest] = "host"

    def tmpfs(self, path: str, perms: str = "0755", size: int | None = None) -> None:
        """An empty tmpfs at ``path`` (read-only unless ``path`` is the private /tmp)."""
        self._parents(path)
        self.args += ["--perms", perms, *(["--size", str(size)] if size else []), "--tmpfs", path]
        self.kinds[path] = "empty"

    def inside(self, folder: str) -> list[str]:
        """Mounts and made folders below ``folder``: the worker's clean-up spares them."""
        return sorted(p for p in self.kinds if p != folder and _under(p, folder))


def _bwrap_argv(bwrap: str, worker: str, submission: str, limits: Limits, uid: int,
                packages: tuple[str, ...], env: dict[str, str], command: list[str],
                hide: list[str], real_uid: int | None = None) -> list[str]:
    """The bubblewrap command line: whitelist mounts in an order where none hides another.

    The private /tmp comes first, so an interpreter or venv that lives under the host's
    /tmp is bound *into* it afterwards rather than covered by it; folders made there are
    passed to the worker (``--keep=``) so that its clean-up after a student spares them.
    """
    argv = [bwrap, *_namespace_args(), "--die-with-parent", "--new-session",
            "--cap-drop", "ALL"]
    if _is_root():
        argv += _root_caps()
    else:
        argv += ["--uid", str(uid), "--gid", str(uid)]
    argv.append("--clearenv")
    for key, value in env.items():
        argv += ["--setenv", key, value]
    mounts = _Mounts()
    mounts.bind("/usr", "/usr")
    mounts.args += _root_links()
    # /dev/mqueue: the IPC namespace's POSIX message queues, as files the worker can list
    # and remove after each student (they outlive their processes, like SysV IPC)
    mounts.args += ["--proc", "/proc", "--dev", "/dev", "--mqueue", "/dev/mqueue"]
    mounts.kinds.update({"/proc": "empty", "/dev": "empty", "/dev/mqueue": "empty"})
    mounts.tmpfs("/tmp", perms="1777", size=limits.tmp_mb << 20)
    roots = _python_roots()
    for root in roots:
        mounts.bind(root, root)
    bound = ["/usr", *roots]
    masked: list[str] = []
    for site_dir in _site_dirs():
        if any(_under(site_dir, b) for b in bound):
            mounts.tmpfs(site_dir)
            masked.append(site_dir)
    for path in [*_grader_paths(), *hide]:  # e.g. a grader or a course inside a bound prefix
        if not os.path.exists(path) or not any(_under(path, b) for b in bound) \
                or any(_under(path, m) for m in masked):
            continue
        if os.path.isdir(path):
            mounts.tmpfs(path)
            masked.append(path)
        else:
            mounts.args += ["--ro-bind", "/dev/null", path]
    for entry in _package_entries(packages):
        if any(_under(entry, g) for g in _grader_paths()):
            raise ValueError(f"{entry} is part of the grader; it cannot go into the sandbox")
        if not any(_under(entry, b) for b in bound) or any(_under(entry, m) for m in masked):
            mounts.bind(entry, entry)
    for path in masked:
        mounts.args += ["--remount-ro", path]
    mounts.bind(worker, WORKER_PATH)
    mounts.bind(submission, SUBMISSION_PATH)
    mounts.args += ["--remount-ro", "/"]
    argv += mounts.args
    argv += ["--chdir", SUBMISSION_PATH]
    if _is_root():
        setpriv = _tool("setpriv")
        assert setpriv is not None  # checked by the probe
        argv += _setpriv(setpriv, uid, real_uid=real_uid)
    extra = [f"--zygote-uid={real_uid}"] if real_uid is not None else []
    return argv + command + extra + [f"--keep={path}" for path in mounts.inside("/tmp")]


# --- the launch -----------------------------------------------------------------------
def sandbox_env() -> dict[str, str]:
    """The whole environment the submission sees: nothing of the grader's."""
    return {"PATH": _SYSTEM_PATH, "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8",
            "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def _rlimits(limits: Limits, nproc_base: int | None) -> list[tuple[int, str, int]]:
    """(resource, prlimit option, value); soft = hard so SIGXCPU cannot be caught away.
    ``nproc_base`` None: no RLIMIT_NPROC here (it is set inside the user namespace)."""
    mb = 1 << 20
    wanted = [(resource.RLIMIT_AS, "as", limits.memory_mb * mb),
              (resource.RLIMIT_CPU, "cpu", math.ceil(limits.cpu_seconds)),
              (resource.RLIMIT_FSIZE, "fsize", int(limits.file_size_mb * mb)),
              (resource.RLIMIT_NOFILE, "nofile", int(limits.open_files)),
              *([(resource.RLIMIT_NPROC, "nproc", int(limits.processes) + nproc_base)]
                if nproc_base is not None else []),
              (resource.RLIMIT_CORE, "core", 0)]
    out = []
    for which, name, value in wanted:
        hard = resource.getrlimit(which)[1]
        out.append((which, name, value if hard == resource.RLIM_INFINITY else min(value, hard)))
    return out


class _Preexec:
    """Fallback when prlimit/setpriv are missing: the same, between fork and exec."""

    def __init__(self, rlimits: list[tuple[int, str, int]], run_as: int | None):
        self.rlimits = rlimits
        self.run_as = run_as

    def __call__(self) -> None:
        for which, _, value in self.rlimits:
            resource.setrlimit(which, (value, value))
        if self.run_as is not None:
            os.setgroups([])
            os.setgid(self.run_as)
            os.setuid(self.run_as)
            if _libc is not None:  # after setuid: changing credentials clears it
                _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _wrap(limits: Limits, run_as: int | None, body: list[str], *, drop_here: bool,
          pdeathsig: bool, nproc: bool = True) -> tuple[list[str], _Preexec | None]:
    """``body`` under the rlimits (prlimit(1)); if ``drop_here``, as ``run_as``; if
    ``pdeathsig``, killed when the grader dies (both setpriv(1)); ``nproc`` False: no
    RLIMIT_NPROC (``body`` sets it inside its user namespace, ``_nproc_inside``).

    Done with util-linux tools in argv rather than a preexec_fn so the caller's Popen
    can use vfork (a few ms less per start) and stays safe with threads.
    """
    rlimits = _rlimits(limits, _nproc_base(run_as) if nproc else None)
    prlimit, setpriv = _tool("prlimit"), _tool("setpriv")
    drop = drop_here and run_as is not None
    if not prlimit or ((drop or pdeathsig) and not setpriv):
        return body, _Preexec(rlimits, run_as if drop else None)
    argv = [prlimit, *(f"--{name}={value}:{value}" for _, name, value in rlimits), "--"]
    if drop or pdeathsig:
        assert setpriv is not None
        argv += _setpriv(setpriv, run_as if drop else None, pdeathsig=pdeathsig)
    return argv + body, None


def _nproc_inside(limits: Limits) -> list[str]:
    """prlimit(1) in front of the worker, inside the user namespace of a grader that is not
    root (empty: the limit stays outside, ``processes`` plus ``_nproc_base``).

    Since Linux 5.14 RLIMIT_NPROC counts per user namespace: set inside the sandbox's own,
    it counts the sandbox's processes and threads (bubblewrap's init, the worker, the
    submission's), as a leased uid does for root. Set outside, it counted every process
    and thread of the user, and the base counted at start (processes only, not threads,
    not what the other jobs start later) left a busy batch too few to start its own
    sandboxes ("Creating new namespace failed: Resource temporarily unavailable"), and a
    fork bomb in one job took the budget of the others.
    """
    prlimit = _tool("prlimit")
    release = re.match(r"(\d+)\.(\d+)", os.uname().release)
    if _is_root() or not prlimit or not _under(os.path.realpath(prlimit), "/usr") \
            or not release or tuple(map(int, release.groups())) < (5, 14):
        return []
    value = int(limits.processes)
    hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    value = value if hard == resource.RLIM_INFINITY else min(value, hard)
    return [prlimit, f"--nproc={value}:{value}", "--"]


def _nproc_base(run_as: int | None) -> int:
    """Processes the submission's uid already has; RLIMIT_NPROC counts them too."""
    if run_as is not None or _is_root():
        return 0  # a dedicated uid (or root, for which the limit is ignored anyway)
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                count += entry.stat().st_uid == os.getuid()
            except OSError:
                pass
    return count


def _mode_allows(st: os.stat_result, uid: int, gid: int, bits: int) -> bool:
    if st.st_uid == uid:
        return st.st_mode & (bits << 6) == bits << 6
    if st.st_gid == gid:
        return st.st_mode & (bits << 3) == bits << 3
    return st.st_mode & bits == bits


def _unreachable_below(root: str, path: str, uid: int) -> str | None:
    """The first folder from ``root`` down to ``path`` (both included) that ``uid`` cannot
    traverse, or ``path`` itself if it cannot read it. Inside the sandbox the folders above a
    bound ``root`` are made traversable; from ``root`` down, the host's modes apply."""
    parts = [root] + [os.path.join(root, *Path(os.path.relpath(path, root)).parts[:i + 1])
                      for i in range(len(Path(os.path.relpath(path, root)).parts))] if path != root else [root]
    for folder in parts:
        try:
            st = os.stat(folder)
        except OSError:
            return folder
        need = 5 if stat.S_ISDIR(st.st_mode) else 4
        if not _mode_allows(st, uid, uid, need if folder == path else (1 if stat.S_ISDIR(st.st_mode) else 4)):
            return folder
    return None


def _unreachable(paths: Sequence[str], uid: int, gid: int) -> str | None:
    """The first of ``paths`` (or a parent folder) that ``uid`` cannot reach and read."""
    for path in paths:
        path = os.path.abspath(path)
        parent = os.path.dirname(path)
        while True:
            try:
                if not _mode_allows(os.stat(parent), uid, gid, 1):
                    return parent
            except OSError:
                return parent
            if parent == "/":
                break
            parent = os.path.dirname(parent)
        try:
            st = os.stat(path)
        except OSError:
            return path
        if not _mode_allows(st, uid, gid, 5 if stat.S_ISDIR(st.st_mode) else 4):
            return path
    return None


def unreadable(tree: Path, uid: int, gid: int | None = None) -> str | None:
    """The first file or folder in ``tree`` (itself included) that ``uid`` cannot read."""
    gid = uid if gid is None else gid
    for folder, dirs, files in os.walk(tree):
        for name in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
            try:
                st = os.lstat(name)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                continue  # resolved inside the sandbox, where its target may not even exist
            if not _mode_allows(st, uid, gid, 5 if stat.S_ISDIR(st.st_mode) else 4):
                return name
    return None


def prepare(worker_dir: Path, submission_dir: Path, limits: Limits = Limits(),
            mode: Mode = "auto", extra_args: Sequence[str] = (), *,
            bwrap: str | None = None, uid: int = WORKER_UID,
            packages: Sequence[str] = PACKAGES, hide: Sequence[Path] = (),
            zygote: bool = False) -> Launch:
    """Command that runs ``python -I <worker_path>/server.py <submission_path> *extra_args``.

    mode "auto": the strongest isolation available, said in ``Launch.isolation``;
    "required": raise SandboxUnavailable without full isolation; "off": a plain
    subprocess with rlimits only (tests, debugging). ``bwrap`` overrides where
    bubblewrap is looked for (a missing path simulates a machine without it); ``uid``
    is the host uid the submission runs as when the grader is root (use one per
    concurrent worker slot); ``packages`` are the distributions importable inside
    besides the standard library; ``hide`` are extra host paths (solutions, hidden
    tests) to cover with an empty tmpfs should they lie inside a folder the sandbox
    shows (``/usr``, the interpreter's prefix) - anywhere else they are absent anyway.
    ``zygote``: with full isolation as root, the process starts with real (and, once it
    sets it, saved) uid ``zygote_uid(uid)`` and effective uid ``uid``: it can fork children
    that switch to ``uid`` for good, and those cannot signal it (kill(2) checks the
    target's real and saved uid only).
    """
    if mode not in ("auto", "required", "off"):
        raise ValueError(f"sandbox mode must be auto, required or off, not {mode!r}")
    worker = os.path.realpath(worker_dir)
    submission = os.path.realpath(submission_dir)
    if not os.path.isfile(os.path.join(worker, "server.py")):
        raise FileNotFoundError(f"no server.py in worker folder {worker}")
    if not os.path.isdir(submission):
        raise NotADirectoryError(f"submission folder {submission} does not exist")
    env = sandbox_env()
    host_command = [sys.executable, "-I", os.path.join(worker, "server.py"), submission,
                    *extra_args]

    if mode == "off":
        argv, preexec = _wrap(limits, None, host_command, drop_here=False, pdeathsig=True)
        return Launch(argv, env, preexec, submission, Isolation(False, "sandbox off", "off"),
                      submission, worker)

    plan = _plan(bwrap or find_bwrap(), uid)
    if mode == "required" and not plan.isolation.full:
        raise SandboxUnavailable(f"full isolation required, but {plan.isolation}")
    if plan.run_as is not None:
        for tree in (worker, submission):
            blocked = unreadable(Path(tree), plan.run_as)
            if blocked:
                raise PermissionError(
                    f"{blocked} is not readable by the sandbox uid {plan.run_as}: make the "
                    f"folder world-readable (chmod -R a+rX), e.g. stage it with mode 0755")

    if plan.isolation.full:
        resolved = bwrap or find_bwrap()
        assert resolved is not None
        inside = _nproc_inside(limits) if plan.run_as is None else []
        command = [*inside, sys.executable, "-I", f"{WORKER_PATH}/server.py", SUBMISSION_PATH,
                   *extra_args]
        real_uid = zygote_uid(uid) if zygote and plan.run_as is not None else None
        body = _bwrap_argv(resolved, worker, submission, limits, uid, tuple(packages), env,
                           command, [os.path.realpath(p) for p in hide], real_uid)
        # bwrap --die-with-parent does what pdeathsig would
        argv, preexec = _wrap(limits, plan.run_as, body, drop_here=False, pdeathsig=False,
                              nproc=not inside)
        return Launch(argv, dict(env), preexec, "/", plan.isolation, SUBMISSION_PATH,
                      WORKER_PATH, plan.run_as)

    if plan.unshare:
        inside = _nproc_inside(limits) if "--user" in plan.unshare else []
        inner = [*inside, *host_command]
        if plan.run_as is not None:
            setpriv = _tool("setpriv")
            assert setpriv is not None  # checked by the plan
            inner = _setpriv(setpriv, plan.run_as, pdeathsig=True) + host_command
        argv, preexec = _wrap(limits, plan.run_as, [*plan.unshare, *inner], drop_here=False,
                              pdeathsig=True, nproc=not inside)
    else:
        argv, preexec = _wrap(limits, plan.run_as, host_command, drop_here=True, pdeathsig=True)
    return Launch(argv, env, preexec, submission, plan.isolation, submission, worker,
                  plan.run_as)


def diagnose(uid: int = WORKER_UID, bwrap: str | None = None) -> list[str]:
    """Why a sandboxed worker may not start here, each with its fix (empty: nothing found).

    Checks what the worker needs from the host: bubblewrap and util-linux, and, when the
    submission runs as another uid, that this uid can reach the interpreter, its
    libraries and every whitelisted package (a 0700 home on the way is the usual cause).
    """
    found = []
    plan = _plan(bwrap or find_bwrap(), uid)
    if not plan.isolation.full:
        found.append(f"{plan.isolation}: `grader doctor` says how to get full isolation")
    if _is_root() and (plan.run_as is not None or plan.isolation.full):
        try:
            entries = list(_package_entries(PACKAGES))
        except ValueError as exc:
            entries = []
            found.append(str(exc))
        roots = ["/usr", *_python_roots()]
        for path in [*_interpreter_paths(), *roots, *entries]:
            path = os.path.realpath(path)
            root = max((r for r in roots if _under(path, r)), key=len, default=path)
            blocked = _unreachable_below(root, path, uid)
            if blocked:
                mode = oct(os.stat(blocked).st_mode & 0o777) if os.path.exists(blocked) else "missing"
                found.append(f"the sandbox uid {uid} cannot reach {blocked} (mode {mode}), needed for {path}: "
                             f"`chmod o+x {blocked}` for a folder on the way (o+rX for the files), or put "
                             "the Python environment where other users can read it")
                break
    return found


# --- ending a worker ------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    out = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        fields_ = data[data.rfind(b")") + 2:].split()
        if len(fields_) > 1 and int(fields_[1]) == pid:
            out.append(int(entry.name))
    return out


def _proc_uid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _has_pid_namespace(proc: subprocess.Popen) -> bool:
    args = proc.args if isinstance(proc.args, list | tuple) else [proc.args]
    return any(a in ("--unshare-pid", "--unshare-all", "--pid") for a in args)


def kill(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """SIGKILL a worker and everything it started, reap it, close its pipes; idempotent.

    With bubblewrap (or unshare) the worker's parent is the PID namespace's init:
    killing that first makes the kernel kill every process in the namespace, whatever
    they did (setsid, double fork, ignored SIGTERM), and only then does the outer
    bwrap exit and get reaped here - nothing is left to the host's slow init, and the
    uid's process count is back to zero when this returns. Without a PID namespace,
    the process group is killed and, if the worker ran as a dedicated uid (one with no
    account), every process of that uid.
    """
    pid = proc.pid
    uid = next((int(a.split("=", 1)[1]) for a in proc.args if isinstance(a, str)
                and a.startswith("--reuid=")), None) if isinstance(proc.args, list) else None
    if proc.returncode is None and proc.poll() is None:
        uid = _proc_uid(pid) if uid is None else uid
        if _has_pid_namespace(proc):
            inits = _children(pid)
            for child in inits:
                _signal(child)
            if inits:
                try:  # the namespace is torn down before its init is reaped by bwrap
                    proc.wait(timeout=min(timeout, 1.0))
                except subprocess.TimeoutExpired:
                    pass
        if proc.returncode is None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            _signal(pid)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
    if not _has_pid_namespace(proc):
        _sweep_uid(uid)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass


def _signal(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _sweep_uid(uid: int | None) -> None:
    """No PID namespace: kill every process of a dedicated worker uid (never a real user)."""
    if uid is None or uid == os.getuid() or not _is_root() or not _sweepable(uid):
        return
    kill_bin = _tool("kill")
    if kill_bin:
        subprocess.run([kill_bin, "-KILL", "-1"], user=uid, group=uid, extra_groups=[],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=5,
                       env={"PATH": _SYSTEM_PATH})


def _sweepable(uid: int) -> bool:
    """A dedicated uid: no account (unlike e.g. nobody), so every process of it is ours."""
    import pwd

    try:
        pwd.getpwuid(uid)
    except KeyError:
        return uid != 0
    return False


def exit_signal(returncode: int | None) -> int | None:
    """The signal that ended a worker, also through bwrap/unshare (they exit 128+N)."""
    if returncode is None:
        return None
    if returncode < 0:
        return -returncode
    if 128 < returncode <= 128 + 64:
        return returncode - 128
    return None


def measure_start(repeat: int = 5, bwrap: str | None = None) -> dict[str, float]:
    """Median seconds for ``python -c "import numpy"``: bare vs. in the full sandbox."""
    import statistics
    import tempfile

    code = "import numpy"
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        worker, sub = Path(tmp, "worker"), Path(tmp, "sub")
        worker.mkdir()
        sub.mkdir()
        os.chmod(tmp, 0o755)
        (worker / "server.py").write_text(f"{code}\n")
        for name in ("worker", "sub"):
            os.chmod(Path(tmp, name), 0o755)
        os.chmod(worker / "server.py", 0o644)
        runs = {"bare": [sys.executable, "-I", "-c", code]}
        launch = prepare(worker, sub, mode="auto", bwrap=bwrap)
        runs[f"sandbox ({launch.isolation.method})"] = launch.argv
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(repeat):  # interleaved, so a busy moment hits both alike
            for name, argv in runs.items():
                start = time.perf_counter()
                subprocess.run(argv, env=launch.env, check=True, stdin=subprocess.DEVNULL,
                               capture_output=True, cwd="/",
                               preexec_fn=launch.preexec_fn if name != "bare" else None)
                times[name].append(time.perf_counter() - start)
        out = {name: statistics.median(values) for name, values in times.items()}
    return out
