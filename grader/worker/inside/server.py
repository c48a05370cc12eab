"""The worker: runs one student's code inside the sandbox and answers requests.

Started once per grading slot as ``python -I server.py --zygote`` inside the
sandbox: the *zygote* imports numpy, then forks one fresh child per student. Each
child gets its own session socket and output pipe from the grader (passed as file
descriptors), receives the student's sources over the session, imports them from
memory and answers requests. The zygote never reads student data, so no child can
find another student's code in memory it inherited; it is not dumpable, so a child
cannot ptrace it, and keeps a real uid of its own, so a child cannot signal it; it
caps the memory of all of a child's processes together; after each child it kills
every leftover process of the sandbox, removes its SysV IPC objects and empties the
private /tmp.

The child computes no score and decides nothing: it only runs the student's code
on the inputs it is sent and returns plain data. Everything here is assumed
compromised by the student; the grader trusts none of it. Imports: stdlib and numpy
only (the grader package is not in the sandbox).
"""
import ctypes
import errno
import gc
import importlib
import importlib.abc
import importlib.util
import io
import json
import os
import resource
import select
import signal
import socket
import sys
import time
import traceback

import numpy as np  # imported before the submission: warm for every child
import numpy.random  # noqa: F401  numpy imports it lazily: 10 ms of every child's first np.random.seed

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # python -I does not add the script's folder
import protocol  # noqa: E402
import seccomp  # noqa: E402

SUBMISSION = "/submission"  # where the sources appear to live, for tracebacks


class Sources(importlib.abc.MetaPathFinder, importlib.abc.SourceLoader):
    """Serves the hand-in's modules from memory, so ``from layers import ...`` works.

    ``sources`` maps file paths (``x.py``, ``common/helpers.py``) to their text;
    a folder on the way (``common``) is a package.
    """

    def __init__(self, sources: dict):
        self.sources = {name[:-3].replace("/", "."): text for name, text in sources.items()
                        if isinstance(name, str) and name.endswith(".py") and isinstance(text, str)}
        self.packages = {m.rsplit(".", i)[0] for m in self.sources for i in range(1, m.count(".") + 1)}

    def find_spec(self, name, path=None, target=None):
        if name in self.packages and name not in self.sources:
            spec = importlib.util.spec_from_loader(name, None, is_package=True)
            spec.submodule_search_locations = []
            return spec
        if name in self.sources:
            return importlib.util.spec_from_file_location(name, self.get_filename(name), loader=self)
        return None

    def get_filename(self, name):
        return f"{SUBMISSION}/{name.replace('.', '/')}.py"

    def get_data(self, path):
        relative = path[len(SUBMISSION) + 1:-3] if path.startswith(SUBMISSION + "/") else ""
        return self.sources[relative.replace("/", ".")].encode("utf-8")


