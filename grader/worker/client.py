"""The grader's side of a worker: start it in the sandbox, send requests, enforce limits.

A request is a small program (``Program``) of construct / call / get / assign steps
run in one round trip. Everything that comes back is decoded by ``protocol`` into
plain ndarrays, numbers, tuples, lists, dicts and ``RemoteObject`` handles; nothing
the worker sends is executed or trusted beyond its type and shape.
"""
from __future__ import annotations

import os
import select
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from grader import sandbox, stages
from grader.worker.inside import protocol
from grader.worker.zygote import (  # noqa: F401 - re-exported: the worker and its errors in one place
    WorkerError,
    WorkerTimeout,
    Zygote,
    _large_buffers,
    stop_zygotes,
    zygote_for,
)


class StudentError(Exception):
    """The student's code raised; ``error`` holds type, message and their own frames."""

    def __init__(self, error: dict, step: int, partial: list, trace: list):
        self.error, self.step, self.partial, self.trace = error, step, partial, trace
        super().__init__(f"{error.get('type')}: {error.get('message')}")


@dataclass
class Output:
    """What the submission printed, kept up to ``limit`` bytes."""

    limit: int
    data: bytearray = field(default_factory=bytearray)
    dropped: int = 0

    def add(self, chunk: bytes) -> None:
        room = max(self.limit - len(self.data), 0)
        self.data += chunk[:room]
        self.dropped += max(len(chunk) - room, 0)

    def text(self) -> str:
        text = self.data.decode("utf-8", errors="replace")
        if self.dropped:
            text += f"\n[... {self.dropped} more bytes of output dropped]"
        return text


SMALL = 1 << 16  # replies are read in pieces of this size; larger frames go straight into place
AHEAD_BYTES = 1 << 16  # programs sent together by ``prefetch``: within any socket's buffer

