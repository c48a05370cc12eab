"""Where a grading run's time goes, stage by stage: off unless ``GRADER_STAGES`` is set.

``GRADER_STAGES=FOLDER`` makes every grading process (the CLI and each job process)
add up, per stage, the wall time spent and the number of times it was entered, count
``compile`` calls (an audit hook) and fsyncs, and write ``FOLDER/stages-<pid>.json``
with its own CPU time when it ends. ``benchmarks/stages.py`` adds the files up.

Off, ``timed`` returns one shared null context and ``count`` returns at once, so the
instrumented code costs a function call per stage entered.
"""
from __future__ import annotations

import atexit
import contextlib
import json
import os
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path

FOLDER = os.environ.get("GRADER_STAGES") or None
ON = FOLDER is not None

seconds: dict[str, float] = defaultdict(float)
counts: dict[str, int] = defaultdict(int)
_OFF = contextlib.nullcontext()


class _Timer:
    __slots__ = ("name", "start")

    def __init__(self, name: str):
        self.name = name

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc) -> None:
        seconds[self.name] += time.perf_counter() - self.start
        counts[self.name] += 1


def timed(name: str):
    """``with timed("stage"):`` adds the block's wall time and one entry to ``stage``."""
    return _Timer(name) if ON else _OFF


def count(name: str, n: int = 1) -> None:
    if ON:
        counts[name] += n


def add(name: str, value: float) -> None:
    """Add ``value`` seconds to ``name`` (time measured elsewhere, e.g. by a sandbox)."""
    if ON:
        seconds[name] += value


def snapshot() -> dict:
    """This process's figures so far: per stage seconds and counts, and its CPU time."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"pid": os.getpid(), "ppid": os.getppid(), "argv0": sys.argv[0], "cpu": usage.ru_utime + usage.ru_stime,
            "seconds": dict(seconds), "counts": dict(counts)}


_dumped: set[int] = set()


def dump() -> None:
    """Write this process's figures (once per process, whichever exit path comes first)."""
    if not ON or os.getpid() in _dumped:
        return
    _dumped.add(os.getpid())
    path = Path(FOLDER) / f"stages-{os.getpid()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(snapshot()), encoding="utf-8")


def _audit(event: str, args) -> None:
    if event == "compile":
        counts["compile"] += 1


_installed: int | None = None
_hooked: list[bool] = []


def install() -> None:
    """Start counting in this process; job processes call it too (multiprocessing's own exit
    path skips ``atexit``, its finalizers do run)."""
    global _installed
    if not ON or _installed == os.getpid():
        return
    _installed = os.getpid()
    seconds.clear()
    counts.clear()
    _dumped.discard(os.getpid())
    from multiprocessing import util

    util.Finalize(None, dump, exitpriority=100)
    atexit.register(dump)
    if not _hooked:  # an audit hook cannot be removed; a forked child inherits it
        sys.addaudithook(_audit)
        _hooked.append(True)
