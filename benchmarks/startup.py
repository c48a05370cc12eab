"""Start-up: grading ONE student with `grader grade`, wall clock, first run and warm.

First run: nothing cached by the grader yet (jinja's compiled templates removed, a fresh
reports folder). Warm: the same command again (median of several). Both include the
canary (the reference graded first) and the class reports; the interpreter is this
one's, run directly (a pyenv shim adds ~0.1 s of its own).

    python benchmarks/startup.py [--repeat 7]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jinja2

HERE = Path(__file__).resolve().parent
STUDENT = HERE.parent / "examples" / "class" / "db-mean"
GRADER = [sys.executable, "-m", "grader"]


def once(folder: Path, out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    done = subprocess.run([*GRADER, "grade", str(folder), "--out", str(out)], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"grader grade failed:\n{done.stderr}")
    return seconds


def measure(repeat: int = 7) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="grader-startup-"))
    try:
        shutil.copytree(STUDENT, work / "class" / STUDENT.name)
        cache = Path(jinja2.FileSystemBytecodeCache().directory)
        for compiled in cache.glob("__jinja2_*.cache"):
            compiled.unlink()
        first = once(work / "class", work / "out")
        warm = [once(work / "class", work / "out") for _ in range(repeat)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"first run": first, "warm (median)": statistics.median(warm), "warm (best)": min(warm)}


def report(found: dict[str, float]) -> None:
    for name, seconds in found.items():
        print(f"one student, {name}: {seconds:.2f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    report(measure(parser.parse_args().repeat))