class Worker:
    """One student's process, forked by the zygote; restartable."""

    def __init__(self, submission: Path, limits: sandbox.Limits, mode: str = "auto",
                 uid: int = sandbox.WORKER_UID, hide: tuple[Path, ...] = (), modules: tuple[str, ...] = ()):
        self.submission, self.limits, self.mode = Path(submission).resolve(), limits, mode
        self.import_order = tuple(modules)  # the student's modules, imported in this order
        self.zygote = zygote_for(limits, mode, uid, tuple(hide))
        self.output = Output(limits.output_bytes)
        self.session: socket.socket | None = None
        self.out_fd: int | None = None
        self.modules: dict = {}
        self.generation = 0
        self.dead_reason = "the worker is not running"
        self._buffer = bytearray()  # received, not yet read (a reply's small parts)
        self.counts: dict[int, dict[str, int]] = {}  # the last reply's call counts, by step
        self._scratch = bytearray(SMALL)
        self._ahead: list[tuple[Program, tuple | WorkerError]] = []  # prefetched replies, in order

    @property
    def isolation(self) -> sandbox.Isolation | None:
        return self.zygote.isolation

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> dict:
        """Fork a fresh process, send it the submission's sources, return each module's status."""
        with stages.timed("worker start"):
            return self._start()

    def _start(self) -> dict:
        self.close()
        self._ahead.clear()
        self.session, self.out_fd = self.zygote.spawn()
        os.set_blocking(self.out_fd, False)
        self.session.setblocking(False)
        self._buffer.clear()
        self.generation += 1
        sources = {p.relative_to(self.submission).as_posix(): p.read_text(encoding="utf-8")
                   for p in sorted(self.submission.rglob("*.py"))}
        deadline = time.monotonic() + self.limits.call_seconds + 5
        self._send(protocol.pack({"sources": sources, "modules": list(self.import_order)}, []), deadline)
        header, _ = self._receive(deadline)
        statuses = header.get("modules")
        self.modules = {str(name)[:100]: _module_status(status)
                        for name, status in (statuses.items() if isinstance(statuses, dict) else ())}
        return self.modules

    def close(self, kill: bool = True) -> int | None:
        """End this student's process; return its exit code if it could be learnt."""
        if self.session is None:
            return None
        with stages.timed("worker end"):
            code = self.zygote.finish(kill=kill)
        self._drain_output()
        if self.zygote.memory_kills:
            self.output.add(f"\n[grader: {self._over_memory()}]\n".encode())
        self.session.close()
        os.close(self.out_fd)
        self.session, self.out_fd = None, None
        return code

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def alive(self) -> bool:
        return self.session is not None

    # -- requests ------------------------------------------------------------------
    def run(self, program: Program) -> tuple[list, list]:
        """Run ``program``; return (kept values, backward trace) or raise.

        Raises StudentError when the student's code raised, WorkerTimeout past the
        per-call deadline, WorkerError when the process died or broke the protocol;
        after a WorkerError the worker is dead and must be restarted.
        """
        stages.count("program")
        if self._ahead:
            header, arrays = self._prefetched(program)
        else:
            if not self.alive:
                raise WorkerError(self.dead_reason)
            message = self._message(program)
            deadline = time.monotonic() + self.limits.call_seconds
            with stages.timed("round trip"):
                self._send(message, deadline)
                header, arrays = self._receive(deadline)
        try:
            decode = lambda tree: protocol.decode(tree, arrays, self._remote)  # noqa: E731
            trace = [str(t)[:100] for t in header.get("trace", [])][:100]
            self.counts = _counts(header.get("counts"))
            if header.get("ok") is True:
                return [decode(t) for t in header.get("results", [])], trace
            if header.get("ok") is False and isinstance(header.get("error"), dict):
                partial = [decode(t) for t in header.get("results", [])]
                step = header.get("step") if isinstance(header.get("step"), int) else -1
                failure = StudentError(clean_error(header["error"]), step, partial, trace)
            else:
                raise protocol.ProtocolError("reply is neither ok nor an error")
        except Exception as exc:  # noqa: BLE001 - whatever the reply makes us raise, it is malformed
            self.close()
            raise WorkerError(f"the worker sent malformed data ({type(exc).__name__}: {str(exc)[:200]})") from None
        raise failure

    def prefetch(self, programs: list[Program]) -> None:
        """Run ``programs`` now, in this order, in one round trip; ``run`` of each, in the same
        order, then answers from its reply, exactly as if it had been sent only then.

        For programs known before any of them runs (they depend on the inputs, never on an
        earlier answer). The worker serves requests one by one as they come, so it runs them
        in the order and with the state it would have anyway; each has its own deadline
        from the reply before it. A crash or hang at one ends the prefetch there: ``run`` of
        that program raises its WorkerError, and the later ones were never run (as when a
        WorkerError stops the caller). Programs too large to sit together in the socket's
        buffer are left to ``run`` (sending them would wait on the worker)."""
        if not self.alive or self._ahead or len(programs) < 2:
            return
        try:
            messages = [self._message(p) for p in programs]
        except Exception:  # noqa: BLE001 - one that cannot be sent: ``run`` raises it in its turn
            return
        if sum(map(len, messages)) > AHEAD_BYTES:
            return
        deadline = time.monotonic() + self.limits.call_seconds
        with stages.timed("round trip"):
            self._send(b"".join(messages), deadline)
            for program in programs:
                try:
                    self._ahead.append((program, self._receive(deadline)))
                except WorkerError as exc:
                    self._ahead.append((program, exc))
                    return
                deadline = time.monotonic() + self.limits.call_seconds

    def _prefetched(self, program: Program) -> tuple[dict, list]:
        """The reply ``prefetch`` kept for ``program``, which must be the next one it sent."""
        sent, reply = self._ahead.pop(0)
        if sent is not program:  # the worker ran another program than the caller now asks for
            self._ahead.clear()
            self.close()
            raise RuntimeError("a program was run out of the order it was prefetched in (a grader bug)")
        if isinstance(reply, WorkerError):
            self._ahead.clear()  # none after it was run
            raise reply
        return reply

    def drop_prefetched(self) -> None:
        """Forget replies no ``run`` asked for (the caller stopped early: a grader bug)."""
        self._ahead.clear()

    @staticmethod
    def _message(program: Program) -> bytes:
        """The request, encoded once per program (exercises send the same ones to every student)."""
        size = (len(program.steps), len(program.kept))
        if program.encoded is None or program.encoded[0] != size:
            frames: list[bytes] = []
            steps = [program.encode_step(s, frames) for s in program.steps]
            program.encoded = size, protocol.pack({"steps": steps, "return": program.kept}, frames)
        return program.encoded[1]

    def _remote(self, tree: dict) -> RemoteObject:
        methods = tree.get("methods") if isinstance(tree.get("methods"), list) else []
        return RemoteObject(self, tree.get("h"), str(tree.get("type", "?"))[:100],
                            frozenset(str(m) for m in methods[:200]))

    def _send(self, data: bytes, deadline: float) -> None:
        view = memoryview(data)
        while view:
            readable, writable = self._wait(deadline, write=True)
            if readable:
                self._read_output()
            if writable:
                try:
                    view = view[self.session.send(view[: 4 << 20]):]
                except BlockingIOError:
                    pass
                except OSError:
                    self._died()

    def _receive(self, deadline: float) -> tuple[dict, list]:
        def read_exactly(n: int) -> bytes | bytearray:
            while len(self._buffer) < min(n, SMALL):  # headers, scalars: one recv for many
                got = self._fill(deadline, memoryview(self._scratch))
                self._buffer += memoryview(self._scratch)[:got]
            if len(self._buffer) >= n:
                chunk = bytes(memoryview(self._buffer)[:n])
                del self._buffer[:n]
                return chunk
            # the rest is received straight into the frame: a 784x50 gradient is copied
            # once, not once per buffer it passes through (protocol.read_message caps n)
            chunk, have = bytearray(n), len(self._buffer)
            chunk[:have] = self._buffer
            self._buffer.clear()
            view = memoryview(chunk)
            while have < n:
                have += self._fill(deadline, view[have:])
            return chunk

        try:
            return protocol.read_message(read_exactly)
        except WorkerError:  # a timeout, or the process died: said by read_exactly itself
            raise
        except Exception as exc:  # noqa: BLE001 - anything else the bytes cause is their sender's fault
            self.close()
            raise WorkerError(f"the worker sent malformed data ({type(exc).__name__}: {str(exc)[:200]})") from None

    def _fill(self, deadline: float, into: memoryview) -> int:
        """Receive what has arrived, at most ``len(into)`` bytes, into ``into``."""
        readable, _ = self._wait(deadline)
        if readable:
            self._read_output()
        try:
            got = self.session.recv_into(into)
        except BlockingIOError:
            return 0
        except OSError:
            got = 0
        if not got:
            self._died()
        return got

    def _wait(self, deadline: float, write: bool = False) -> tuple[bool, bool]:
        """Wait for the session (or output) to be ready; returns (output readable, session ready)."""
        left = deadline - time.monotonic()
        fds = [self.session, self.out_fd]
        ready = select.select(fds if not write else [self.out_fd], [self.session] if write else [],
                              [], max(left, 0))
        if left <= 0 or not (ready[0] or ready[1]):
            self.close()
            raise WorkerTimeout(f"no answer within {self.limits.call_seconds:g} s")
        return self.out_fd in ready[0], self.session in ready[0] or self.session in ready[1]

    def _read_output(self) -> None:
        try:
            chunk = os.read(self.out_fd, 1 << 16)
        except BlockingIOError:
            return
        self.output.add(chunk)

    def _drain_output(self) -> None:
        try:
            while chunk := os.read(self.out_fd, 1 << 16):
                self.output.add(chunk)
        except (BlockingIOError, OSError):
            pass

    def _over_memory(self) -> str:
        return (f"{self.zygote.memory_kills} process(es) of the submission killed: together "
                f"they exceeded the memory limit of {self.limits.memory_mb} MB")

    def _died(self):
        code = self.close(kill=False)
        if self.zygote.memory_kills:
            raise WorkerError(f"the submission's worker process ended after {self._over_memory()}")
        if self.zygote.tampered:
            raise WorkerError("the submission was stopped: it changed the scheduling of the "
                              "sandbox process that started it")
        signal = sandbox.exit_signal(code) if code is not None else None
        how = f"killed by signal {signal}" if signal else f"exit code {code}"
        raise WorkerError(f"the submission ended the worker process ({how})")