class Worker:
    def __init__(self, chan_in: int, chan_out: int, sources: dict, modules: list = ()):
        self.submission = SUBMISSION
        self.calls: dict = {}  # (kind, id(object)) -> calls, during the current step
        self.modules = [m for m in modules if isinstance(m, str)]
        self.chan_in, self.chan_out = chan_in, chan_out
        self.sources = Sources(sources)
        self.objects: dict[int, object] = {}
        self.trace: list = []
        self.received, self.at = b"", 0  # what came in and is not read yet: received[at:]

    # -- transport ---------------------------------------------------------------
    def read_exactly(self, n: int) -> bytes:
        """``n`` bytes of the session. What is there is received at once, so the ~20 small
        parts of a message (its header, one frame per array) cost one read, not one each."""
        at = self.at
        if len(self.received) - at >= n:
            self.at = at + n
            return self.received[at:at + n]
        chunks, have = [self.received[at:]], len(self.received) - at
        while have < n:
            chunk = os.read(self.chan_in, min(max(n - have, 1 << 16), 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            have += len(chunk)
        self.received, self.at = b"".join(chunks), n
        return self.received if have == n else self.received[:n]

    def send(self, header: dict, frames: list) -> None:
        """Write the message with ``writev``, straight from the arrays (no copy on our side)."""
        parts = [memoryview(p).cast("B") for p in protocol.pack_parts(header, frames)]
        while parts:
            written = os.writev(self.chan_out, parts[:1024])  # IOV_MAX
            while parts and written >= len(parts[0]):
                written -= len(parts[0])
                parts.pop(0)
            if parts and written:
                parts[0] = parts[0][written:]

    # -- loading -------------------------------------------------------------------
    def load(self) -> dict:
        """Import every module of the submission; report each one's fate."""
        status = {}
        sys.meta_path.insert(0, self.sources)
        for name in self.modules:
            if name not in self.sources.sources:
                status[name] = {"ok": False, "missing": True}
                continue
            try:
                module = importlib.import_module(name)
            except BaseException as exc:  # noqa: B036 - SystemExit at import is a student error
                status[name] = {"ok": False, "error": self.describe(exc)}
                UNIMPORTED[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
                continue
            self.instrument(module)
            status[name] = {"ok": True, "names": sorted(k for k in vars(module) if not k.startswith("__"))}
        return status

    def instrument(self, module) -> None:
        """Count each object's ``forward`` and ``backward`` calls, and record the order of the
        ``backward`` ones: the grader judges a ``gradient()`` by them (how many forward passes,
        whether anything was backpropagated) and names a wrong walk. Nothing else changes."""
        for value in list(vars(module).values()):
            if not isinstance(value, type) or getattr(value, "__module__", None) != module.__name__:
                continue
            for kind in ("forward", "backward"):
                method = value.__dict__.get(kind)
                if callable(method):
                    setattr(value, kind, self.counted(kind, method))

    def counted(self, kind: str, method):
        trace, calls = self.trace, self.calls

        def call(obj, *args, **kwargs):
            calls[(kind, id(obj))] = calls.get((kind, id(obj)), 0) + 1
            if kind == "backward":
                trace.append(id(obj))
            return method(obj, *args, **kwargs)

        call.__wrapped__ = method
        call.__name__ = kind
        return call

    # -- requests ------------------------------------------------------------------
    def handle(self, header: dict, frames: list) -> tuple[dict, list]:
        """Run the steps in order; on an exception, answer with it and what was done."""
        self.trace.clear()
        done: list = []
        counts: list = []
        failure = None
        for index, step in enumerate(header.get("steps", [])):
            self.calls.clear()
            try:
                done.append(self.step(step, frames, done))
            except BaseException as exc:  # noqa: B036 - any student exception is an answer
                if step.get("tolerate") and isinstance(exc, Exception):
                    done.append(protocol.Raised(self.describe(exc)))
                    continue
                failure = {"ok": False, "step": index, "error": self.describe(exc)}
                break
            finally:
                if step.get("count"):
                    counts.append(self.tally(index))
        out_frames: list = []
        try:
            results = [protocol.encode(done[i], out_frames, self.handle_of)
                       for i in header.get("return", []) if i < len(done)]
        except Exception as exc:  # e.g. an object array: it cannot cross, so it is an error
            return {"ok": False, "step": len(done) - 1, "results": [],
                    "error": {"type": "ReturnValueError", "message": str(exc), "frames": []}}, []
        reply = failure or {"ok": True}
        reply.update(results=results, trace=self.label_trace(header, done), counts=counts)
        return reply, out_frames

    def tally(self, index: int) -> dict:
        """The step's forward and backward calls: totals, and the most on any one object."""
        out = {"step": index}
        for kind in ("forward", "backward"):
            per = [n for (k, _), n in self.calls.items() if k == kind]
            out[kind] = sum(per)
            out[f"{kind}_max"] = max(per, default=0)
        return out

    def step(self, step: dict, frames: list, done: list):
        op = step["op"]
        args = [self.value(a, frames, done) for a in step.get("args", [])]
        kwargs = {k: self.value(v, frames, done) for k, v in step.get("kwargs", {}).items()}
        if op == "value":  # an array sent once, referenced by later steps
            return args[0]
        if op == "seed":  # numpy's global RNG, so np.random.randn in __init__ is reproducible
            np.random.seed(int(args[0]))
            return None
        if op == "probe":  # a central difference of a fresh object's method, made here
            return self.probe(step, *args)
        if op in ("new", "func"):
            target = student_name(step)
            return target(*args, **kwargs)
        target = self.value(step["target"], frames, done)
        if op == "call":
            return getattr(target, step["name"])(*args, **kwargs)
        if op == "get":
            try:
                return walk(target, step["path"])
            except (AttributeError, KeyError, IndexError, TypeError):
                if step.get("optional"):
                    return None
                raise
        if op == "assign":  # write into the array the object really holds, in place
            walk(target, step["path"])[...] = args[0]
            return None
        if op == "slope":  # a central difference along a direction made here from its seed
            seed, h, *call = args
            array, method = walk(target, step["path"]), getattr(target, step["name"])
            move = protocol.direction(int(seed), array.shape) * float(h)
            saved = array.copy()
            try:
                array += move
                plus = method(*call, **kwargs)
                array[...] = saved
                array -= move
                return plus, method(*call, **kwargs)
            finally:
                array[...] = saved
        raise ValueError(f"unknown op {op!r}")

    def probe(self, step: dict, direction, h, n_init, *rest):
        cls, (which, index) = student_name(step), step["moved"]
        init, call = list(rest[:n_init]), list(rest[n_init:])
        moved = init if which == "init" else call
        base, outs = moved[index], []
        for sign in (1.0, -1.0):
            moved[index] = base + sign * float(h) * direction
            fresh = [a.copy() if isinstance(a, np.ndarray) else a for a in (*init, *call)]
            obj = cls(*fresh[:n_init])
            if isinstance(step.get("seed"), int):  # the same random mask for every probe
                np.random.seed(step["seed"])
            outs.append(getattr(obj, step["method"])(*fresh[n_init:]))
        return tuple(outs)

    def value(self, tree, frames, done):
        decoded = protocol.decode(tree, frames)
        return self.resolve(decoded, done)

    def resolve(self, value, done):
        if isinstance(value, protocol.Ref):
            if value.tree["t"] == "step":
                return done[value.tree["i"]]
            return self.objects[value.tree["h"]]
        if isinstance(value, (list, tuple)):
            return type(value)(self.resolve(v, done) for v in value)
        if isinstance(value, dict):
            return {k: self.resolve(v, done) for k, v in value.items()}
        return value

    def handle_of(self, obj) -> dict:
        self.objects[id(obj)] = obj
        methods = sorted(n for n in dir(type(obj)) if not n.startswith("_")
                         and callable(getattr(type(obj), n, None)))
        return {"t": "obj", "h": id(obj), "type": type(obj).__name__, "methods": methods}

    def label_trace(self, header: dict, done: list) -> list:
        """Name each traced ``backward`` receiver by where the call's target holds it."""
        calls = [s for s in header.get("steps", [])[: len(done) + 1] if "target" in s]
        if not self.trace or not calls:
            return []
        try:
            target = self.resolve(protocol.decode(calls[-1]["target"], []), done)
        except Exception:
            return []
        names = {}
        for attr, held in (vars(target).items() if hasattr(target, "__dict__") else []):
            names.setdefault(id(held), attr)
            items = held.items() if isinstance(held, dict) else enumerate(held) if isinstance(held, list) else []
            for key, item in items:
                names.setdefault(id(item), f"{attr}[{key!r}]")
        return [names.get(i, "?") for i in self.trace]

    def describe(self, exc: BaseException) -> dict:
        """The exception, with only the frames that are in the student's own files."""
        frames = []
        for frame in traceback.extract_tb(exc.__traceback__):
            if frame.filename.startswith(self.submission + os.sep):
                frames.append({"file": frame.filename[len(self.submission) + 1:], "line": frame.lineno,
                               "function": frame.name, "code": (frame.line or "")[:200]})
        if isinstance(exc, SyntaxError) and exc.filename:
            frames.append({"file": exc.filename.removeprefix(self.submission + "/"), "line": exc.lineno or 0,
                           "function": "<module>", "code": (exc.text or "").strip()[:200]})
        return {"type": type(exc).__name__, "message": str(exc)[:1000], "frames": frames[-8:]}

    def serve(self) -> None:
        self.send({"ok": True, "modules": self.load()}, [])
        while True:
            try:
                header, frames = protocol.read_message(self.read_exactly)
            except EOFError:
                return
            reply, out = self.handle(header, frames)
            self.send(reply, out)


UNIMPORTED: dict[str, str] = {}
"""Why each student module that failed to import did (the cause its callers' errors name)."""


def student_name(step: dict):
    """``step["name"]`` from the student's module ``step["module"]``."""
    module = sys.modules.get(step["module"])
    if module is None:
        why = UNIMPORTED.get(step["module"])
        raise ImportError(f"{step['module']}.py could not be imported" + (f" ({why})" if why else ""))
    return getattr(module, step["name"])


def walk(target, path: list):
    """``target.<path>``: attributes, entries of dicts (``params['W1']``) and, for an int key,
    items of tuples and lists (what ``backward`` returned) on the way."""
    for key in path:
        if isinstance(target, dict) or (isinstance(key, int) and isinstance(target, tuple | list)):
            target = target[key]
        else:
            target = getattr(target, key)
    return target


def child(session: int, output: int, confine: bytes | None = None) -> None:
    """One student's process: output to the grader's pipe, requests over the session.

    ``confine``: the seccomp filter, loaded before any of the student's code exists.
    stdout and stderr write through at once: a process killed at a deadline or by a
    limit keeps every line it printed (a buffer would die with it).
    """
    prefer_oom_kill()
    if confine is not None:
        seccomp.install(confine)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.close(output)
    sys.stdin = open(os.devnull)  # noqa: SIM115
    sys.stdout = sys.__stdout__ = unbuffered(1)
    sys.stderr = sys.__stderr__ = unbuffered(2)
    os.chdir("/tmp")
    first = Worker(session, session, {})
    header, _ = protocol.read_message(first.read_exactly)
    sources = header.get("sources") if isinstance(header.get("sources"), dict) else {}
    modules = header.get("modules") if isinstance(header.get("modules"), list) else []
    worker = Worker(session, session, sources, modules)
    worker.received, worker.at = first.received, first.at  # (nothing, unless the grader sent on)
    worker.serve()


def prefer_oom_kill() -> None:
    """The slot's memory cgroup holds the zygote too: over the limit, the kernel is to kill
    the student's process, not us. Our /proc files belong to root while we are not
    dumpable, so for the one write we are."""
    seccomp.LIBC.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
    try:
        fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
        try:
            os.write(fd, b"1000")
        finally:
            os.close(fd)
    except OSError:
        pass
    finally:
        seccomp.LIBC.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


def unbuffered(fd: int):
    """A text stream on ``fd`` that hands every write to the kernel at once."""
    return io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding="utf-8", errors="backslashreplace",
                            line_buffering=True, write_through=True)


PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 4, 36
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
IPC_RMID = 0
POLL = 0.01  # seconds between two looks at the student's memory
PAGE = os.sysconf("SC_PAGE_SIZE")


def warm_up() -> None:
    """Run once, here, what every student's code runs (the book's layers on a tiny batch):
    numpy loads some parts on first use, and a child would otherwise pay for that anew."""
    np.random.seed(0)
    x, w, t = np.random.randn(4, 6), np.random.randn(6, 3), np.array([0, 1, 2, 0])
    y = np.dot(x, w) + np.zeros(3)
    mask = y <= 0
    y[mask] = 0
    y = np.where(y > 0, np.maximum(y, 0), 0) + np.tanh(y) + 1 / (1 + np.exp(-y))
    e = np.exp(y - np.max(y, axis=1, keepdims=True))
    p = e / np.sum(e, axis=1, keepdims=True)
    _ = (-np.sum(np.log(p[np.arange(4), t] + 1e-7)) / 4, np.argmax(p, axis=1),  # the loss
         np.dot(x.T, y), np.einsum("ij,ik->jk", x, y), np.sum(y, axis=0), x.T @ np.eye(3)[t],  # grads
         x.reshape(4, -1).copy(), np.zeros_like(x), np.ones_like(x), np.float64(1.0) * 2)
    np.random.seed(0)  # the same state in every child: even unseeded draws are reproducible


def zygote(sweep: bool, memory_mb: int, keep: set[str] = frozenset(), own_uid: int | None = None) -> None:
    """Fork a fresh child per ``spawn``; report its end; leave nothing behind.

    With ``sweep`` (full isolation: our own PID namespace and /tmp) every process of the
    sandbox but init and us is the student's: ``watch`` caps their memory together and
    ``clean`` removes all they leave. Started with a real uid other than the effective
    one (``sandbox.prepare(zygote=True)``), the children keep only the effective uid and
    cannot signal us: a stopped zygote would stall the grader and blind ``watch``.
    """
    control = socket.socket(fileno=os.dup(0))
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    libc = ctypes.CDLL(None, use_errno=True)
    # freed arrays stay in the heap for the next one (no page fault per 4 KiB: a third of
    # a 784x50 check on this VM); a student's process is short-lived, RLIMIT_AS still caps
    libc.mallopt(M_MMAP_THRESHOLD, 64 << 20)
    libc.mallopt(M_TRIM_THRESHOLD, 256 << 20)
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # children may not ptrace or read us
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # orphans come back to us, to count and reap
    student = os.geteuid()
    if own_uid is not None:
        become(own_uid, student, libc)
    ours = scheduling()
    confine, filtered = confinement()
    session = own_session_keyring(libc)
    try:
        warm_up()
    except Exception:  # only ever a little slower without it
        pass
    gc.collect()
    gc.freeze()  # the collector of a child then never walks (and copies) our objects' pages
    control.send(json.dumps({"ready": True, "pid": os.getpid(), "seccomp": filtered}).encode())
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 4096, 2)
        except OSError:
            return
        if not message:
            return
        if json.loads(message).get("op") != "spawn" or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            continue
        pid = fork()
        if pid == 0:
            control.close()
            try:
                # for good: no uid left to reach us by. Already so when not root without
                # bubblewrap (unshare --user maps no uid: we are the overflow uid, which
                # setresuid refuses with EINVAL, and the child ended at once, exit code 0)
                if os.getresuid() != (student, student, student):
                    os.setresuid(student, student, student)
                child(*fds, confine)
            finally:
                os._exit(0)
        for fd in fds:
            os.close(fd)
        control.send(json.dumps({"spawned": pid}).encode())
        code, memory_kills, tampered = watch(control, pid, memory_mb if sweep else None, ours)
        retire = tampered = tampered or (sweep and scheduling() != ours)
        if sweep:
            retire = not clean(libc, keep, (own_uid, student) if own_uid is not None else None, session) or retire
        else:
            reap()  # the zombies of orphans, which came back to us
        if code is None:
            return
        control.send(json.dumps({"exited": code, "memory_kills": memory_kills, "tampered": tampered,
                                 "retire": retire, "cpu": cpu_seconds()}).encode())
        if retire:  # something could not be undone: the grader starts a fresh sandbox
            return


def cpu_seconds() -> list[float]:
    """CPU time so far of the students' processes (all reaped here: we are their subreaper)
    and of this zygote: for the grader's stage figures only (``GRADER_STAGES``)."""
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_CHILDREN, resource.RUSAGE_SELF)]
    return [u.ru_utime + u.ru_stime for u in usage]


