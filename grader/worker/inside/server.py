"""The worker: runs one student's code inside the sandbox and answers requests.

Started as ``python -I server.py SUBMISSION_DIR``. It talks to the grader over its
original stdin/stdout; everything the submission prints (fd 1 and fd 2) goes to
stderr, which the grader captures and caps. It computes no score and decides
nothing: it only runs the student's code on the inputs it is sent and returns plain
data. Everything here is assumed compromised by the student; the grader trusts none
of it. Imports: stdlib and numpy only (the grader package is not in the sandbox).
"""
import importlib
import os
import sys
import traceback

import numpy as np  # noqa: F401  (imported before the submission, warm for every request)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # python -I does not add the script's folder
import protocol  # noqa: E402

MODULES = ("layers", "two_layer_net", "buy_apple_orange")


class Worker:
    def __init__(self, submission: str, chan_in: int, chan_out: int):
        self.submission = os.path.realpath(submission)
        self.chan_in, self.chan_out = chan_in, chan_out
        self.objects: dict[int, object] = {}
        self.trace: list = []

    # -- transport ---------------------------------------------------------------
    def read_exactly(self, n: int) -> bytes:
        chunks, left = [], n
        while left:
            chunk = os.read(self.chan_in, min(left, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def send(self, header: dict, frames: list) -> None:
        data = memoryview(protocol.pack(header, frames))
        while data:
            data = data[os.write(self.chan_out, data):]

    # -- loading -------------------------------------------------------------------
    def load(self) -> dict:
        """Import every module of the submission; report each one's fate."""
        status = {}
        for name in MODULES:
            if not os.path.exists(os.path.join(self.submission, name + ".py")):
                status[name] = {"ok": False, "missing": True}
                continue
            try:
                module = importlib.import_module(name)
            except BaseException as exc:  # noqa: B036 - SystemExit at import is a student error
                status[name] = {"ok": False, "error": self.describe(exc)}
                continue
            self.instrument(module)
            status[name] = {"ok": True, "names": sorted(k for k in vars(module) if not k.startswith("__"))}
        return status

    def instrument(self, module) -> None:
        """Record which layer objects have ``backward`` called, for feedback only."""
        for value in list(vars(module).values()):
            method = getattr(value, "__dict__", {}).get("backward") if isinstance(value, type) else None
            if callable(method) and getattr(value, "__module__", None) == module.__name__:
                value.backward = self.traced(method)

    def traced(self, method):
        trace = self.trace

        def backward(obj, *args, **kwargs):
            trace.append(id(obj))
            return method(obj, *args, **kwargs)

        backward.__wrapped__ = method
        return backward

    # -- requests ------------------------------------------------------------------
    def handle(self, header: dict, frames: list) -> tuple[dict, list]:
        """Run the steps in order; on an exception, answer with it and what was done."""
        self.trace.clear()
        done: list = []
        failure = None
        for index, step in enumerate(header.get("steps", [])):
            try:
                done.append(self.step(step, frames, done))
            except BaseException as exc:  # noqa: B036 - any student exception is an answer
                if step.get("tolerate") and isinstance(exc, Exception):
                    done.append(protocol.Raised(self.describe(exc)))
                    continue
                failure = {"ok": False, "step": index, "error": self.describe(exc)}
                break
        out_frames: list = []
        try:
            results = [protocol.encode(done[i], out_frames, self.handle_of)
                       for i in header.get("return", []) if i < len(done)]
        except Exception as exc:  # e.g. an object array: it cannot cross, so it is an error
            return {"ok": False, "step": len(done) - 1, "results": [],
                    "error": {"type": "ReturnValueError", "message": str(exc), "frames": []}}, []
        reply = failure or {"ok": True}
        reply.update(results=results, trace=self.label_trace(header, done))
        return reply, out_frames

    def step(self, step: dict, frames: list, done: list):
        op = step["op"]
        args = [self.value(a, frames, done) for a in step.get("args", [])]
        kwargs = {k: self.value(v, frames, done) for k, v in step.get("kwargs", {}).items()}
        if op in ("new", "func"):
            module = sys.modules.get(step["module"])
            if module is None:
                raise ImportError(f"{step['module']}.py could not be imported")
            target = getattr(module, step["name"])
            return target(*args, **kwargs)
        target = self.value(step["target"], frames, done)
        if op == "call":
            return getattr(target, step["name"])(*args, **kwargs)
        if op == "get":
            try:
                for key in step["path"]:
                    target = target[key] if isinstance(target, dict) else getattr(target, key)
            except (AttributeError, KeyError):
                if step.get("optional"):
                    return None
                raise
            return target
        if op == "assign":  # write into the array the object really holds, in place
            for key in step["path"]:
                target = target[key] if isinstance(target, dict) else getattr(target, key)
            target[...] = args[0]
            return None
        raise ValueError(f"unknown op {op!r}")

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
            if os.path.realpath(frame.filename).startswith(self.submission + os.sep):
                frames.append({"file": os.path.basename(frame.filename), "line": frame.lineno,
                               "function": frame.name, "code": (frame.line or "")[:200]})
        if isinstance(exc, SyntaxError) and exc.filename:
            frames.append({"file": os.path.basename(exc.filename), "line": exc.lineno or 0,
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


def main() -> None:
    submission = sys.argv[1]
    # keep the channel on private fds; whatever the submission prints goes to stderr
    chan_in, chan_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    sys.stdin = open(os.devnull)  # noqa: SIM115
    sys.path[:] = [submission] + [p for p in sys.path if p and p != HERE]
    sys.dont_write_bytecode = True
    Worker(submission, chan_in, chan_out).serve()
    os._exit(0)


if __name__ == "__main__":
    main()