def _counts(found) -> dict[int, dict[str, int]]:
    """step -> its forward/backward call counts, kept only where they are plain ints."""
    keys = ("forward", "forward_max", "backward", "backward_max")
    out = {}
    for entry in found[:100] if isinstance(found, list) else []:
        if isinstance(entry, dict) and all(_is_int(entry.get(k)) for k in ("step", *keys)):
            out[entry["step"]] = {k: entry[k] for k in keys}
    return out


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def clean_error(error: dict) -> dict:
    """Keep only well-typed, short fields of a student exception report."""
    frames = []
    for f in error.get("frames", [])[:8] if isinstance(error.get("frames"), list) else []:
        if isinstance(f, dict):
            frames.append({"file": str(f.get("file", "?"))[:100], "line": _int(f.get("line")),
                           "function": str(f.get("function", "?"))[:100],
                           "code": str(f.get("code", ""))[:200]})
    return {"type": str(error.get("type", "Exception"))[:100],
            "message": str(error.get("message", ""))[:1000], "frames": frames}


def _module_status(status) -> dict:
    """A module's status as the worker reported it, reduced to well-typed fields."""
    if not isinstance(status, dict):
        return {"ok": False}
    out = {"ok": status.get("ok") is True}
    if status.get("missing") is True:
        out["missing"] = True
    if isinstance(status.get("error"), dict):
        out["error"] = clean_error(status["error"])
    if isinstance(status.get("names"), list):
        out["names"] = [str(n)[:100] for n in status["names"][:1000]]
    return out