def confinement() -> tuple[bytes | None, dict]:
    """The seccomp filter every child loads, and what to tell the grader about it: on
    (and what it denies) only once a throwaway child proved the calls are refused."""
    try:
        code = seccomp.program()
    except OSError as exc:
        return None, {"on": False, "why": exc.strerror or str(exc)}
    failed = seccomp.probe(code)
    if failed:
        return None, {"on": False, "why": failed}
    return code, {"on": True, "denies": seccomp.SUMMARY}


class CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, PR_CAPBSET_DROP = 47, 4, 24
CAPABILITY_V3 = 0x20080522


def become(own_uid: int, student: int, libc) -> None:
    """Real and saved uid ``own_uid``, effective uid ``student``, then no capability at all.

    Started as ``student`` with CAP_SETUID/CAP_SETGID only (ambient, see sandbox._setpriv):
    children switch to ``student`` for good and, having no uid of ours, cannot signal us.
    A zygote that still holds a capability after this stops rather than serve anyone.
    """
    os.setresuid(own_uid, student, own_uid)
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    for cap in range(64):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    libc.capset(ctypes.byref(CapHeader(CAPABILITY_V3, 0)), (CapData * 2)())
    with open("/proc/self/status") as fh:
        held = [line for line in fh if line.startswith(("CapPrm", "CapEff", "CapAmb"))]
    if any(int(line.split()[1], 16) for line in held) or os.getresuid() != (own_uid, student, own_uid):
        os._exit(3)


