"""Per-student cost of this checkout against earlier commits: same class, same machine, side by side.

    python benchmarks/history.py [--against 2755008 e0aa2dd] [--n 1000] [--jobs 2] [--repeat 3]

A figure written down on another day, on a busier or quieter machine, is not a baseline
(this VM's wall times drift by 10-20% between runs). So the earlier commit is checked
out into a temporary git worktree and all grade the same generated class
(benchmarks/classes.py of this checkout), in turn, ``--repeat`` rounds; the median
per-student wall time is compared. The default ``--against``: the last commit before
hidden tests ran under pytest (issue 12; benchmarks/RESULTS.md then recorded 39.4 ms
per submission) and the commit that made them run under pytest. Each run imports its
own checkout's grader (run from the worktree, ``PYTHONPATH`` first); the packages are
this interpreter's.
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
UNDER_PYTEST = "e0aa2dd"   # issue 12: assignments as data, hidden tests run by pytest


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


def compare(against: list[str], n: int, jobs: int, repeat: int) -> dict:
    """{checkout name: {"median": ms per submission, "runs": [...]}}, this checkout last."""
    work = Path(tempfile.mkdtemp(prefix="grader-history-"))
    checkouts = {rev: work / f"at-{rev}" for rev in against}
    try:
        for rev, folder in checkouts.items():
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(folder), rev],
                           check=True, capture_output=True)
        checkouts[THIS] = REPO
        for checkout in checkouts.values():
            if imported_from(checkout).resolve() != checkout.resolve():
                raise SystemExit(f"{checkout}: `import grader` does not take this checkout's grader")
        folder = classes.make_class(work / "class", n)
        times: dict[str, list[float]] = {name: [] for name in checkouts}
        names = list(checkouts)
        for round_ in range(repeat):  # in turn: a drift of the machine hits every checkout alike,
            turn = names[round_ % len(names):] + names[:round_ % len(names)]  # and each goes first once
            for name in turn:
                times[name].append(grade_once(checkouts[name], folder, work / "out", jobs) / n * 1000)
    finally:
        for rev in against:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(work / f"at-{rev}")],
                           capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    return {name: {"median": statistics.median(ms), "runs": ms} for name, ms in times.items()}


THIS = "this checkout"


def report(found: dict, n: int, jobs: int) -> list[str]:
    lines = [f"| grader (N = {n:,}, --jobs {jobs}) | ms per submission, median | runs |", "|---|---:|---|"]
    for name, row in found.items():
        lines.append(f"| {name} | {row['median']:.1f} | {', '.join(f'{m:.1f}' for m in row['runs'])} |")
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", nargs="+", default=[BEFORE_PYTEST, UNDER_PYTEST],
                        help="earlier commits [default: before issue 12, and issue 12's]")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    found = compare(args.against, args.n, args.jobs, args.repeat)
    print("\n".join(report(found, args.n, args.jobs)))
    base = found[args.against[0]]["median"]
    for name, row in found.items():
        change = row["median"] / base - 1
        print(f"{name}: {row['median']:.1f} ms per submission ({change:+.0%} against {args.against[0]})")