def _int(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class Program:
    """A batch of steps run in one round trip; each step's result can feed later ones."""

    def __init__(self):
        self.steps: list[dict] = []
        self.kept: list[int] = []
        self.encoded: tuple[tuple[int, int], bytes] | None = None  # (steps, kept) when encoded, the bytes

    def _add(self, step: dict) -> protocol.Ref:
        self.steps.append(step)
        return protocol.Ref({"t": "step", "i": len(self.steps) - 1})

    def new(self, module: str, name: str, *args, **kwargs) -> protocol.Ref:
        return self._add({"op": "new", "module": module, "name": name, "args": args, "kwargs": kwargs})

    def func(self, module: str, name: str, *args, **kwargs) -> protocol.Ref:
        return self._add({"op": "func", "module": module, "name": name, "args": args, "kwargs": kwargs})

    def call(self, target, name: str, *args, tolerate: bool = False, count: bool = False,
             **kwargs) -> protocol.Ref:
        """Call a method; with ``tolerate`` an exception becomes the result and later steps run;
        with ``count`` the reply says how many forward/backward calls it made (``Worker.counts``)."""
        step = {"op": "call", "target": target, "name": name, "args": args, "kwargs": kwargs,
                "tolerate": tolerate}
        if count:
            step["count"] = True
        return self._add(step)

    def index(self, ref: protocol.Ref) -> int:
        """The step number of ``ref`` (as ``Worker.counts`` keys them)."""
        return ref.tree["i"]

    def get(self, target, *path: str, optional: bool = False) -> protocol.Ref:
        """Read an attribute (or dict entry) path; ``optional``: None when it is missing."""
        return self._add({"op": "get", "target": target, "path": list(path), "optional": optional})

    def assign(self, target, path: tuple[str, ...], value) -> protocol.Ref:
        return self._add({"op": "assign", "target": target, "path": list(path), "args": [value]})

    def slope(self, target, path: tuple[str, ...], seed: int, h: float, name: str, *args) -> protocol.Ref:
        """``(f(+h), f(-h))``: method ``name`` called with the array at ``target.<path>`` moved
        in place by +-h along ``protocol.direction(seed)``, then restored bit for bit; only
        the seed crosses. An exception in the method is its result (``Raised``)."""
        return self._add({"op": "slope", "target": target, "path": list(path), "name": name,
                          "args": [seed, h, *args], "tolerate": True})

    def probe(self, module: str, name: str, init: list, method: str, call: list,
              moved: tuple[str, int], direction, h: float, seed: int | None = None) -> protocol.Ref:
        """``(out(+h), out(-h))``: ``name(*init).method(*call)`` on a fresh object each time,
        with argument ``moved`` (``("init" | "call", index)``) moved by +-h along
        ``direction``, in the worker; every array argument is copied for each call; with
        ``seed``, numpy's global generator is seeded before each call. An exception is its
        result (``Raised``)."""
        step = {"op": "probe", "module": module, "name": name, "method": method, "moved": list(moved),
                "args": [direction, h, len(init), *init, *call], "tolerate": True}
        if seed is not None:
            step["seed"] = int(seed)
        return self._add(step)

    def seed(self, seed: int) -> protocol.Ref:
        """Seed numpy's global RNG in the worker (``np.random.seed``)."""
        return self._add({"op": "seed", "args": [seed]})

    def value(self, value) -> protocol.Ref:
        """Send ``value`` once; later steps refer to it (e.g. a direction used twice)."""
        return self._add({"op": "value", "args": [value]})

    def keep(self, *refs: protocol.Ref) -> None:
        """Ask for these steps' results back (in this order)."""
        self.kept.extend(r.tree["i"] for r in refs)

    @staticmethod
    def encode_step(step: dict, frames: list[bytes]) -> dict:
        def enc(value):
            if isinstance(value, RemoteObject):
                value = value.ref
            return protocol.encode(value, frames)

        out = {k: v for k, v in step.items() if k not in ("args", "kwargs", "target")}
        if "target" in step:
            out["target"] = enc(step["target"])
        out["args"] = [enc(a) for a in step.get("args", ())]
        out["kwargs"] = {k: enc(v) for k, v in step.get("kwargs", {}).items()}
        return out


class RemoteObject:
    """A student's object living in the worker: methods are called remotely, never here."""

    def __init__(self, worker: Worker, handle, type_name: str, methods: frozenset[str]):
        self._worker, self._handle, self.type_name = worker, handle, type_name
        self._methods, self._generation = methods, worker.generation
        self.ref = protocol.Ref({"t": "obj", "h": handle})

    def _run(self, build) -> object:
        if self._generation != self._worker.generation:
            raise WorkerError("the worker was restarted; this object is gone")
        program = Program()
        program.keep(build(program))
        values, _ = self._worker.run(program)
        return values[0]

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._methods:
            return lambda *a, **k: self._run(lambda p: p.call(self, name, *a, **k))
        return self._run(lambda p: p.get(self, name))

    def assign(self, path: tuple[str, ...], value) -> None:
        """Write ``value`` into the array at ``path`` in place (e.g. ``("params", "W1")``)."""
        self._run(lambda p: p.assign(self, path, value))

    def __repr__(self) -> str:
        return f"<remote {self.type_name}>"


class RemoteModule:
    """``student.<module>.<Class>(...)`` builds the object in the worker and returns its handle."""

    def __init__(self, worker: Worker, name: str):
        self._worker, self._name = worker, name

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)

        def construct_or_call(*args, **kwargs):
            program = Program()
            program.keep(program.new(self._name, name, *args, **kwargs))
            return self._worker.run(program)[0][0]

        return construct_or_call


class Student:
    """The proxy a hidden test sees: ``student.layers``, ... one per module of the hand-in."""

    def __init__(self, worker: Worker, modules: tuple[str, ...]):
        self._worker, self._modules = worker, set(modules)

    def __getattr__(self, name: str) -> RemoteModule:
        if name not in self._modules:
            raise AttributeError(name)
        return RemoteModule(self._worker, name)