def fork() -> int:
    """os.fork, retried for a moment on EAGAIN (the process limit) rather than failing a student."""
    for _ in range(50):
        try:
            return os.fork()
        except BlockingIOError:
            time.sleep(0.01)
    return os.fork()


def watch(control: socket.socket, pid: int, memory_mb: int | None, ours: tuple):
    """Wait for the child to end or for the grader to say ``kill``.

    Returns (exit code, or None when the grader is gone; processes killed for memory;
    whether our scheduling was tampered with). With ``memory_mb`` (own PID namespace),
    every POLL s: RLIMIT_AS is per process, so the student's processes are capped
    together here (``cap_memory``); and the children share our effective uid, so they
    could renice us, pin us or make us SCHED_IDLE to starve this very watch - any change
    to our scheduling (``ours`` at our start) ends the child, and we retire.
    """
    pidfd = os.pidfd_open(pid)
    kills, dying, tampered = 0, set(), False
    try:
        while True:
            ready, _, _ = select.select([control, pidfd], [], [], POLL if memory_mb else None)
            if pidfd in ready:
                _, status = os.waitpid(pid, 0)
                return os.waitstatus_to_exitcode(status), kills, tampered
            if control in ready:
                try:
                    message = control.recv(4096)
                except OSError:
                    message = b""
                os.kill(pid, signal.SIGKILL)
                if not message:  # the grader is gone: so are we
                    os.waitpid(pid, 0)
                    return None, kills, tampered
            elif memory_mb and scheduling() != ours:
                tampered = True
                os.kill(pid, signal.SIGKILL)
            elif memory_mb:
                kills += cap_memory(memory_mb, dying)
    finally:
        os.close(pidfd)


