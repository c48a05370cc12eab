"""Per-student cost of this checkout against an earlier commit: same class, same machine, side by side.

    python benchmarks/history.py [--against 2755008] [--n 1000] [--jobs 2] [--repeat 3]

A figure written down on another day, on a busier or quieter machine, is not a baseline
(this VM's wall times drift by 10-20% between runs). So the earlier commit is checked
out into a temporary git worktree and both grade the same generated class
(benchmarks/classes.py of this checkout), alternately, ``--repeat`` times each; the
median per-student wall time is compared. The default ``--against`` is the last commit
before hidden tests ran under pytest (issue 12), whose 39.4 ms per submission
benchmarks/RESULTS.md then recorded. Each run imports its own checkout's grader (run
from the worktree, ``PYTHONPATH`` first); the packages are this interpreter's.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import classes  # noqa: E402

BEFORE_PYTEST = "2755008"  # hidden tests still run by the home-made runner (before issue 12)


def grade_once(checkout: Path, folder: Path, out: Path, jobs: int) -> float:
    """Seconds for one `grader grade` of ``folder`` with the grader of ``checkout``."""
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, PYTHONPATH=str(checkout))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "grader", "grade", str(folder), "--out", str(out),
                           "--jobs", str(jobs)], cwd=checkout, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{checkout}: grader grade exited {done.returncode}:\n{done.stderr[-2000:]}")
    return seconds


def imported_from(checkout: Path) -> Path:
    env = dict(os.environ, PYTHONPATH=str(checkout))
    said = subprocess.run([sys.executable, "-c", "import grader; print(grader.__file__)"], cwd=checkout,
                          env=env, capture_output=True, text=True, check=True).stdout.strip()
    return Path(said).parent.parent


def compare(against: str, n: int, jobs: int, repeat: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="grader-history-"))
    try:
        old = work / "before"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(old), against],
                       check=True, capture_output=True)
        for checkout in (REPO, old):
            if imported_from(checkout).resolve() != checkout.resolve():
                raise SystemExit(f"{checkout}: `import grader` does not take this checkout's grader")
        folder = classes.make_class(work / "class", n)
        times: dict[str, list[float]] = {"this checkout": [], against: []}
        for _ in range(repeat):  # alternately: a drift of the machine hits both alike
            times[against].append(grade_once(old, folder, work / "out", jobs) / n * 1000)
            times["this checkout"].append(grade_once(REPO, folder, work / "out", jobs) / n * 1000)
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(work / "before")],
                       capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    return {name: {"median": statistics.median(ms), "runs": ms} for name, ms in times.items()}


def report(found: dict, n: int, jobs: int) -> list[str]:
    lines = [f"| grader | ms per submission (median) | runs | (N = {n:,}, --jobs {jobs}) |", "|---|---:|---|---|"]
    for name, row in found.items():
        lines.append(f"| {name} | {row['median']:.1f} | {', '.join(f'{m:.1f}' for m in row['runs'])} | |")
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default=BEFORE_PYTEST, help="the earlier commit [default: before issue 12]")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    found = compare(args.against, args.n, args.jobs, args.repeat)
    print("\n".join(report(found, args.n, args.jobs)))
    now, then = found["this checkout"]["median"], found[args.against]["median"]
    print(f"\nthis checkout: {now:.1f} ms per submission, {args.against}: {then:.1f} ms ({now / then - 1:+.0%})")
