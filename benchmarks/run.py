"""Class-scale benchmark: `grader grade --jobs auto` (full isolation) vs nbgrader autograde.

    python benchmarks/run.py                      # N = 100, 1000, 5000; nbgrader on 20
    python benchmarks/run.py --sizes 100 --nbgrader 10 --no-write

For each class size N it generates a class (benchmarks/classes.py), grades it with the
real CLI and reports wall time, time per submission, and peak memory: of the grader
(the CLI process and its job processes) and of one worker (the largest process inside
a sandbox). Then it grades the first few students as notebooks with nbgrader's own
`autograde` and prints the ratio. Results are written to benchmarks/RESULTS.md with a
description of the machine and the exact command.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import classes  # noqa: E402


def processes() -> dict[int, tuple[int, str, int]]:
    """pid -> (parent pid, command name, proportional set size in bytes) for every process.

    PSS splits pages shared between processes (numpy in forked job processes) among
    them, so summing it over the grader's processes counts each page once.
    """
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            rss = next(int(line.split()[1]) * 1024
                       for line in Path(f"/proc/{entry}/smaps_rollup").read_text().splitlines()
                       if line.startswith("Pss:"))
        except (OSError, IndexError, ValueError, StopIteration):
            continue
        name = stat[stat.index("(") + 1: stat.rindex(")")]
        parent = int(stat[stat.rindex(")") + 2:].split()[1])
        found[int(entry)] = (parent, name, rss)
    return found


class Sampler(threading.Thread):
    """Peak memory of the grader's processes and of the largest sandboxed process."""

    def __init__(self, root: int):
        super().__init__(daemon=True)
        self.root, self.grader, self.worker = root, 0, 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.02):
            table = processes()
            grader, worker = 0, 0
            for pid, (_, name, rss) in table.items():
                chain, p, sandboxed = [], pid, False
                while p in table and p != self.root and len(chain) < 64:
                    chain.append(p)
                    sandboxed |= table[p][1] in ("bwrap", "prlimit", "setpriv")
                    p = table[p][0]
                if p != self.root:
                    continue
                if sandboxed or name in ("bwrap", "prlimit", "setpriv"):
                    worker = max(worker, rss)
                else:
                    grader += rss
            grader += table.get(self.root, (0, "", 0))[2]
            self.grader, self.worker = max(self.grader, grader), max(self.worker, worker)


def grade_class(folder: Path, out: Path, jobs: str = "auto") -> dict:
    command = ["grader", "grade", str(folder), "--out", str(out), "--jobs", jobs]
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = Sampler(proc.pid)
    sampler.start()
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - start
    sampler.done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"grader grade failed:\n{stderr}")
    return {"wall": wall, "grader_mb": sampler.grader / 2**20, "worker_mb": sampler.worker / 2**20,
            "isolation": next((line for line in stderr.splitlines() if "isolation" in line), "?"),
            "summary": next((line for line in stdout.splitlines() if "students:" in line), "")}


def nbgrader_compare(folder: Path, n: int, work: Path) -> dict:
    """nbgrader autograde on the first ``n`` students as notebooks, and grader on the same."""
    from nbgrader_bench import autograde_notebooks

    return autograde_notebooks(sorted(folder.iterdir())[:n], work)


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
    doctor = subprocess.run(["grader", "doctor"], capture_output=True, text=True).stdout
    isolation = next((line for line in doctor.splitlines() if line.startswith("isolation")), "?")
    import numpy

    return (f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, Linux {platform.release()}, "
            f"Python {platform.python_version()}, numpy {numpy.__version__}; {isolation}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--nbgrader", type=int, default=20, help="notebooks for nbgrader (0: skip)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md")
    args = parser.parse_args()

    rows, work = [], Path(tempfile.mkdtemp(prefix="grader-bench-"))
    try:
        for n in args.sizes:
            folder = classes.make_class(work / f"class-{n}", n)
            result = grade_class(folder, work / f"reports-{n}")
            rows.append((n, result))
            print(f"N={n}: {result['wall']:.1f} s, {result['wall'] / n * 1e3:.1f} ms per submission, "
                  f"grader peak {result['grader_mb']:.0f} MB, worker peak {result['worker_mb']:.0f} MB; "
                  f"{result['summary']}", flush=True)
        nb = None
        if args.nbgrader:
            folder = work / f"class-{args.sizes[0]}"
            nb = nbgrader_compare(folder, args.nbgrader, work / "nbgrader")
            print(f"nbgrader autograde: {nb['nbgrader'] / nb['n'] * 1e3:.0f} ms per notebook; grader on "
                  f"the same notebooks: {nb['grader'] / nb['n'] * 1e3:.0f} ms per notebook; "
                  f"ratio {nb['nbgrader'] / nb['grader']:.1f}x; same scores: {nb['same_scores']}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not args.no_write:
        write_results(rows, nb, " ".join(["python", "benchmarks/run.py", *sys.argv[1:]]))


def write_results(rows, nb, command: str) -> None:
    lines = ["# Benchmark results", "", f"Machine: {machine()}.", "", f"Command: `{command}`",
             f"(run on {time.strftime('%Y-%m-%d')}).", "",
             "## grader grade --jobs auto, full isolation", "",
             "| students | wall time | per submission | grader peak memory | worker peak memory |",
             "|---:|---:|---:|---:|---:|"]
    for n, r in rows:
        lines.append(f"| {n} | {r['wall']:.1f} s | {r['wall'] / n * 1e3:.1f} ms | "
                     f"{r['grader_mb']:.0f} MB | {r['worker_mb']:.0f} MB |")
    lines += ["", "Grader memory: the CLI process and its job processes together; worker: the "
              "largest single process inside a sandbox.", ""]
    if nb:
        lines += ["## Against nbgrader autograde (same students, as notebooks)", "",
                  "| | notebooks | total | per notebook |", "|---|---:|---:|---:|",
                  f"| nbgrader autograde | {nb['n']} | {nb['nbgrader']:.1f} s | "
                  f"{nb['nbgrader'] / nb['n'] * 1e3:.0f} ms |",
                  f"| grader grade --jobs auto | {nb['n']} | {nb['grader']:.1f} s | "
                  f"{nb['grader'] / nb['n'] * 1e3:.0f} ms |", "",
                  f"Ratio: grader is {nb['nbgrader'] / nb['grader']:.1f}x faster per notebook. "
                  f"Both gave every student the same score: {nb['same_scores']}.", ""]
    (HERE / "RESULTS.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {HERE / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