def scheduling() -> tuple:
    """Our nice value, policy and CPUs: only a child (our effective uid) could change them."""
    return os.getpriority(os.PRIO_PROCESS, 0), os.sched_getscheduler(0), os.sched_getaffinity(0)


def cap_memory(memory_mb: int, dying: set) -> int:
    """Kill the youngest of the student's processes while together they hold more than
    ``memory_mb`` of private memory; the oldest (their main process) is never killed here,
    alone it is held by its RLIMIT_AS. Returns how many were killed (added to ``dying``)."""
    me = os.getpid()
    pids = [int(n) for n in os.listdir("/proc") if n.isdigit() and int(n) not in (1, me)]
    if len(pids) < 2:
        return 0
    sizes, born = {}, {}
    for pid in pids:
        if pid in dying:
            continue
        try:
            with open(f"/proc/{pid}/statm", "rb") as fh:
                fields = fh.read().split()
            sizes[pid] = (int(fields[1]) - int(fields[2])) * PAGE  # resident, not file-backed
        except (OSError, ValueError, IndexError):
            continue
    over = sum(sizes.values()) - (memory_mb << 20)
    if over <= 0:
        return 0
    for pid in sizes:
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                data = fh.read()
            born[pid] = int(data[data.rfind(b")") + 2:].split()[19])
        except (OSError, ValueError, IndexError):
            born[pid] = 0
    killed = 0
    for pid in sorted(sizes, key=lambda p: (born[p], p), reverse=True)[:-1]:
        if over <= 0:
            break
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        dying.add(pid)
        over -= sizes[pid]
        killed += 1
    return killed


SCRATCH = ("/tmp", "/dev/shm", "/dev/mqueue")  # the sandbox's writable file systems (POSIX shm and queues)


def clean(libc, keep: set[str] = frozenset(), uids: tuple[int, int] | None = None, session: bool = False) -> bool:
    """Kill every process of this sandbox but us and init and wait until they are gone;
    remove every SysV IPC object, every POSIX message queue, everything in /tmp but
    ``keep`` (the folders the sandbox itself made there, e.g. for a venv that lives
    under the host's /tmp) and every key of the students' keyrings. True if nothing is
    left.

    We are the processes' subreaper: once we have no child, none of them is left, and
    the next child starts with the whole process budget. IPC objects, message queues,
    files and keys outlive their processes, and a folder left mode 000 resists a plain
    rmtree. ``uids``: (ours, the students') when they differ; ``session``: the session
    keyring is our own (``own_session_keyring``).
    """
    deadline = time.monotonic() + 1.0
    while True:
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if not reap():
            break
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    for kind, ident in ipc_objects():
        if kind == "sem":
            libc.semctl(ident, 0, IPC_RMID)
        else:
            getattr(libc, f"{kind}ctl")(ident, IPC_RMID, None)
    cleared = all(clear(folder, keep) for folder in SCRATCH if os.path.isdir(folder))
    return clear_keys(libc, uids, session) and cleared and not ipc_objects()


KEYCTL_JOIN_SESSION_KEYRING, KEYCTL_CLEAR, KEYCTL_GET_PERSISTENT = 1, 7, 22
KEY_SPEC_PROCESS_KEYRING, KEY_SPEC_SESSION_KEYRING = -2, -3
KEY_SPEC_USER_KEYRING, KEY_SPEC_USER_SESSION_KEYRING = -4, -5


def keyctl(libc, *args) -> int:
    """keyctl(2), or -1 (ENOSYS) where its number is not known."""
    nr = seccomp.number("keyctl")
    if nr is None:
        ctypes.set_errno(errno.ENOSYS)
        return -1
    return libc.syscall(nr, *args)


def own_session_keyring(libc) -> bool:
    """A fresh, empty session keyring for us and every child: not the one the grader's
    process was started with (its owner's login keys), and ours to empty."""
    return keyctl(libc, KEYCTL_JOIN_SESSION_KEYRING, None) > 0


def clear_keys(libc, uids: tuple[int, int] | None, session: bool) -> bool:
    """Empty the keyrings a student's process shares with the next one: the uid's user and
    user-session keyrings, its persistent keyring and (``session``: our own) the session
    keyring. The seccomp filter refuses keyctl to students; this holds where there is none.

    The user keyrings belong to the *real* uid: with ``uids`` (ours, the students') we take
    the students' real uid for the moment (none of their processes is left to signal us)
    and give it back. True unless a keyring could not be emptied."""
    ok = True
    if uids is not None:
        os.setresuid(uids[1], uids[1], uids[0])
    try:
        # linked into our own process keyring (never a student's: fork gives them an empty
        # one), so we possess it: where it is only reachable from the user keyring, which
        # we do not possess, KEYCTL_CLEAR is refused (EACCES) and every student retired
        # the sandbox (a new bwrap and numpy import per student)
        persistent = keyctl(libc, KEYCTL_GET_PERSISTENT, -1, KEY_SPEC_PROCESS_KEYRING)
        rings = [KEY_SPEC_USER_KEYRING, KEY_SPEC_USER_SESSION_KEYRING] + ([persistent] if persistent > 0 else []) \
            + ([KEY_SPEC_SESSION_KEYRING] if session else [])
        for ring in rings:
            if keyctl(libc, KEYCTL_CLEAR, ring) != 0 and ctypes.get_errno() not in (errno.ENOKEY, errno.ENOSYS):
                ok = False
    finally:
        if uids is not None:
            os.setresuid(uids[0], uids[1], uids[0])
    return ok


def clear(folder: str, keep: set[str]) -> bool:
    """Remove everything in ``folder`` but the paths in ``keep`` (the sandbox's own mounts
    and the folders made for them: a kept folder with kept paths below it is cleared
    too); True if nothing else is left."""
    clean = True
    try:
        names = os.listdir(folder)
    except OSError:  # a folder made for a mount, with its host mode (a clone in a 0700 temp
        return folder in keep  # folder): nobody in the sandbox can list or write it either
    for name in names:
        path = os.path.join(folder, name)
        if path in keep:
            if any(k.startswith(path + "/") for k in keep):
                clean = clear(path, keep) and clean
            continue
        try:
            remove(path)
        except OSError as exc:  # in a folder made for a mount, what a read-only mount holds
            clean = clean and exc.errno == errno.EROFS and folder in keep  # (a bound venv) is none of theirs
        except RecursionError:
            clean = False
    return clean


def reap() -> bool:
    """Reap every child that has ended; True if some are still running."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        return False
    return True


def ipc_objects() -> list:
    """(kind, id) of every SysV shared memory segment, message queue and semaphore set."""
    found = []
    for kind in ("shm", "msg", "sem"):
        try:
            with open(f"/proc/sysvipc/{kind}") as fh:
                found += [(kind, int(line.split()[1])) for line in fh.read().splitlines()[1:] if line.strip()]
        except (OSError, ValueError, IndexError):
            continue
    return found


def remove(path: str) -> None:
    """Remove a file or a folder tree, first opening up each folder (it may be mode 000)."""
    if os.path.isdir(path) and not os.path.islink(path):
        os.chmod(path, 0o700)
        for name in os.listdir(path):  # not scandir: no descriptor held per level
            remove(os.path.join(path, name))
        os.rmdir(path)
    else:
        os.unlink(path)


def main() -> None:
    sys.dont_write_bytecode = True
    sys.path[:] = [p for p in sys.path if p and p != HERE]
    memory = [int(a.split("=", 1)[1]) for a in sys.argv if a.startswith("--memory-mb=")]
    keep = {a.split("=", 1)[1] for a in sys.argv if a.startswith("--keep=")}
    own = [int(a.split("=", 1)[1]) for a in sys.argv if a.startswith("--zygote-uid=")]
    zygote(sweep="--sweep" in sys.argv, memory_mb=memory[0] if memory else 0, keep=keep,
           own_uid=own[0] if own else None)
    os._exit(0)


if __name__ == "__main__":
    main()
